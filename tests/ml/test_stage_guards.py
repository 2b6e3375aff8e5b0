"""A run whose examples cannot fill one optimiser step fails clearly instead of hanging."""

import pytest

from tests.ml.conftest import run_stage


@pytest.mark.timeout(120)
def test_too_few_examples_for_one_step_fails_instead_of_hanging(
    tmp_path, tiny_model_dirs, release_dir, capsys
):
    # The fixture's 9 train captions make 3 micro-batches of 4; a step of 16 needs 4.
    rc = run_stage(
        "align",
        tiny_model_dirs["llava"],
        release_dir,
        tmp_path / "align",
        "train.batch_size=16",
        "train.micro_batch_size=4",
        "train.max_steps=1",
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "9 align examples make 3 micro-batch(es) of 4" in err and "batch_size=16" in err
    assert not (tmp_path / "align").exists()
