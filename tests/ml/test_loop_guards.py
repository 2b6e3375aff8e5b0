"""The shared loop refuses work it could never finish instead of hanging."""

import pytest
import torch

from ml.config import TrainConfig
from ml.loop import DistInfo, fit


def _loss(model, batch):
    return model(batch["x"]).pow(2).mean(), {}


def _collate(items):
    return {"x": torch.stack(items)}


def test_too_few_examples_for_one_step_is_an_error_not_a_hang():
    model = torch.nn.Linear(2, 1)
    examples = [torch.ones(2) for _ in range(3)]  # 3 micro-batches of 1; a step needs 4
    train = TrainConfig(batch_size=4, micro_batch_size=1, max_steps=1)
    with pytest.raises(ValueError, match="fewer than one optimizer step needs"):
        fit(model, examples, [1] * 3, _collate, _loss, train, DistInfo(), torch.float32)


def test_exactly_one_step_of_examples_trains():
    model = torch.nn.Linear(2, 1)
    examples = [torch.ones(2) for _ in range(4)]
    train = TrainConfig(batch_size=4, micro_batch_size=2, max_steps=2, warmup_ratio=0.0)
    history = fit(model, examples, [1] * 4, _collate, _loss, train, DistInfo(), torch.float32)
    assert [h["step"] for h in history] == [1, 2]
