"""The pure pipeline (no Django): splitter, canonical writer, formats, manifest, archive."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from curation.release import (
    BookInfo,
    GroupInfo,
    PairRecord,
    ReleaseMeta,
    SplitConfig,
    VQARecord,
    assign_splits,
    build,
    preference_of,
)
from curation.release.manifest import verify
from curation.release.writer import ReleaseBuildError


def _png(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (12, 12), (seed % 256, (seed * 7) % 256, 9)).save(buf, "PNG")
    return buf.getvalue()


def _groups(n_figures=300, panels=2, books=5):
    modalities = ["clinical", "dermoscopic", "pathological"]
    out = []
    pid = 0
    for f in range(n_figures):
        for _ in range(panels):
            pid += 1
            out.append(GroupInfo(pid, f, f"book{f % books}", modalities[f % 3]))
    return out


def test_splits_are_deterministic_and_keep_figures_together():
    groups = _groups()
    a = assign_splits(groups, SplitConfig(seed=7))
    b = assign_splits(list(reversed(groups)), SplitConfig(seed=7))
    assert a == b
    assert a != assign_splits(groups, SplitConfig(seed=8))
    by_figure: dict[int, set] = {}
    for g in groups:
        by_figure.setdefault(g.figure_id, set()).add(a[g.pair_id])
    assert all(len(s) == 1 for s in by_figure.values())


def test_splits_are_stratified_by_modality():
    groups = _groups(n_figures=600)
    splits = assign_splits(groups, SplitConfig(seed=1))
    for modality in ("clinical", "dermoscopic", "pathological"):
        counts = Counter(splits[g.pair_id] for g in groups if g.modality == modality)
        total = sum(counts.values())
        assert abs(counts["train"] / total - 0.8) < 0.02
        assert abs(counts["test"] / total - 0.1) < 0.02


def test_book_rule_holds_out_whole_books():
    groups = _groups(n_figures=300, books=10)
    splits = assign_splits(groups, SplitConfig(rule="book", seed=3))
    by_book: dict[str, set] = {}
    for g in groups:
        by_book.setdefault(g.book_key, set()).add(splits[g.pair_id])
    assert all(len(s) == 1 for s in by_book.values())
    assert {next(iter(s)) for s in by_book.values()} >= {"train", "test"}


def test_inherited_splits_are_kept_and_new_groups_fill_the_targets():
    old = _groups(n_figures=200)
    parent = assign_splits(old, SplitConfig(seed=5))
    # The next version: 100 new figures, and a different seed would not matter for old items.
    new = _groups(n_figures=300)
    child = assign_splits(new, SplitConfig(seed=5), inherited=parent)
    assert all(child[p] == s for p, s in parent.items())
    counts = Counter(child.values())
    assert abs(counts["test"] / sum(counts.values()) - 0.1) < 0.03
    # Even a flipped parent assignment wins over what the seed would say now.
    flipped = {p: ("test" if s == "train" else "train") for p, s in parent.items()}
    again = assign_splits(new, SplitConfig(seed=5), inherited=flipped)
    assert all(again[p] == s for p, s in flipped.items())


def test_preferences_come_only_from_expert_corrections():
    def item(status, answer, draft):
        return VQARecord(1, 1, "dx", "Q?", answer, status, draft_answer=draft)

    assert preference_of(item("edited", "Psoriasis", "Eczema")) == (
        "Psoriasis", "Eczema", "expert_edit",
    )  # fmt: skip
    assert preference_of(item("rejected", "Psoriasis", "Tinea"))[2] == "expert_reject"
    assert preference_of(item("accepted", "Psoriasis", "Psoriasis")) is None
    assert preference_of(item("rejected", "Tinea", "Tinea")) is None
    assert preference_of(item("edited", "Same", "Same")) is None


# -- a whole build -----------------------------------------------------------------------------
@pytest.fixture
def built(tmp_path):
    store: dict[str, bytes] = {}
    disk = tmp_path / "store"  # the same crops as files, for builds that hard-link them

    def image(seed):
        data = _png(seed)
        sha = hashlib.sha256(data).hexdigest()
        name = f"crops/{sha[:2]}/{sha}.png"
        store[name] = data
        (disk / name).parent.mkdir(parents=True, exist_ok=True)
        (disk / name).write_bytes(data)
        return name

    pairs = []
    for i in range(1, 41):
        vqa = [VQARecord(i * 10, i, "diagnosis", f"What is shown in {i}?", "Psoriasis", "accepted",
                         draft_answer="Psoriasis")]  # fmt: skip
        if i % 4 == 0:
            vqa.append(VQARecord(i * 10 + 1, i, "diagnosis", "Diagnosis?", "Lichen planus",
                                 "edited", draft_answer="Eczema"))  # fmt: skip
        if i % 5 == 0:
            vqa.append(VQARecord(i * 10 + 2, i, "site", "Where?", "Elbow", "rejected",
                                 draft_answer="Knee"))  # fmt: skip
        pairs.append(
            PairRecord(
                id=i, image=image(i), caption=f"Fig. 2.{i} (a) Plaques, case {i} (arrows).",
                modality=["clinical", "dermoscopic", "pathological"][i % 3],
                book=BookInfo(i % 2 + 1, f"Atlas {i % 2}", "2nd", "f" * 64), page=i,
                figure_id=i // 2, figure_label=f"2.{i}", panel_index=i % 2, age=30 + i,
                sex="male" if i % 2 else "", vqa=tuple(vqa),
            )
        )  # fmt: skip
    # The same crop for two pairs is copied once.
    pairs.append(PairRecord(id=99, image=pairs[0].image, caption="dup", modality="clinical",
                            book=pairs[0].book, page=1, figure_id=0, figure_label="2.0",
                            panel_index=1))  # fmt: skip
    config = SplitConfig(seed=11)
    splits = assign_splits(
        [GroupInfo(p.id, p.figure_id, str(p.book.id), p.modality) for p in pairs], config
    )
    meta = ReleaseMeta(
        name="mmskin", version="1.0.0", created_at="2026-02-03T04:05:06+00:00",
        created_by="curator", filter={"statuses": ["accepted", "edited"]},
        split=config.as_dict(),
    )  # fmt: skip

    def run(workdir: Path, *, local: bool = False):
        fingerprints = {}
        result = build(
            workdir, meta, pairs, splits, lambda path: io.BytesIO(store[path]),
            local_image=(lambda path: disk / path) if local else None,
            on_pair=lambda pair, split, fp: fingerprints.__setitem__(pair.id, fp),
        )  # fmt: skip
        return result, fingerprints

    result, fingerprints = run(tmp_path / "a")
    return {
        "root": tmp_path / "a" / "release", "result": result, "fingerprints": fingerprints,
        "run": run, "tmp": tmp_path, "splits": splits, "pairs": pairs, "disk": disk,
    }  # fmt: skip


def test_canonical_files_and_manifest(built):
    root = built["root"]
    assert verify(root) == []
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["schema_version"] == 1
    assert manifest["split"]["seed"] == 11 and manifest["split"]["rule"] == "figure"
    assert manifest["counts"]["pairs"] == 41
    assert manifest["counts"]["images"] == 40
    for rel in ("pairs.jsonl", "vqa.jsonl", "preferences.jsonl", "DATASET_CARD.md"):
        assert rel in manifest["files"]
    pairs = [json.loads(line) for line in (root / "pairs.jsonl").open()]
    assert pairs[0]["image"].startswith("images/") and (root / pairs[0]["image"]).is_file()
    assert pairs[0]["provenance"]["figure"]["label"] == "2.1"
    prefs = [json.loads(line) for line in (root / "preferences.jsonl").open()]
    assert {p["source"] for p in prefs} == {"expert_edit", "expert_reject"}
    assert all(p["chosen"] != p["rejected"] for p in prefs)
    vqa = [json.loads(line) for line in (root / "vqa.jsonl").open()]
    assert not any(q["provenance"]["status"] == "rejected" for q in vqa)
    card = (root / "DATASET_CARD.md").read_text()
    assert "Counts by book" in card and "Atlas 0" in card and "seed 11" in card


def test_the_ml_package_reads_and_verifies_the_release(built):
    from ml.release import Release

    release = Release(built["root"])
    assert len(release.pairs()) == 41
    assert all(release.image_path(p.image).is_file() for p in release.pairs())
    assert {v.split for v in release.vqa()} <= {"train", "val", "test"}
    assert release.preferences()


def test_same_input_gives_byte_identical_files_and_archive(built):
    again, fingerprints = built["run"](built["tmp"] / "b")
    assert again.archive_sha256 == built["result"].archive_sha256
    assert again.manifest_sha256 == built["result"].manifest_sha256
    assert fingerprints == built["fingerprints"]
    a = (built["tmp"] / "a" / "archive.tar").read_bytes()
    b = (built["tmp"] / "b" / "archive.tar").read_bytes()
    assert a == b and hashlib.sha256(a).hexdigest() == again.archive_sha256


def test_archive_holds_every_file_under_one_folder(built):
    import tarfile

    with tarfile.open(built["tmp"] / "a" / "archive.tar") as tar:
        names = tar.getnames()
        member = tar.getmember("mmskin-1.0.0/manifest.json")
        assert member.mtime == 1770091506 and member.uid == 0 and member.uname == ""
    manifest = json.loads((built["root"] / "manifest.json").read_text())
    assert sorted(names) == sorted(
        ["mmskin-1.0.0/" + p for p in [*manifest["files"], "manifest.json"]]
    )


def _tarfile_bytes(root: Path, prefix: str, mtime: int) -> bytes:
    """The archive as Python's ``tarfile`` writes it, which ``ml`` unpacks with."""
    import tarfile

    from curation.release.manifest import walk_files

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for rel in walk_files(root):
            info = tarfile.TarInfo(f"{prefix}/{rel}")
            info.size = (root / rel).stat().st_size
            info.mtime, info.mode, info.uid, info.gid = mtime, 0o644, 0, 0
            info.uname = info.gname = ""
            with open(root / rel, "rb") as fh:
                tar.addfile(info, fh)
    return out.getvalue()


