"""`train --stage sft_cls`: MM-Skin's supervised classification (a probe on image features)."""

from __future__ import annotations

import json

import pytest

from ml.cli import main
from tests.ml.bench_fixtures import write_classification, write_vqa
from tests.ml.conftest import TINY_CONFIG


def _train(model_dir, root, out, *extra):
    args = ["train", "--stage", "sft_cls", "--config", str(TINY_CONFIG)]
    for item in (
        f"model.path={model_dir}",
        f"train.output_dir={out}",
        f"sft_cls.train_csv={root / 'HAM10000_train.csv'}",
        f"sft_cls.test_csv={root / 'HAM10000_test.csv'}",
        f"sft_cls.images={root / 'images'}",
        *extra,
    ):
        args += ["--set", item]
    return main(args)


@pytest.fixture
def cls_csvs(tmp_path):
    write_classification(tmp_path, "HAM10000_train", n_per_class=6, seed=2)
    write_classification(tmp_path, "HAM10000_test", n_per_class=3, seed=3)
    return tmp_path


def test_sft_cls_fits_on_train_csv_and_scores_test_csv(cls_csvs, tiny_model_dirs, family, capsys):
    """The classes differ by colour, so a probe on the image features separates them."""
    out = cls_csvs / "out"
    assert _train(tiny_model_dirs[family], cls_csvs, out) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["summary"]
    assert summary["train_rows"] == 18 and summary["test_rows"] == 9
    assert summary["accuracy"] == 1.0 and summary["macro_f1"] == 1.0
    scores = json.loads((out / "sft_cls.json").read_text())
    assert scores["labels"] == ["Melanoma", "Nevus", "other"]
    assert scores["probe"]["folds"] == 5 and scores["probe"]["C"] in scores["probe"]["c_grid"]
    assert scores["classification"]["per_class"]["other"]["accuracy"] == 1.0
    assert (out / "probe.joblib").is_file()
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 9


def test_sft_cls_learns_the_train_labels_not_a_constant(cls_csvs, tiny_model_dirs):
    """Train labels permuted (Nevus<->Melanoma): the probe follows them, so the test rows
    of those two classes are all wrong, and `other` stays right."""
    train = cls_csvs / "HAM10000_train.csv"
    text = train.read_text().replace("'Nevus'", "'@'").replace("'Melanoma'", "'Nevus'")
    train.write_text(text.replace("'@'", "'Melanoma'"))
    out = cls_csvs / "out"
    assert _train(tiny_model_dirs["llava"], cls_csvs, out) == 0
    per_class = json.loads((out / "sft_cls.json").read_text())["classification"]["per_class"]
    assert per_class["Nevus"]["accuracy"] == per_class["Melanoma"]["accuracy"] == 0.0
    assert per_class["other"]["accuracy"] == 1.0


def test_sft_cls_refuses_missing_settings_and_a_vqa_csv(cls_csvs, tiny_model_dirs, capsys):
    args = ["train", "--stage", "sft_cls", "--config", str(TINY_CONFIG)]
    assert main([*args, "--set", f"model.path={tiny_model_dirs['llava']}"]) == 1
    assert "sft_cls.train_csv" in capsys.readouterr().err
    write_vqa(cls_csvs)
    rc = _train(
        tiny_model_dirs["llava"],
        cls_csvs,
        cls_csvs / "out",
        f"sft_cls.test_csv={cls_csvs / 'VQA_test.csv'}",
    )
    assert rc == 1 and "is a VQA CSV" in capsys.readouterr().err
    rc = _train(tiny_model_dirs["llava"], cls_csvs, cls_csvs / "out", "sft_cls.labels=Nevus,other")
    assert rc == 1 and "['Melanoma'] are not in sft_cls.labels" in capsys.readouterr().err
    assert not (cls_csvs / "out").exists()


def test_sft_cls_settings_survive_the_saved_config_round_trip(tmp_path):
    """A stage's saved config.yaml is read back (the worker, `merge`): lists stay lists."""
    from ml.config import config_from_dict, dump_config, load_config

    cfg = config_from_dict({"sft_cls": {"labels": ["Nevus", "other"], "c_grid": [0.1, 1]}})
    dump_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml", ["sft_cls.folds=3"])
    assert again.sft_cls.labels == ["Nevus", "other"] and again.sft_cls.c_grid == [0.1, 1]
    cli = load_config(tmp_path / "config.yaml", ["sft_cls.labels=Nevus,Melanoma"])
    assert cli.sft_cls.labels == ["Nevus", "Melanoma"]
