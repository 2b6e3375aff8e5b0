"""Every export loads unchanged in its consumer, each run with the consumer's own code.

- Hugging Face ``datasets``: the installed 5.x in this process, and 3.6.0 in a subprocess
  (installed once into ``var/consumers/`` by pip, next to the venv's other packages).
- TRL's ``DPOTrainer`` (the pinned trl): builds its dataloader from the ``preferences``
  config and tokenises one batch with a tiny random LLaVA model built in the test.
- LLaMA-Factory and LLaVA: too heavy to install here, so their data-loading code is pinned by
  commit under ``tests/releases/vendor/`` (Apache-2.0; see each PROVENANCE.md) and run.
  LLaMA-Factory's template, processors and collators also tokenise the release, in a
  subprocess with torchaudio (see ``torchaudio_path``).
- MM-Skin: its repository has no licence, so nothing of it is copied; the test does what
  ``VQA_test.py`` and ``ZS_classification.py`` (commit 31d105c of ZwQ803/MM-Skin) do to
  read their CSVs: ``pandas.read_csv``, ``row["image"|"question"|"answer"]``, the modality
  looked up in ``caption.csv`` by image, and ``eval`` of the ``categories`` cell.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.releases.consumers import llava_data_module, load_llamafactory, make_release

ROOT = Path(__file__).resolve().parents[2]
SPLITS = {"train": "train", "val": "validation", "test": "test"}
#: ``datasets`` 3.x and the packages whose 3.x-compatible versions differ from the venv's.
DATASETS_3X = ("datasets==3.6.0", "fsspec==2025.3.0", "dill==0.3.8", "multiprocess==0.70.16")


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return make_release(tmp_path_factory.mktemp("consumers"))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _by_split(rows: list[dict]) -> dict[str, int]:
    counts = Counter(r["split"] for r in rows)
    return {SPLITS[s]: counts[s] for s in SPLITS}


# -- Hugging Face datasets ------------------------------------------------------------------
HF_PROBE = """
import json, sys
import datasets
hf, cache = sys.argv[1], sys.argv[2]
pairs = datasets.load_dataset(hf, cache_dir=cache)
prefs = datasets.load_dataset(hf, "preferences", cache_dir=cache)
row, pref = pairs["train"][0], prefs["train"][0]
print(json.dumps({
    "version": datasets.__version__,
    "pairs": {s: pairs[s].num_rows for s in pairs},
    "preferences": {s: prefs[s].num_rows for s in prefs},
    "image_size": list(row["image"].size),
    "vqa": row["vqa"],
    "id": row["id"],
    "split_column": sorted(set(pairs["validation"]["split"])),
    "pref_image_size": list(pref["images"][0].size),
    "prompt": pref["prompt"], "chosen": pref["chosen"], "rejected": pref["rejected"],
    "pref_id": pref["id"],
}))
"""


def _check_hf(result: dict, release: Path) -> None:
    pairs = {p["id"]: p for p in _jsonl(release / "pairs.jsonl")}
    vqa = _jsonl(release / "vqa.jsonl")
    prefs = {p["id"]: p for p in _jsonl(release / "preferences.jsonl")}
    assert result["pairs"] == _by_split(list(pairs.values()))
    assert result["preferences"] == _by_split(list(prefs.values()))
    assert result["split_column"] == ["validation"]
    assert result["image_size"] == result["pref_image_size"] == [42, 30]
    assert result["vqa"] == [
        {k: q[k] for k in ("id", "question_type", "question", "answer")}
        for q in vqa
        if q["pair_id"] == result["id"]
    ]
    pref = prefs[result["pref_id"]]
    assert result["prompt"] == [
        {
            "role": "user",
            "content": [{"type": "image", "text": None}, {"type": "text", "text": pref["prompt"]}],
        }
    ]
    assert result["chosen"] == [
        {"role": "assistant", "content": [{"type": "text", "text": pref["chosen"]}]}
    ]
    assert result["rejected"][0]["content"][0]["text"] == pref["rejected"]


def test_hf_datasets_newest_loads_pairs_and_preferences(release, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", HF_PROBE, str(release / "formats/hf"), str(tmp_path / "cache")],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    result = json.loads(out.stdout.splitlines()[-1])
    import datasets

    assert result["version"] == datasets.__version__ and int(result["version"][0]) >= 4
    _check_hf(result, release)


@pytest.fixture(scope="session")
def datasets_3x() -> Path:
    """A folder holding ``datasets`` 3.6.0 (pip-installed on first use; kept under var/)."""
    target = ROOT / "var" / "consumers" / "datasets-3.6.0"
    if not (target / "datasets" / "__init__.py").is_file():
        partial = target.with_name(target.name + f".{os.getpid()}")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(partial), *DATASETS_3X],
            check=True,
        )  # fmt: skip
        partial.replace(target)
    return target


def test_hf_datasets_3x_loads_pairs_and_preferences(release, tmp_path, datasets_3x):
    env = {**os.environ, "PYTHONPATH": str(datasets_3x)}
    out = subprocess.run(
        [sys.executable, "-c", HF_PROBE, str(release / "formats/hf"), str(tmp_path / "cache")],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["version"] == "3.6.0"
    _check_hf(result, release)


# -- TRL -----------------------------------------------------------------------------------------
def test_trl_dpo_trainer_tokenises_a_batch_of_the_preferences(release, tmp_path):
    import datasets
    import torch
    from trl import DPOConfig, DPOTrainer

    from ml.tiny import save_tiny

    prefs = datasets.load_dataset(
        str(release / "formats/hf"), "preferences", cache_dir=str(tmp_path / "cache")
    )
    texts = [p["prompt"] + " " + p["chosen"] + " " + p["rejected"] for p in
             _jsonl(release / "preferences.jsonl")]  # fmt: skip
    model_dir = tmp_path / "tiny-llava"
    save_tiny("llava", model_dir, texts)  # a checkpoint on disk, loaded by path like a real one
    args = DPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, report_to=[],
        use_cpu=True, max_length=None, dataloader_num_workers=0,
    )  # fmt: skip
    # No user code between the release and the trainer: the config as loaded, the model and
    # its processor by path.
    trainer = DPOTrainer(model=str(model_dir), args=args, train_dataset=prefs["train"])
    batch = next(iter(trainer.get_train_dataloader()))
    image_token = trainer.processing_class.tokenizer.convert_tokens_to_ids("<image>")
    # Two examples, each as chosen and rejected: four rows with the image's tokens in each.
    assert batch["input_ids"].shape[0] == 4
    assert batch["pixel_values"].shape[0] == 4
    assert all((row == image_token).any() for row in batch["input_ids"])
    assert int(batch["completion_mask"].sum()) > 0
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
    assert torch.isfinite(loss)


# -- LLaMA-Factory -----------------------------------------------------------------------------
def test_llamafactory_loads_sharegpt_and_dpo_with_the_release_root_as_media_dir(
    release, tmp_path, monkeypatch
):
    dataset_dir = release / "formats" / "sharegpt"
    names = sorted(json.loads((dataset_dir / "dataset_info.json").read_text()))
    vqa, prefs = _jsonl(release / "vqa.jsonl"), _jsonl(release / "preferences.jsonl")
    pairs = _jsonl(release / "pairs.jsonl")
    loaded = load_llamafactory(names, dataset_dir, release, tmp_path / "cache", monkeypatch)
    for rows in loaded.values():
        for row in rows:
            assert all(Path(p).parent.parent.parent == release for p in row["_images"])
    for split in ("train", "val", "test"):
        assert len(loaded["mmskin_caption_" + split]) == sum(p["split"] == split for p in pairs)
        assert len(loaded["mmskin_sft_" + split]) == sum(q["split"] == split for q in vqa)
        assert len(loaded["mmskin_dpo_" + split]) == sum(p["split"] == split for p in prefs)


#: The newest torchaudio on PyPI. There is no 2.13 for our torch 2.13.0; 2.11's wheel targets
#: torch's stable ABI and asks only ``torch>=2.11``. pip installs it with --no-deps, so no
#: other torch comes with it.
TORCHAUDIO = "torchaudio==2.11.1"


@pytest.fixture(scope="session")
def torchaudio_path() -> Path:
    """A folder holding torchaudio for LLaMA-Factory's ``mm_plugin`` (which imports it at the
    top), pip-installed on first use and kept under var/.

    PyPI's only Linux wheel is built against the CUDA build of torch: its ``lib/*.so``
    extension needs ``libtorch_cuda.so`` and ``libc10_cuda.so``, which the CPU torch we pin
    has not, so ``import torchaudio`` fails with OSError. The CPU build is published only on
    PyTorch's own index, which this project does not use. torchaudio's own loader supports
    an install without that extension (``_extension.utils._load_lib`` returns False when the
    library file is absent, for the pex layout), so the extension is left out: what needs it
    (forced alignment, CTC decoders) raises, the Python code works (the probe resamples), and
    LLaMA-Factory's image path calls none of it.
    """
    target = ROOT / "var" / "consumers" / TORCHAUDIO.replace("==", "-")
    if not (target / "torchaudio" / "__init__.py").is_file():
        partial = target.with_name(target.name + f".{os.getpid()}")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(partial), TORCHAUDIO],
            check=True,
        )  # fmt: skip
        for lib in (partial / "torchaudio" / "lib").glob("*.so"):
            lib.unlink()
        partial.replace(target)
    return target


def test_llamafactory_tokenises_sft_and_dpo_with_its_llava_template(
    release, tmp_path, torchaudio_path
):
    """LLaMA-Factory's template, processors and collators, on the release as shipped: the
    labels mask the prompt (system text, the question, every image token) and cover exactly
    the answer and the end-of-sequence token."""
    env = {**os.environ, "PYTHONPATH": str(torchaudio_path)}
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests/releases/llamafactory_tokenise.py"), str(release),
         str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["torchaudio"].startswith("2.11.1") and result["resampled"] == [1, 80]
    assert result["torchaudio_extension"] is False
    ignore, image_id, eos = result["ignore_index"], result["image_token_id"], result["eos"]
    assert result["image_seq_length"] == 4  # LlavaProcessor's own expansion of one image

    def check(ids: list[int], labels: list[int], text: str, prompt: str, answer: str) -> None:
        assert len(ids) == len(labels)
        supervised = [k for k, label in enumerate(labels) if label != ignore]
        # one block of supervision, at the end, copying the input ids
        assert supervised == list(range(len(ids) - len(supervised), len(ids))) and supervised
        assert all(labels[k] == ids[k] for k in supervised)
        images = [k for k, t in enumerate(ids) if t == image_id]
        assert len(images) == result["image_seq_length"]
        assert max(images) < supervised[0]
        assert text == answer + eos
        assert prompt.endswith("ASSISTANT:") and "<image>" * 4 in prompt

    pairs, vqa = _jsonl(release / "pairs.jsonl"), _jsonl(release / "vqa.jsonl")
    prefs = _jsonl(release / "preferences.jsonl")
    sft = result["datasets"]["sft"]
    wanted = Counter(
        [(p["image"], p["caption"]) for p in pairs if p["split"] == "train"]
        + [(q["image"], q["answer"]) for q in vqa if q["split"] == "train"]
    )
    got = Counter()
    questions = {(q["image"], q["answer"]): q["question"] for q in vqa}
    for row in sft["rows"]:
        (image,) = row["images"]
        key = (str(Path(image).relative_to(release)), row["labels_text"][: -len(eos)])
        got[key] += 1
        check(row["input_ids"], row["labels"], row["labels_text"], row["labels_prompt_text"],
              key[1])  # fmt: skip
        if key in questions and key[1] not in {p["caption"] for p in pairs}:
            assert questions[key] in row["labels_prompt_text"]
    assert got == wanted
    assert sft["batch"]["pixel_values"] == [4, 3, 28, 28] and sft["batch_supervised"] > 0
    # a tiny LLaVA trains on LLaMA-Factory's batch: the loss is finite and a step lowers it
    assert 0 < sft["loss"]["after"] < sft["loss"]["before"] < float("inf")

    dpo = result["datasets"]["rm"]
    train_prefs = [p for p in prefs if p["split"] == "train"]
    assert len(dpo["rows"]) == len(train_prefs) > 0
    by_image = {p["image"]: p for p in train_prefs}
    for row in dpo["rows"]:
        (image,) = row["images"]
        pref = by_image[str(Path(image).relative_to(release))]
        for side in ("chosen", "rejected"):
            check(row[f"{side}_input_ids"], row[f"{side}_labels"], row[f"{side}_labels_text"],
                  row[f"{side}_labels_prompt_text"], pref[side])  # fmt: skip
            assert pref["prompt"] in row[f"{side}_labels_prompt_text"]
    # chosen and rejected rows of 4 examples, with their images
    assert dpo["batch"]["pixel_values"] == [8, 3, 28, 28] and dpo["batch_supervised"] > 0
    # (the language-model loss on the pairwise batch: the DPO loss is LLaMA-Factory's trainer,
    # which is not pinned here; TRL's DPO path is tested above)
    assert 0 < dpo["loss"]["after"] < dpo["loss"]["before"] < float("inf")


# -- LLaVA -------------------------------------------------------------------------------------
def test_llava_lazy_supervised_dataset_reads_the_combined_train_json(release, monkeypatch):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from ml.tiny import train_tokenizer

    llava = llava_data_module(monkeypatch)
    from llava import conversation as conversation_lib
    from llava.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX

    pairs, vqa = _jsonl(release / "pairs.jsonl"), _jsonl(release / "vqa.jsonl")
    tokenizer = train_tokenizer([p["caption"] for p in pairs] + [q["answer"] for q in vqa])
    tokenizer.model_max_length = 2048
    # What llava/train/train.py's train() sets for MM-Skin's finetune_lora.sh (--version v1,
    # --image_folder, --image_aspect_ratio pad, --mm_use_im_start_end False).
    conversation_lib.default_conversation = conversation_lib.conv_templates["vicuna_v1"]
    data_args = llava["DataArguments"](
        data_path=str(release / "formats/llava/train.json"), lazy_preprocess=True,
        is_multimodal=True, image_folder=str(release), image_aspect_ratio="pad",
    )  # fmt: skip
    data_args.image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
    )
    data_args.mm_use_im_start_end = False
    dataset = llava["LazySupervisedDataset"](data_args.data_path, tokenizer, data_args)

    train_pairs = [p for p in pairs if p["split"] == "train"]
    train_vqa = [q for q in vqa if q["split"] == "train"]
    assert len(dataset) == len(train_pairs) + len(train_vqa)  # captions and VQA in one file
    assert all(n > 0 for n in dataset.modality_lengths)  # every sample has an image
    items = [dataset[i] for i in range(len(dataset))]
    for item in items:
        assert item["image"].shape == (3, 28, 28)
        assert int((item["input_ids"] == IMAGE_TOKEN_INDEX).sum()) == 1
        assert (item["labels"] != IGNORE_INDEX).any()  # the answer is supervised
    batch = llava["DataCollatorForSupervisedDataset"](tokenizer=tokenizer)(items[:4])
    assert batch["images"].shape == (4, 3, 28, 28)
    # The per-task files are there too, for a run on one task.
    for task, rows in (("caption", train_pairs), ("vqa", train_vqa)):
        assert len(json.loads((release / f"formats/llava/{task}_train.json").read_text())) == len(
            rows
        )


# -- MM-Skin -----------------------------------------------------------------------------------
def test_mmskin_scripts_read_the_per_split_vqa_and_classification_csvs(release):
    import pandas as pd

    folder = release / "formats" / "mmskin"
    pairs, vqa = _jsonl(release / "pairs.jsonl"), _jsonl(release / "vqa.jsonl")
    cells: set[str] = set()
    captions = pd.read_csv(folder / "caption.csv")
    assert {"image", "caption", "modality", "diagnosis"} <= set(captions.columns)
    for split in ("train", "val", "test"):
        # VQA_test.py: read_csv(--dataset-file), modality looked up in --captions-file by
        # image, then row["image"] (opened under --image-folder), row["question"], row["answer"].
        df = pd.read_csv(folder / f"VQA_{split}.csv")
        assert list(df.columns) == ["image", "question", "answer"]
        modality = df["image"].apply(
            lambda im: captions.loc[captions["image"] == im, "modality"].values[0]
        )
        wanted = [q for q in vqa if q["split"] == split]
        assert len(df) == len(wanted)
        assert list(df["question"]) == [q["question"] for q in wanted]
        assert list(df["answer"]) == [q["answer"] for q in wanted]
        assert set(modality) <= {"clinical", "dermoscopic", "pathological"}
        assert all((release / image).is_file() for image in df["image"])

        # ZS_classification.py: read_csv, row["image"], eval(row["categories"]) then one of
        # the list's items; the raw file spells the column "atributes" and writes ['Melanoma'].
        with open(folder / f"classification_{split}.csv", newline="", encoding="utf-8") as fh:
            raw = list(csv.reader(fh))
        assert raw[0] == ["image", "atributes", "categories"]
        df = pd.read_csv(folder / f"classification_{split}.csv")
        wanted = [p for p in pairs if p["split"] == split and p["diagnosis"]]
        assert list(df["image"]) == [p["image"] for p in wanted]
        categories = [eval(cell) for cell in df["categories"]]  # what MM-Skin runs
        assert categories == [[p["diagnosis"]] for p in wanted]
        assert list(df["atributes"]) == ["[]"] * len(wanted)
        cells |= {row[2] for row in raw[1:]}
    assert "['Melanoma']" in cells  # written as MM-Skin writes it
    assert not (folder / "VQA.csv").exists()
