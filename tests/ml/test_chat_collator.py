"""One chat template for training and evaluation; labels only on answers."""

import pytest
import torch
from PIL import Image

from ml.chat import conversation, prompt_for_generation, render, training_text
from ml.collator import IGNORE_INDEX, ChatCollator, ChatExample
from ml.modeling import load_processor
from ml.release import Release


@pytest.fixture
def processor(tiny_model_dirs, family):
    return load_processor(tiny_model_dirs[family])


def _examples(release_dir, n=3):
    rel = Release(release_dir)
    items = rel.vqa("train")[:n]
    return [
        ChatExample(rel.image_path(v.image), conversation(v.question, v.answer)) for v in items
    ], items


def test_labels_cover_answers_only(processor, release_dir):
    examples, items = _examples(release_dir)
    batch = ChatCollator(processor)(examples)
    tok = processor.tokenizer
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    assert batch["labels"].shape == batch["input_ids"].shape
    for row, item in enumerate(items):
        labels, ids = batch["labels"][row], batch["input_ids"][row]
        labelled = labels != IGNORE_INDEX
        # Labelled tokens are exactly the answer plus the template's end-of-turn marker.
        text = tok.decode(ids[labelled], skip_special_tokens=True).strip()
        assert text == item.answer
        assert torch.equal(labels[labelled], ids[labelled])
        # The labelled span is one contiguous block after every image token.
        pos = labelled.nonzero().flatten()
        assert pos.numel() == int(pos[-1] - pos[0] + 1)
        assert (ids == image_id).nonzero().max() < pos[0]
        # Padding is never labelled.
        assert not labelled[batch["attention_mask"][row] == 0].any()


def test_train_and_eval_prompts_are_identical(processor, release_dir):
    """The eval prompt is exactly the training input up to the first answer token."""
    examples, items = _examples(release_dir, n=2)
    batch = ChatCollator(processor)(examples)
    for row, (ex, item) in enumerate(zip(examples, items, strict=True)):
        eval_prompt = prompt_for_generation(processor, item.question)
        train_text = training_text(processor, item.question, item.answer)
        assert train_text.startswith(eval_prompt)
        assert render(processor, ex.messages) == train_text
        with Image.open(ex.image) as im:
            eval_ids = processor(
                text=[eval_prompt], images=[im.convert("RGB")], return_tensors="pt"
            )
        first_answer = int((batch["labels"][row] != IGNORE_INDEX).nonzero()[0])
        assert torch.equal(eval_ids["input_ids"][0], batch["input_ids"][row, :first_answer])


def test_truncation_refuses_to_cut_images(processor, release_dir):
    examples, _ = _examples(release_dir, n=1)
    full = ChatCollator(processor)(examples)
    n = full["input_ids"].shape[1]
    cut = ChatCollator(processor, max_length=n - 2)(examples)
    assert cut["input_ids"].shape[1] == n - 2 and cut["labels"].shape[1] == n - 2
    with pytest.raises(ValueError, match="max_length"):
        ChatCollator(processor, max_length=3)(examples)