def test_the_archive_is_byte_for_byte_what_tarfile_writes(built, tmp_path):
    from curation.release.archive import write_archive

    archive = (built["tmp"] / "a" / "archive.tar").read_bytes()
    assert archive == _tarfile_bytes(built["root"], "mmskin-1.0.0", 1770091506)
    # Also with an empty file, a name too long for a plain header and a size on a block edge.
    tree = tmp_path / "tree"
    (tree / "deep" / ("x" * 150)).mkdir(parents=True)
    (tree / "empty.txt").write_bytes(b"")
    (tree / "deep" / ("x" * 150) / "block.bin").write_bytes(b"\1" * 1024)
    (tree / "odd.bin").write_bytes(b"\2" * 1_500_001)
    sha, size = write_archive(tree, tmp_path / "t.tar", prefix="p-1.0.0", mtime=5)
    expected = _tarfile_bytes(tree, "p-1.0.0", 5)
    assert (tmp_path / "t.tar").read_bytes() == expected
    assert (sha, size) == (hashlib.sha256(expected).hexdigest(), len(expected))


def test_local_crops_are_hard_linked_and_checked_against_their_names(built):
    result, fingerprints = built["run"](built["tmp"] / "linked", local=True)
    root = built["tmp"] / "linked" / "release"
    first = built["pairs"][0]
    record = json.loads((root / "pairs.jsonl").open().readline())
    assert record["id"] == f"p{first.id}"
    assert (root / record["image"]).stat().st_ino == (built["disk"] / first.image).stat().st_ino
    # Linked or copied, the release is the same, byte for byte.
    assert result.archive_sha256 == built["result"].archive_sha256
    assert fingerprints == built["fingerprints"]
    assert verify(root) == []

    # A stored crop whose bytes no longer match its name fails the build.
    (built["disk"] / first.image).write_bytes(_png(12345))
    with pytest.raises(ReleaseBuildError, match="does not match the sha256 in its name"):
        built["run"](built["tmp"] / "corrupt", local=True)


