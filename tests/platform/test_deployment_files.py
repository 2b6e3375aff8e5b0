"""docker compose cannot run here: check that what it names exists in the project instead."""

import re
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
QUEUES = {"ingest", "llm", "release"}  # training takes runs over the API, not a queue
SETTINGS_SRC = (ROOT / "skinplatform" / "settings.py").read_text()
READ_BY_SETTINGS = set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', SETTINGS_SRC))
README = (ROOT / "README.md").read_text()
README_VARS = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", README, flags=re.M))
COMPOSE_ONLY = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
COMPOSE_ONLY |= {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
COMPOSE_ONLY |= {"MODELS_DIR"}  # the gpu-worker's volume of model checkpoints
# `python -m ml` (the gpu-worker) reads its own variables, not Django's settings.
ML_CLI_SRC = (ROOT / "ml" / "cli.py").read_text()
READ_BY_ML = set(re.findall(r'os\.environ\.get\(\s*"([A-Z0-9_]+)"', ML_CLI_SRC))


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_setting_is_documented_and_every_documented_variable_is_read():
    assert READ_BY_SETTINGS == README_VARS


def test_services_are_all_there(compose):
    expected = {"postgres", "redis", "web", "worker", "beat", "gpu-worker", "minio"}
    assert expected <= set(compose["services"])
    gpu = compose["services"]["gpu-worker"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_every_command_exists_in_the_project(compose):
    commands = get_commands()
    for name, service in compose["services"].items():
        cmd = service.get("command")
        if not cmd or ("image" in service and "build" not in service):
            continue
        if cmd[:2] == ["python", "manage.py"]:
            assert cmd[2] in commands, f"{name}: no management command {cmd[2]}"
        elif cmd[0] == "celery":
            assert cmd[cmd.index("-A") + 1] == "skinplatform"
            assert cmd[3] in ("worker", "beat"), f"{name}: unexpected celery command"
            if cmd[3] == "worker":
                queues = set(cmd[cmd.index("-Q") + 1].split(","))
                assert queues <= QUEUES, f"{name}: unknown queues {queues - QUEUES}"
        elif cmd[:3] == ["python", "-m", "ml"]:
            _check_ml_command(name, cmd)
        elif cmd[0] == "gunicorn":
            module = cmd[1].replace(".", "/") + ".py"
            assert (ROOT / module).exists(), f"{name}: {module} missing"
        else:
            pytest.fail(f"{name}: unexpected command {cmd}")


def _check_ml_command(name: str, cmd: list[str]) -> None:
    """The verb and flags parse with ml's own CLI, and a --config names a shipped file."""
    from ml.cli import _parser

    args = _parser().parse_args(cmd[3:])
    assert args.verb == "worker", f"{name}: the GPU service runs `python -m ml worker`"
    if args.config:
        assert (ROOT / args.config).is_file(), f"{name}: {args.config} missing"


def test_the_gpu_worker_runs_the_ml_worker_with_a_token(compose):
    gpu = compose["services"]["gpu-worker"]
    assert gpu["command"][:4] == ["python", "-m", "ml", "worker"]
    assert {"MMSKIN_URL", "MMSKIN_TOKEN"} <= set(gpu["environment"])
    # It talks to the platform over the API only: no database URL or secret key.
    assert not {"DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL"} & set(gpu["environment"])
    assert "env_file" not in gpu


def test_every_celery_route_names_a_served_queue_and_an_existing_module():
    from django.conf import settings

    for pattern, route in settings.CELERY_TASK_ROUTES.items():
        assert route["queue"] in QUEUES, f"{pattern}: no worker serves queue {route['queue']}"
        module = pattern.removesuffix(".*").replace(".", "/") + ".py"
        assert (ROOT / module).is_file(), f"{pattern}: {module} does not exist"


def test_no_text_names_the_removed_gpu_queue():
    for path in ("README.md", "docker-compose.yml", "skinplatform/celery.py"):
        text = (ROOT / path).read_text()
        assert "queue `gpu`" not in text and "-Q gpu" not in text and "release, gpu" not in text


def test_every_environment_variable_is_one_the_project_reads(compose):
    for name, service in compose["services"].items():
        for key in service.get("environment") or {}:
            is_ml = (service.get("command") or [])[:3] == ["python", "-m", "ml"]
            read = READ_BY_ML if is_ml else READ_BY_SETTINGS
            assert key in read or key in COMPOSE_ONLY, f"{name}: {key} unused"
    env_example = (ROOT / ".env.example").read_text()
    for key in re.findall(r"^([A-Z0-9_]+)=", env_example, flags=re.M):
        known = READ_BY_SETTINGS | READ_BY_ML | COMPOSE_ONLY
        assert key in known, f".env.example: {key} unused"


def test_dockerfile_copies_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("skinplatform", "curation", "workers", "ml", "frontend_templates"):
        assert f"COPY {package} " in dockerfile


def test_beat_schedules_a_task_that_exists():
    from django.conf import settings

    from skinplatform.celery import app

    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks


def test_the_web_healthcheck_passes_against_a_server_with_a_real_host_name(
    compose, live_server, settings
):
    """The probe connects by address; Django must still see an allowed Host, or it answers 400."""
    import os
    import subprocess
    import sys

    settings.ALLOWED_HOSTS = ["skin.example.org"]
    _, interpreter, flag, code = compose["services"]["web"]["healthcheck"]["test"]
    assert (interpreter, flag) == ("python", "-c")
    code = code.replace("http://127.0.0.1:8000", live_server.url)
    env = {**os.environ, "ALLOWED_HOSTS": "skin.example.org,localhost"}
    probe = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
