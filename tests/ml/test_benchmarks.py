"""External benchmarks in MM-Skin's CSV formats: reading, matching, scoring, the CLI."""

from __future__ import annotations

import json

import pytest

import ml.evaluate as ev
from ml.bench_eval import score_benchmark
from ml.benchmarks import (
    PROMPT_PRESETS,
    BenchmarkError,
    build_prompt,
    load_benchmark,
    load_suite,
    match_normalised,
    normalise,
    read_csv,
)
from ml.cli import main
from tests.ml.bench_fixtures import CLASS_COLOURS, write_classification, write_vqa
from tests.ml.conftest import TINY_CONFIG


def test_reads_mmskin_classification_csv_with_its_atributes_spelling(tmp_path):
    path = write_classification(tmp_path, "HAM10000_test")
    assert path.read_text().splitlines()[0] == "image,atributes,categories"
    kind, items = read_csv(path)
    assert kind == "classification" and len(items) == 9
    assert items[0].image == "HAM10000_test/ISIC_0000000.jpg"
    assert items[0].categories == ["Nevus"] and items[0].row == 1


def test_reads_patch16_style_csv_with_attributes_and_set(tmp_path):
    path = write_classification(tmp_path, "Patch16_2class_test", patch16_style=True)
    kind, items = read_csv(path)
    assert kind == "classification" and {c for it in items for c in it.categories} == set(
        CLASS_COLOURS
    )


