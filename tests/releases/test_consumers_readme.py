"""The README's "Loading a release in other tools" snippets run as written on an unpacked release.

Python snippets run in a subprocess in a folder holding the unpacked archive (only the model
name is swapped for a tiny local LLaVA, and the DPO trainer told to run two steps on CPU).
The LLaMA-Factory YAML goes to LLaMA-Factory's pinned loader; the LLaVA and MM-Skin command
lines are parsed and their arguments fed to the data code those scripts run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.releases.consumers import llava_data_module, load_llamafactory, make_release

ROOT = Path(__file__).resolve().parents[2]
HEADING = "## Loading a release in other tools"
README_MODEL = '"llava-hf/llava-1.5-7b-hf"'
#: The README's trainer config, and what this CPU-only test runs instead (two short steps).
README_DPO_CONFIG = 'DPOConfig(output_dir="dpo-out")'
CPU_DPO_CONFIG = (
    'DPOConfig(output_dir="dpo-out", use_cpu=True, bf16=False, max_steps=2, '
    "per_device_train_batch_size=2, report_to=[])"
)


def _snippets() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text("utf-8")
    assert HEADING in text
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL)


def _command(code: str) -> tuple[list[str], dict[str, str]]:
    """A README command line: its words before the flags, and its ``--flag value`` pairs."""
    words = [w for w in shlex.split(code.replace("\\\n", " ")) if w != "..."]
    flags = {}
    head = []
    it = iter(words)
    for word in it:
        if word.startswith("--"):
            flags[word[2:]] = next(it)
        elif not flags:
            head.append(word)
    return head, flags


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory) -> Path:
    """A folder holding ``mmskin-1.0.0/``, the release archive unpacked as a user would."""
    work = tmp_path_factory.mktemp("readme")
    make_release(work / "build")
    cwd = work / "cwd"
    with tarfile.open(work / "build" / "archive.tar") as tar:
        tar.extractall(cwd, filter="data")
    assert (cwd / "mmskin-1.0.0" / "manifest.json").is_file()
    return cwd


def test_the_readme_has_a_snippet_per_consumer():
    kinds = [lang for lang, _ in _snippets()]
    assert kinds == ["python", "python", "yaml", "bash", "bash"]


def test_the_python_snippets_run(unpacked, tmp_path):
    from ml.tiny import save_tiny

    model_dir = tmp_path / "tiny-llava"
    prefs = (unpacked / "mmskin-1.0.0" / "preferences.jsonl").read_text("utf-8").splitlines()
    save_tiny("llava", model_dir, [" ".join(json.loads(line).values()) for line in prefs])
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    for lang, code in _snippets():
        if lang != "python":
            continue
        if README_MODEL in code:
            assert README_DPO_CONFIG in code
            code = code.replace(README_MODEL, repr(str(model_dir)))
            code = code.replace(README_DPO_CONFIG, CPU_DPO_CONFIG)
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=unpacked, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, f"{code}\n{out.stderr[-4000:]}"
    # The DPO snippet trained and saved a checkpoint in its output folder.
    assert any((unpacked / "dpo-out").glob("checkpoint-*/model.safetensors"))


def test_the_llamafactory_keys_load_each_dataset(unpacked, tmp_path, monkeypatch):
    (config,) = [yaml.safe_load(code) for lang, code in _snippets() if lang == "yaml"]
    monkeypatch.chdir(unpacked)  # the paths are relative, as in a user's training YAML
    names = config["dataset"].split(",")
    loaded = load_llamafactory(
        names, Path(config["dataset_dir"]), Path(config["media_dir"]), tmp_path, monkeypatch
    )
    assert all(loaded[name] for name in names)


def test_the_llava_command_line_feeds_llavas_dataset(unpacked, monkeypatch):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from ml.tiny import train_tokenizer

    (code,) = [code for lang, code in _snippets() if lang == "bash" and "llava/train" in code]
    _, flags = _command(code)
    monkeypatch.chdir(unpacked)
    llava = llava_data_module(monkeypatch)
    from llava import conversation as conversation_lib
    from llava.constants import IMAGE_TOKEN_INDEX

    conversation_lib.default_conversation = conversation_lib.conv_templates[
        {"v1": "vicuna_v1"}[flags["version"]]
    ]
    data_args = llava["DataArguments"](
        data_path=flags["data_path"], lazy_preprocess=True, is_multimodal=True,
        image_folder=flags["image_folder"], image_aspect_ratio=flags["image_aspect_ratio"],
    )  # fmt: skip
    data_args.image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
    )
    data_args.mm_use_im_start_end = False
    tokenizer = train_tokenizer(["Describe this dermatology image. What is the diagnosis?"])
    dataset = llava["LazySupervisedDataset"](data_args.data_path, tokenizer, data_args)
    assert len(dataset) > 0
    for i in range(len(dataset)):
        assert int((dataset[i]["input_ids"] == IMAGE_TOKEN_INDEX).sum()) == 1


def test_the_mmskin_command_line_points_at_files_its_script_reads(unpacked):
    import pandas as pd

    (code,) = [code for lang, code in _snippets() if lang == "bash" and "VQA_test.py" in code]
    head, flags = _command(code)
    assert head == ["python", "VQA_test.py"]
    df = pd.read_csv(unpacked / flags["dataset-file"])
    captions = pd.read_csv(unpacked / flags["captions-file"])
    assert list(df.columns) == ["image", "question", "answer"] and len(df)
    for image in df["image"]:
        assert len(captions.loc[captions["image"] == image, "modality"].values) == 1
        assert (unpacked / flags["image-folder"] / image).is_file()
