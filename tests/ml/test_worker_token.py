"""The worker refuses to start without a token (compose passes one; a missing one is a typo)."""

from ml.cli import main


def test_worker_without_a_token_is_refused_at_start(monkeypatch, capsys):
    monkeypatch.delenv("MMSKIN_TOKEN", raising=False)
    assert main(["worker", "--url", "http://127.0.0.1:9", "--once"]) == 1
    assert "MMSKIN_TOKEN" in capsys.readouterr().err