def test_reads_vqa_csv_with_quoted_answers(tmp_path):
    kind, items = read_csv(write_vqa(tmp_path))
    assert kind == "vqa"
    assert items[1].answer == "No, the lesion is flat against the skin surface."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,label\na.jpg,x\n", "neither a classification CSV"),
        ("file,categories\na.jpg,['x']\n", "no `image` column"),
        ("image,atributes,categories\na.jpg,[],[]\n", "row 1: no category"),
        ("image,atributes,categories\na.jpg,[],['x'\n", "not a list literal"),
        ("image,atributes,categories\na.jpg,[],[1]\n", "list of strings"),
        ("image,question,answer\na.jpg,What?,\n", "row 1: empty question or answer"),
        ("image,atributes,categories\n", "no rows"),
    ],
)
def test_bad_csv_is_refused_with_the_row(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(BenchmarkError, match=message):
        read_csv(path)


def test_missing_images_are_named_before_any_model_loads(tmp_path):
    path = write_classification(tmp_path, "HAM10000_test")
    (tmp_path / "images" / "HAM10000_test" / "ISIC_0000004.jpg").unlink()
    with pytest.raises(BenchmarkError, match=r"1 of 9 images .*row 5: HAM10000_test/ISIC_0000004"):
        load_benchmark(path, tmp_path / "images")


def test_fixed_labels_must_cover_every_gold_category(tmp_path):
    path = write_classification(tmp_path, "HAM10000_test")
    with pytest.raises(BenchmarkError, match=r"\['other'\] are not among the --labels"):
        load_benchmark(path, tmp_path / "images", labels="Nevus,Melanoma")
    bench = load_benchmark(path, tmp_path / "images", labels="nevus,MELANOMA,Other,Scar")
    assert bench.labels == ["nevus", "MELANOMA", "Other", "Scar"]
    assert "nevus, MELANOMA, Other, Scar" in bench.prompt


def test_labels_from_file_and_duplicates_refused(tmp_path):
    path = write_classification(tmp_path, "HAM10000_test")
    (tmp_path / "labels.txt").write_text("Nevus\nMelanoma\nother\n")
    bench = load_benchmark(path, tmp_path / "images", labels=f"@{tmp_path / 'labels.txt'}")
    assert bench.labels == ["Nevus", "Melanoma", "other"]
    with pytest.raises(BenchmarkError, match="given twice"):
        load_benchmark(path, tmp_path / "images", labels="Nevus,nevus")


def test_mmskin_prompt_preset_is_mmskins_question_and_templates_work():
    assert build_prompt("mmskin", ["A", "B"]) == (
        "This is a skin lesion image. From the following categories: A, B, "
        "which one is the diagnosis?"
    )
    assert build_prompt("open", ["A", "B"]) == PROMPT_PRESETS["open"]
    assert build_prompt("Pick one of {labels}.", ["A", "B"]) == "Pick one of A, B."
    with pytest.raises(BenchmarkError, match="no preset"):
        build_prompt("mmskn", ["A"])


def test_normalised_match_is_whole_words_and_earliest():
    labels = ["Nevus", "Melanoma", "other", "Non-Malignant", "Malignant"]
    assert match_normalised("another lesion, others too", labels) is None
    assert match_normalised("It is other.", labels) == "other"
    assert match_normalised("melanoma, not a nevus", labels) == "Melanoma"
    assert match_normalised("a nevus rather than melanoma", labels) == "Nevus"
    assert match_normalised("non malignant", labels) == "Non-Malignant"
    assert match_normalised("This is malignant", labels) == "Malignant"
    assert match_normalised("nevuses", labels) is None
    assert normalise("  Café-au-lait_Macule. ") == "cafe au lait macule"


def _perfect(bench):
    return [f"The diagnosis is {it.categories[0]}." for it in bench.items]


def test_perfect_answers_score_one_including_class_other(tmp_path):
    bench = load_benchmark(write_classification(tmp_path, "BCN"), tmp_path / "images")
    scores, rows = score_benchmark(bench, _perfect(bench))
    cls = scores["classification"]
    assert cls["accuracy"] == cls["macro_f1"] == 1.0 and cls["unmatched"] == 0
    assert cls["per_class"]["other"] == {"n": 3, "accuracy": 1.0}
    assert all(r["correct"] for r in rows)


def test_confusion_matrix_and_per_class_accuracy(tmp_path):
    bench = load_benchmark(write_classification(tmp_path, "BCN"), tmp_path / "images")
    answers = _perfect(bench)
    answers[0] = "Melanoma"  # a nevus called melanoma
    answers[6] = "Another lesion"  # an `other` that names no label
    cls = score_benchmark(bench, answers)[0]["classification"]
    labels = cls["confusion"]["labels"]
    assert labels == ["Melanoma", "Nevus", "other"]
    assert cls["confusion"]["columns"][-1] == "(no label)"
    m = cls["confusion"]["matrix"]
    assert m[labels.index("Nevus")] == [1, 2, 0, 0]
    assert m[labels.index("other")] == [0, 0, 2, 1]
    assert cls["per_class"]["Nevus"]["accuracy"] == pytest.approx(2 / 3)
    assert cls["accuracy"] == pytest.approx(7 / 9) and cls["unmatched"] == 1
    from sklearn.metrics import f1_score

    gold = ["Nevus"] * 3 + ["Melanoma"] * 3 + ["other"] * 3
    pred = ["Melanoma", "Nevus", "Nevus", *["Melanoma"] * 3, "none", "other", "other"]
    assert cls["macro_f1"] == pytest.approx(
        f1_score(gold, pred, average="macro", labels=["Melanoma", "Nevus", "other"])
    )


def test_a_row_with_several_categories_is_right_on_any(tmp_path):
    (tmp_path / "images").mkdir()
    from tests.ml.bench_fixtures import write_image

    write_image(tmp_path / "images" / "a.jpg", (1, 2, 3), 0)
    (tmp_path / "multi.csv").write_text(
        "image,atributes,categories\na.jpg,[],\"['Nevus', 'Melanoma']\"\n"
    )
    bench = load_benchmark(tmp_path / "multi.csv", tmp_path / "images")
    for answer in ("melanoma", "nevus"):
        assert score_benchmark(bench, [answer])[0]["classification"]["accuracy"] == 1.0


def _eval_args(tiny_model_dirs, out, *extra):
    return [
        "eval",
        "--config",
        str(TINY_CONFIG),
        "--set",
        f"model.path={tiny_model_dirs['llava']}",
        "--set",
        f"train.output_dir={out}",
        "--set",
        "eval.max_new_tokens=4",
        *extra,
    ]


def test_cli_evaluates_mmskin_csvs_end_to_end(tmp_path, tiny_model_dirs, capsys):
    """A classification and a VQA CSV in MM-Skin's format, a tiny model, the real CLI."""
    cls_csv = write_classification(tmp_path, "HAM10000_test")
    vqa_csv = write_vqa(tmp_path)
    out = tmp_path / "out"
    args = ["--benchmark", str(cls_csv), "--benchmark", str(vqa_csv)]
    rc = main(_eval_args(tiny_model_dirs, out, *args, "--images", str(tmp_path / "images")))
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["HAM10000_test"]["kind"] == "classification"
    assert printed["HAM10000_test"]["n"] == 9 and printed["VQA_test"]["n"] == 4
    scores = json.loads((out / "benchmarks" / "HAM10000_test" / "scores.json").read_text())
    cls = scores["classification"]
    assert sum(map(sum, cls["confusion"]["matrix"])) == 9
    assert scores["benchmark"]["prompt"].startswith("This is a skin lesion image.")
    assert scores["decoding"]["max_new_tokens"] == 4
    rows = (out / "benchmarks" / "HAM10000_test" / "predictions.jsonl").read_text().splitlines()
    assert len(rows) == 9 and json.loads(rows[0])["categories"] == ["Nevus"]
    vqa = json.loads((out / "benchmarks" / "VQA_test" / "scores.json").read_text())["vqa"]
    assert {"bleu1", "bleu4", "rouge_l", "recall", "closed_accuracy"} <= set(vqa["all"])
    assert vqa["all"]["closed_n"] == 2
    summary = json.loads((out / "benchmarks.json").read_text())["benchmarks"]
    assert set(summary) == {"HAM10000_test", "VQA_test"}


def test_cli_refuses_a_benchmark_without_images(tmp_path, tiny_model_dirs, capsys):
    cls_csv = write_classification(tmp_path, "HAM10000_test")
    rc = main(_eval_args(tiny_model_dirs, tmp_path / "out", "--benchmark", str(cls_csv)))
    assert rc == 1 and "--images" in capsys.readouterr().err
    rc = main(
        _eval_args(
            tiny_model_dirs,
            tmp_path / "out",
            "--benchmark",
            str(cls_csv),
            "--images",
            str(tmp_path / "nowhere"),
        )
    )
    assert rc == 1 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_suite_file_evaluates_every_benchmark_with_one_command(tmp_path, monkeypatch, capsys):
    write_classification(tmp_path / "data", "HAM10000_test")
    write_classification(tmp_path / "data", "DDI_test", seed=1, patch16_style=True)
    write_vqa(tmp_path / "data")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "images: data/images\n"
        "prompt_style: mmskin\n"
        "benchmarks:\n"
        "  - csv: data/HAM10000_test.csv\n"
        "  - name: DDI\n"
        "    csv: data/DDI_test.csv\n"
        "    prompt_style: 'Which of {labels}?'\n"
        "    labels: [Nevus, Melanoma, other, Scar]\n"
        "  - csv: data/VQA_test.csv\n"
    )
    asked = []

    def perfect(model, processor, items, cfg, device):
        asked.extend(it["question"] for it in items)
        return ["Nevus" for _ in items]

    monkeypatch.setattr(ev, "load_for_eval", lambda cfg, device: (None, None))
    monkeypatch.setattr(ev, "generate", perfect)
    out = tmp_path / "out"
    rc = main(
        [
            "eval",
            "--config",
            str(TINY_CONFIG),
            "--set",
            f"train.output_dir={out}",
            "--suite",
            str(suite),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "benchmarks.json").read_text())["benchmarks"]
    assert set(summary) == {"HAM10000_test", "DDI", "VQA_test"}
    assert summary["HAM10000_test"]["accuracy"] == pytest.approx(1 / 3)
    assert "Which of Nevus, Melanoma, other, Scar?" in asked
    ddi = json.loads((out / "benchmarks" / "DDI" / "scores.json").read_text())
    assert ddi["classification"]["per_class"]["Scar"] == {"n": 0, "accuracy": None}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("benchmarks: []\n", "lists no benchmarks"),
        ("benchmark: []\n", "a `benchmarks` list"),
        ("benchmarks:\n  - name: x\n", "needs a `csv`"),
        ("benchmarks:\n  - csv: a.csv\n    lables: [x]\n", "unknown key"),
        ("images: data/images\nbenchmarks:\n  - csv: nope.csv\n", "no such benchmark CSV"),
        (
            "images: data/images\nbenchmarks:\n  - csv: data/A.csv\n  - csv: data/A.csv\n",
            "two benchmarks are named",
        ),
    ],
)
def test_bad_suite_is_refused(tmp_path, text, message):
    write_classification(tmp_path / "data", "A")
    (tmp_path / "suite.yaml").write_text(text)
    with pytest.raises(BenchmarkError, match=message):
        load_suite(tmp_path / "suite.yaml")