def test_a_missing_local_crop_fails_the_build(built):
    (built["disk"] / built["pairs"][3].image).unlink()
    with pytest.raises(ReleaseBuildError, match="missing from storage"):
        built["run"](built["tmp"] / "missing", local=True)


def test_formats_refuse_vqa_lines_out_of_pair_order(tmp_path):
    from curation.release.formats import FormatError, pairs_with_vqa

    (tmp_path / "pairs.jsonl").write_text('{"id":"p1"}\n{"id":"p2"}\n')
    (tmp_path / "vqa.jsonl").write_text('{"id":"q2","pair_id":"p2"}\n{"id":"q1","pair_id":"p1"}\n')
    with pytest.raises(FormatError):
        list(pairs_with_vqa(tmp_path))
    (tmp_path / "vqa.jsonl").write_text('{"id":"q1","pair_id":"p1"}\n{"id":"q2","pair_id":"p2"}\n')
    assert [(p["id"], [q["id"] for q in qs]) for p, qs in pairs_with_vqa(tmp_path)] == [
        ("p1", ["q1"]),
        ("p2", ["q2"]),
    ]


def test_hf_image_bytes_are_stored_uncompressed_and_the_rest_zstd(built):
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(built["root"] / "formats/hf/data/train-00000-of-00001.parquet").metadata
    codecs = {
        meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).compression
        for i in range(meta.num_columns)
    }
    assert codecs.pop("image.bytes") == "UNCOMPRESSED"
    assert set(codecs.values()) == {"ZSTD"} and "vqa.list.element.answer" in codecs


