"""DPO's log-probabilities come from answer positions only, and equal the naive computation."""

import pytest
import torch
import torch.nn.functional as F

from ml.collator import IGNORE_INDEX, ChatCollator
from ml.config import DataConfig
from ml.data import preference_examples
from ml.release import Release
from ml.stages.dpo import PreferenceCollator, sequence_logps
from ml.tiny import build_tiny
from tests.ml.conftest import release_texts


def _naive(model, batch):
    """Full forward with the padding mask, fp32 log-softmax over every position and the vocab."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    gathered = torch.gather(
        F.log_softmax(logits, dim=-1), 2, labels.masked_fill(~mask, 0).unsqueeze(-1)
    ).squeeze(-1)
    return (gathered * mask).sum(dim=-1)


@pytest.mark.parametrize("family", ["llava", "qwen2_5_vl"])
def test_answer_only_logps_equal_the_naive_full_vocabulary_computation(release_dir, family):
    release = Release(release_dir)
    model, processor = build_tiny(family, release_texts(release_dir), seed=3)
    model.eval()
    prefs = preference_examples(release, "train", DataConfig())[:3]
    collate = PreferenceCollator(ChatCollator(processor, max_length=256), None)
    batch = collate(list(enumerate(prefs)))
    # Chosen and rejected answers differ in length: the batch is padded, the case to get right.
    assert int(batch["attention_mask"].sum(dim=1).min()) < batch["attention_mask"].shape[1]
    seen = {}
    original = model.forward

    def spy(*args, **kwargs):
        seen["logits_to_keep"] = kwargs.get("logits_to_keep")
        return original(*args, **kwargs)

    with torch.no_grad():
        model.forward = spy
        fast = sequence_logps(model, batch)
        model.forward = original
        slow = _naive(model, batch)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    # Only answer positions were projected onto the vocabulary.
    keep = seen["logits_to_keep"]
    assert torch.is_tensor(keep) and 0 < keep.numel() < batch["input_ids"].shape[1] // 2
