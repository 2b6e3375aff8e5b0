"""float16 trains with a loss scaler: overflowing steps are skipped instead of poisoning weights."""

from __future__ import annotations

import torch

from ml.config import TrainConfig
from ml.loop import DistInfo, fit, grad_scaler

TRAIN = TrainConfig(batch_size=2, micro_batch_size=2, max_steps=4, lr=1e-2, warmup_ratio=0.0,
                    lr_scheduler="constant", group_by_length=False)  # fmt: skip


def _toy(blow_up_at: int | None = None):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    examples = [torch.full((3,), float(i)) for i in range(8)]
    calls = {"n": 0}

    def collate(items):
        return {"x": torch.stack(items)}

    def loss_fn(m, batch):
        calls["n"] += 1
        loss = m(batch["x"]).pow(2).mean()
        if calls["n"] == blow_up_at:
            loss = loss * float("inf")  # an fp16 overflow
        return loss, {}

    return model, examples, collate, loss_fn


def _fit(dtype, blow_up_at=None):
    model, examples, collate, loss_fn = _toy(blow_up_at)
    history = fit(model, examples, [1] * 8, collate, loss_fn, TRAIN, DistInfo(), dtype)
    return model, history


def test_float16_uses_a_scaler_and_trains_like_float32_when_nothing_overflows():
    assert not grad_scaler(torch.device("cpu"), torch.bfloat16).is_enabled()
    half, h16 = _fit(torch.float16)
    full, h32 = _fit(torch.float32)
    assert h16[0]["loss_scale"] == 65536.0 and "loss_scale" not in h32[0]
    # Scaling by a power of two and back is exact: the same weights.
    torch.testing.assert_close(half.weight, full.weight, rtol=0, atol=1e-7)


def test_an_overflowing_float16_step_is_skipped_and_the_scale_backs_off():
    model, history = _fit(torch.float16, blow_up_at=2)
    assert torch.isfinite(model.weight).all()
    assert history[1]["loss_scale"] == 32768.0
    unscaled, _ = _fit(torch.float32, blow_up_at=2)
    assert not torch.isfinite(unscaled.weight).all()  # what float16 without a scaler risks
