"""`data.extra`: LLaVA-format datasets mixed in by weight, empty answers skipped and counted."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.config import ConfigError, DataConfig, ExtraDataset, config_from_dict
from ml.data import sft_examples
from ml.mixing import DatasetFormatError, mixed_examples, read_llava_json
from ml.release import Release
from tests.ml.conftest import run_stage


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((40, 40, 3)) * 255).astype("uint8")
    Image.fromarray(arr).save(path)


def write_llava(root: Path, name: str, n: int, empty: int = 0, no_image: int = 0) -> Path:
    """A LLaVA conversation JSON (MM-Skin's Dataframe/Pretrain layout) and its images."""
    records = []
    for i in range(n):
        rel = f"{name}/img{i}.png"
        _image(root / "images" / rel, hash((name, i)) % 1000)
        answer = "" if i < empty else f"This {name} image shows a nevus, case {i}."
        record = {
            "id": f"{name}-{i}",
            "image": rel,
            "conversations": [
                {"from": "human", "value": "<image>\nWhat is the most likely diagnosis?"},
                {"from": "gpt", "value": answer},
            ],
        }
        if empty <= i < empty + no_image:
            del record["image"]
        records.append(record)
    path = root / f"vqa_{name}.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_weights_set_how_often_each_source_is_drawn_and_skips_are_counted(tmp_path):
    a = write_llava(tmp_path, "a", 6, empty=1, no_image=1)
    b = write_llava(tmp_path, "b", 4)
    data = DataConfig(extra=[
        ExtraDataset(path=str(a), image_root=str(tmp_path / "images"), weight=2.0),
        ExtraDataset(path=str(b), image_root=str(tmp_path / "images"), weight=0.5, name="pub"),
    ])  # fmt: skip
    examples, report = mixed_examples(None, None, data, seed=0)
    assert report["vqa_a"] == {"records": 6, "skipped": {"empty_answer": 1, "no_image": 1},
                               "examples": 4, "weight": 2.0, "drawn_per_epoch": 8}  # fmt: skip
    assert report["pub"]["skipped"] == {} and report["pub"]["drawn_per_epoch"] == 2
    by_source = Counter(ex.meta["source"] for ex in examples)
    assert by_source == {"vqa_a": 8, "pub": 2}
    # Every example of the weight-2 source twice; the half of the other is seeded.
    assert Counter(ex.meta["id"] for ex in examples if ex.meta["source"] == "vqa_a") == {
        "a-2": 2, "a-3": 2, "a-4": 2, "a-5": 2,
    }  # fmt: skip
    again, _ = mixed_examples(None, None, data, seed=0)
    assert [e.meta["id"] for e in again] == [e.meta["id"] for e in examples]
    # No empty answer ever becomes a target.
    assert all(m["content"][0]["text"] for e in examples for m in e.messages[1:])


def test_llava_records_become_chat_messages_with_the_image_in_the_first_turn(tmp_path):
    records = [{"id": 1, "image": "x.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A nevus."},
        {"from": "human", "value": "Benign?"}, {"from": "gpt", "value": "Yes."},
    ]}]  # fmt: skip
    _image(tmp_path / "x.png", 1)
    (tmp_path / "d.json").write_text(json.dumps(records))
    (ex,), counts = read_llava_json(ExtraDataset(path=str(tmp_path / "d.json")))
    assert [m["role"] for m in ex.messages] == ["user", "assistant", "user", "assistant"]
    assert ex.messages[0]["content"] == [{"type": "image"}, {"type": "text", "text": "What is it?"}]
    assert ex.messages[2]["content"] == [{"type": "text", "text": "Benign?"}]
    assert ex.image == tmp_path / "x.png" and counts.examples == 1


def test_bad_extra_datasets_are_refused_with_the_reason(tmp_path):
    path = write_llava(tmp_path, "a", 2)
    with pytest.raises(FileNotFoundError, match="image_root"):
        read_llava_json(ExtraDataset(path=str(path), image_root=str(tmp_path)))
    (tmp_path / "bad.json").write_text(json.dumps([{"image": "a/img0.png", "conversations": [
        {"from": "robot", "value": "hi"}]}]))  # fmt: skip
    with pytest.raises(DatasetFormatError, match="unknown speaker"):
        read_llava_json(ExtraDataset(path=str(tmp_path / "bad.json"),
                                     image_root=str(tmp_path / "images")))  # fmt: skip
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict({"data": {"extra": [{"path": "x.json", "wieght": 2}]}})
    with pytest.raises(ConfigError, match="list of mappings"):
        config_from_dict({"data": {"extra": ["x.json"]}})
    cfg = config_from_dict({"data": {"extra": [{"path": "x.json", "weight": 3}]}})
    assert cfg.data.extra == [ExtraDataset(path="x.json", weight=3.0)]
    # A list of plain values stays a list (it used to become the list's repr, a string).
    cfg = config_from_dict({"lora": {"target_modules": ["q_proj", "v_proj"]}})
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]


def test_the_release_own_empty_answers_are_skipped_and_counted(tmp_path, release_dir):
    copy = tmp_path / "r"
    shutil.copytree(release_dir, copy)
    rows = [json.loads(line) for line in (copy / "vqa.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    train[0]["answer"], train[1]["answer"] = "", "   "
    (copy / "vqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    skipped: Counter = Counter()
    examples = sft_examples(Release(copy, verify=False), "train", DataConfig(), skipped)
    assert skipped == {"empty_answer": 2}
    assert len(examples) == len(train) - 2 + 9  # VQA items left, plus the 9 train captions


def test_a_mixed_sft_run_trains_on_each_source_as_weighted(tmp_path, tiny_model_dirs, release_dir):
    extra = write_llava(tmp_path, "pub", 4)
    out = tmp_path / "run"
    # 27 release examples x 1/3 = 9, 4 public x 2.75 = 11: one epoch of 20 = 5 steps of 4.
    spec = [{"path": str(extra), "image_root": str(tmp_path / "images"), "weight": 2.75}]
    rc = run_stage("sft", tiny_model_dirs["llava"], release_dir, out, "train.max_steps=5",
                   f"data.extra={json.dumps(spec)}", "data.release_weight=0.3333")  # fmt: skip
    assert rc == 0
    sources = json.loads((out / "summary.json").read_text())["sources"]
    assert (
        sources["release"]["drawn_per_epoch"] == 9 and sources["vqa_pub"]["drawn_per_epoch"] == 11
    )
    assert sources["release"]["seen"] == 9 and sources["vqa_pub"]["seen"] == 11
