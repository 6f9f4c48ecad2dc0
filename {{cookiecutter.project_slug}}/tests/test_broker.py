"""The API and the worker take their broker settings from the broker URL and refuse, at
start and in one line, a broker or a visibility timeout they cannot run with."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery
from loom.core.di.container import LoomContainer

from {{ cookiecutter.package_name }} import runtime
from {{ cookiecutter.package_name }}.loom_fixes import api_celery_app
from {{ cookiecutter.package_name }}.runtime import create_api, create_worker

from tests.conftest import PROJECT_ROOT, one_line

RABBITMQ_URL = "amqp://store:secret-password@localhost:5672/store"
QUEUES = {{ cookiecutter.queues.split(",") | map("trim") | list | tojson }}


@pytest.fixture
def celery_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API publishes to Celery, as the compose stack runs it."""
    monkeypatch.setenv("JOB_RUNTIME", "celery")


@pytest.mark.parametrize("start", [create_worker, create_api], ids=["worker", "api"])
def test_unknown_broker_scheme_is_refused_in_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, celery_api: None, start: object
) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "sqs://key:secret-password@queue.example")

    with pytest.raises(SystemExit) as refused:
        start()  # type: ignore[operator]

    message = one_line(refused)
    assert message.startswith("CELERY_BROKER_URL (celery.broker_url) scheme 'sqs'")
    assert "redis://, rediss://, amqp://, amqps://" in message
    assert "secret-password" not in message


@pytest.mark.parametrize("start", [create_worker, create_api], ids=["worker", "api"])
def test_in_process_broker_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, celery_api: None, start: object
) -> None:
    monkeypatch.setenv("LOOM_ENV", "production")
    monkeypatch.setenv("CURSOR_KEY_K1", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.setenv("JWT_SECRET", secrets.token_urlsafe(48))
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")

    with pytest.raises(SystemExit) as refused:
        start()  # type: ignore[operator]

    message = one_line(refused)
    assert message.startswith("CELERY_BROKER_URL (celery.broker_url) scheme 'memory'")
    schemes = "redis://, rediss://, amqp://, amqps://"
    assert message.endswith(f"in production: it must start with one of {schemes}")


# The compose services' commands; each exits at import when a broker setting is refused.
ENTRY_POINTS = {
    "worker": ["celery", "-A", "{{ cookiecutter.package_name }}.worker_main:celery_app", "worker"],
    "api": ["uvicorn", "{{ cookiecutter.package_name }}.main:app", "--port", "0"],
}


@pytest.mark.parametrize("service", list(ENTRY_POINTS))
@pytest.mark.parametrize(
    ("setting", "refusal"),
    [
        ({"CELERY_VISIBILITY_TIMEOUT": "10"}, "ERROR: CELERY_VISIBILITY_TIMEOUT=10: must be"),
        ({"CELERY_BROKER_URL": "kafka://broker:9092"}, "ERROR: CELERY_BROKER_URL"),
    ],
    ids=["visibility-timeout", "broker-scheme"],
)
def test_service_command_stops_with_the_refusal_as_its_last_line_and_no_traceback(
    service: str, setting: dict[str, str], refusal: str
) -> None:
    command, *args = ENTRY_POINTS[service]
    started = subprocess.run(
        [str(Path(sys.executable).parent / command), *args],
        env=os.environ | {"JOB_RUNTIME": "celery"} | setting,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert started.returncode == 1
    assert started.stderr.splitlines()[-1].startswith(refusal)
    assert "Traceback" not in started.stdout + started.stderr


def test_redis_worker_takes_a_visibility_timeout_just_over_the_longest_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://localhost:6379/0")
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "31")  # SendRestockEmailJob: 30 s + 0 s

    celery_app = create_worker()

    assert celery_app.conf.broker_transport_options["visibility_timeout"] == 31


def edit_jobs_yaml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, replacements: dict[str, str]
) -> None:
    """Start from a copy of config/ whose jobs.yaml has each text, once, replaced."""
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    jobs = (config / "jobs.yaml").read_text()
    for old, new in replacements.items():
        assert jobs.count(old) == 1, old
        jobs = jobs.replace(old, new)
    (config / "jobs.yaml").write_text(jobs)
    monkeypatch.setenv("LOOM_CONFIG_DIR", str(config))


def test_visibility_rule_reads_the_jobs_yaml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    edit_jobs_yaml(monkeypatch, tmp_path, {"countdown: 5 ": "countdown: 60 "})
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "60")

    with pytest.raises(SystemExit) as refused:
        create_worker()

    assert "(SyncProductToErpJob: 20 s + 60 s)" in one_line(refused)


def test_visibility_rule_counts_the_countdown_of_a_job_without_a_time_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    edit_jobs_yaml(
        monkeypatch,
        tmp_path,
        {"countdown: 5 ": "countdown: 700 ", "timeout: 20        # soft": "# soft"},
    )

    with pytest.raises(SystemExit) as refused:
        create_worker()  # the default visibility timeout, 600 s

    assert "(SyncProductToErpJob: 0 s + 700 s)" in one_line(refused)


def test_rabbitmq_worker_declares_every_queue_with_a_max_priority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", RABBITMQ_URL)

    celery_app = create_worker()

    declared = {name: queue.queue_arguments for name, queue in celery_app.amqp.queues.items()}
    assert declared == {name: {"x-max-priority": 10} for name in QUEUES}
    assert celery_app.conf.task_default_priority == 0


def test_rabbitmq_api_declares_the_queues_as_the_worker_does(
    monkeypatch: pytest.MonkeyPatch, celery_api: None
) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", RABBITMQ_URL)
    publishers: list[Celery | None] = []

    def recorded(container: LoomContainer) -> Celery | None:
        publishers.append(api_celery_app(container))
        return publishers[-1]

    monkeypatch.setattr(runtime, "api_celery_app", recorded)

    create_api()

    (publisher,) = publishers
    assert publisher is not None
    declared = {name: queue.queue_arguments for name, queue in publisher.amqp.queues.items()}
    assert declared == {name: {"x-max-priority": 10} for name in QUEUES}


def test_rabbitmq_needs_no_visibility_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", RABBITMQ_URL)
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "1")

    celery_app = create_worker()

    assert "visibility_timeout" not in (celery_app.conf.broker_transport_options or {})