def test_mmskin_csvs_have_the_documented_columns(built):
    root = built["root"] / "formats" / "mmskin"
    with open(root / "caption.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "image", "caption", "modality", "sex", "age", "cleaned_caption", "diagnosis", "split",
    ]  # fmt: skip
    assert len(rows) == 41
    assert rows[0]["cleaned_caption"] == "Plaques, case 1."
    assert not (root / "VQA.csv").exists()  # one file per split: no train rows scored as test
    vqa_lines = [json.loads(line) for line in (built["root"] / "vqa.jsonl").open()]
    for split in ("train", "val", "test"):
        with open(root / f"VQA_{split}.csv", newline="") as fh:
            vqa = list(csv.DictReader(fh))
        assert list(vqa[0]) == ["image", "question", "answer"]
        assert len(vqa) == sum(q["split"] == split for q in vqa_lines)
        assert all((built["root"] / r["image"]).is_file() for r in vqa)


def test_llava_json_uses_the_image_placeholder(built):
    root = built["root"]
    total = 0
    for split in ("train", "val", "test"):
        for item in json.loads((root / "formats/llava" / f"vqa_{split}.json").read_text()):
            human, gpt = item["conversations"]
            assert human["from"] == "human" and human["value"].startswith("<image>\n")
            assert gpt["from"] == "gpt" and gpt["value"]
            assert (root / item["image"]).is_file()
            total += 1
    assert total == sum(1 for _ in (root / "vqa.jsonl").open())


def test_sharegpt_and_llamafactory_dataset_info(built):
    folder = built["root"] / "formats" / "sharegpt"
    info = json.loads((folder / "dataset_info.json").read_text())
    for entry in info.values():
        assert entry["formatting"] == "sharegpt"
        data = json.loads((folder / entry["file_name"]).read_text())
        for row in data:
            messages = row[entry["columns"]["messages"]]
            # LLaMA-Factory: human on odd positions, and one <image> per image.
            assert messages[0]["from"] == "human"
            placeholders = sum(m["value"].count("<image>") for m in messages)
            assert placeholders == len(row[entry["columns"]["images"]]) == 1
            # relative to the release root, LLaMA-Factory's media_dir
            assert all((built["root"] / image).is_file() for image in row["images"])
            if entry.get("ranking"):
                assert row["chosen"]["from"] == row["rejected"]["from"] == "gpt"
                assert len(messages) % 2 == 1
            else:
                assert [m["from"] for m in messages] == ["human", "gpt"]
    assert info["mmskin_dpo_train"]["ranking"] is True
    assert "ranking" not in info["mmskin_sft_train"]


def test_hugging_face_datasets_loads_the_hf_layout_with_images(built):
    datasets = pytest.importorskip("datasets")
    from PIL.Image import Image

    # A cache of its own: datasets' cache key would otherwise match another test's layout.
    ds = datasets.load_dataset(
        str(built["root"] / "formats" / "hf"), cache_dir=str(built["tmp"] / "hf-cache")
    )
    counts = Counter(built["splits"].values())
    assert {s: ds[s].num_rows for s in ds} == {
        "train": counts["train"], "validation": counts["val"], "test": counts["test"],
    }  # fmt: skip
    row = ds["train"][0]
    assert isinstance(row["image"], Image) and row["image"].size == (12, 12)
    assert isinstance(row["vqa"], list) and row["vqa"][0]["question"]