def test_the_shipped_mmskin_suite_loads_beside_csvs_of_its_names(tmp_path):
    """ml/suites/mmskin.yaml, copied next to MM-Skin-format CSVs of the names it lists."""
    import shutil
    from pathlib import Path

    import yaml

    from tests.ml.bench_fixtures import write_image

    shipped = Path(__file__).resolve().parents[2] / "ml" / "suites" / "mmskin.yaml"
    suite = tmp_path / "mmskin.yaml"
    shutil.copy(shipped, suite)
    write_image(tmp_path / "images" / "x.jpg", (9, 9, 9), 0)
    for entry in yaml.safe_load(shipped.read_text())["benchmarks"]:
        path = tmp_path / entry["csv"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if entry["csv"].startswith("vqa/"):
            path.write_text('image,question,answer\nx.jpg,Is it raised?,"No, it is flat."\n')
        else:
            label = (entry.get("labels") or ["Nevus"])[-1]
            path.write_text(f"image,atributes,categories\nx.jpg,[],['{label}']\n")
    benches = load_suite(suite, images=tmp_path / "images")
    assert len(benches) == 10 and benches[-1].kind == "vqa"
    mskcc = next(b for b in benches if b.name == "MSKCC")
    assert len(mskcc.labels) == 21 and mskcc.prompt.startswith("This is a skin lesion image.")


def test_limit_keeps_the_whole_csvs_label_set(tmp_path):
    path = write_classification(tmp_path, "HAM10000_test")
    bench = load_benchmark(path, tmp_path / "images", limit=2)
    assert len(bench.items) == 2 and bench.labels == ["Melanoma", "Nevus", "other"]
