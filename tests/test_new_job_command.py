"""`make new-job` in a baked project: a job that passes the project's own checks and that a
worker started as the stack starts it registers, under every worker bootstrap; refusals
that print one line and change nothing."""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import bake_installed, generated_files, run_make
from tests.stack import stop_process_group

PACKAGE = "loom_store"
NEW_JOB = ("NAME=RecalculatePrices", "QUEUE=analytics", "EVERY=10m")
DEFAULT_QUEUE_JOB = ("NAME=ArchiveStaleCarts",)


def new_job(project: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    result = run_make(project, "-s", "new-job", *variables)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default bake (modules discovery) with RecalculatePricesJob and, with no QUEUE,
    ArchiveStaleCartsJob added; its config/ as baked is kept beside it in
    ``config-as-baked``."""
    baked = bake_installed(tmp_path_factory.mktemp("new-job"))
    shutil.copytree(baked / "config", baked.parent / "config-as-baked")
    new_job(baked, *NEW_JOB)
    new_job(baked, *DEFAULT_QUEUE_JOB)
    return baked


@pytest.fixture(scope="module", params=["manifest", "explicit"])
def other_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A bake with the other worker bootstraps, RecalculatePricesJob added."""
    baked = bake_installed(
        tmp_path_factory.mktemp(f"new-job-{request.param}"), worker_bootstrap=request.param
    )
    new_job(baked, *NEW_JOB)
    return baked


def worker_tasks(project: Path) -> list[str]:
    """The tasks in the banner of a worker started with the stack's command (on kombu's
    in-memory broker, one process), stopped by its PID once it is ready."""
    log = project / "worker.log"
    environment = os.environ | {
        "LOOM_ENV": "development",
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": "cache+memory://",
    }
    command = [
        str(project / ".venv" / "bin" / "celery"),
        *("-A", f"{PACKAGE}.worker_main:celery_app", "worker", "--loglevel=INFO"),
        *("--pool=solo", "--without-mingle", "--without-gossip"),
    ]
    with log.open("w") as output:
        worker = subprocess.Popen(
            command,
            cwd=project,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "ready." not in log.read_text():
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "worker not ready within 90 s"
            time.sleep(0.2)
    finally:
        stop_process_group(worker, grace=20)
    text = log.read_text()
    log.unlink()
    return [line.strip(" .") for line in text.splitlines() if line.startswith("  . ")]


def test_new_job_writes_the_module_its_test_and_its_settings(project: Path) -> None:
    assert (project / "src" / PACKAGE / "jobs" / "recalculate_prices.py").is_file()
    assert (project / "tests" / "test_job_recalculate_prices.py").is_file()
    jobs = yaml.safe_load((project / "config" / "jobs.yaml").read_text())["jobs"]
    assert jobs["RecalculatePricesJob"]["queue"] == "analytics"
    include = yaml.safe_load((project / "config" / "base.yaml").read_text())["app"]["discovery"]
    assert f"{PACKAGE}.jobs.recalculate_prices" in include["modules"]["include"]


def test_job_without_a_queue_goes_to_the_default_queue(project: Path) -> None:
    jobs = yaml.safe_load((project / "config" / "jobs.yaml").read_text())["jobs"]

    assert jobs["ArchiveStaleCartsJob"]["queue"] == "default"


def test_every_adds_the_schedule_entry_in_its_agreed_shape(project: Path) -> None:
    baked = yaml.safe_load((project.parent / "config-as-baked" / "schedule.yaml").read_text())
    schedule = yaml.safe_load((project / "config" / "schedule.yaml").read_text())

    added = {"recalculate-prices": {"job": "RecalculatePricesJob", "every": "10m", "payload": {}}}
    assert schedule == {"schedule": baked["schedule"] | added}


@pytest.mark.parametrize("name", ["jobs.yaml", "base.yaml", "schedule.yaml"])
def test_yaml_edits_only_add_lines(project: Path, name: str) -> None:
    baked = (project.parent / "config-as-baked" / name).read_text().splitlines()
    edited = (project / "config" / name).read_text().splitlines()

    changes = difflib.SequenceMatcher(a=baked, b=edited).get_opcodes()
    assert {operation for operation, *_ in changes} == {"equal", "insert"}


def test_schedule_edit_keeps_the_comments(project: Path) -> None:
    baked = (project.parent / "config-as-baked" / "schedule.yaml").read_text().splitlines()
    edited = (project / "config" / "schedule.yaml").read_text().splitlines()

    comments = [line for line in baked if line.startswith("#")]
    assert comments
    assert edited[: len(comments)] == comments


def test_project_passes_make_check_with_the_new_job(project: Path) -> None:
    result = run_make(project, "check")

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "test_job_recalculate_prices.py .." in result.stdout
    assert "test_job_archive_stale_carts.py .." in result.stdout


def test_worker_registers_the_new_jobs_with_modules_discovery(project: Path) -> None:
    assert {"loom.job.RecalculatePricesJob", "loom.job.ArchiveStaleCartsJob"} <= set(
        worker_tasks(project)
    )


def test_worker_registers_the_new_job_with_the_other_bootstraps(other_bootstrap: Path) -> None:
    tasks = worker_tasks(other_bootstrap)

    assert "loom.job.RecalculatePricesJob" in tasks
    assert "loom.job.SendRestockEmailJob" in tasks


def tree_digest(project: Path) -> dict[str, str]:
    return {
        str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(generated_files(project))
    }


def scaffold(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """What `make new-job` runs, without make's own `*** Error 2` line after a refusal."""
    return subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-m", "scaffold.new_job", *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


REFUSALS = {
    "lower-camel": (
        ["--name", "recalculatePrices"],
        "new-job: NAME='recalculatePrices': must be CamelCase, like RecalculatePrices",
    ),
    "snake": (
        ["--name", "Recalculate_Prices"],
        "new-job: NAME='Recalculate_Prices': must be CamelCase",
    ),
    "keyword": (["--name", "None"], "new-job: NAME='None': 'None' is a Python keyword"),
    "keyword-module": (["--name", "Class"], "new-job: NAME='Class': 'class' is a Python keyword"),
    "taken-by-the-added-job": (
        ["--name", "RecalculatePrices"],
        "new-job: NAME='RecalculatePrices': RecalculatePricesJob already exists in "
        f"src/{PACKAGE}/jobs/recalculate_prices.py",
    ),
    "taken": (
        ["--name", "SendRestockEmail"],
        "new-job: NAME='SendRestockEmail': SendRestockEmailJob already exists in "
        f"src/{PACKAGE}/product/jobs.py",
    ),
    "unknown-queue": (
        ["--name", "PublishReports", "--queue", "reports"],
        "new-job: QUEUE='reports': not one of the celery queues "
        "(default, notifications, analytics, erp)",
    ),
    "bad-every": (
        ["--name", "PublishReports", "--every", "10 minutes"],
        "new-job: EVERY='10 minutes': must be a positive whole number and a unit",
    ),
    "zero-every": (["--name", "PublishReports", "--every", "0m"], "new-job: EVERY='0m'"),
}


@pytest.mark.parametrize(("arguments", "line"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_refusal_is_one_line_exit_2_and_changes_nothing(
    project: Path, arguments: list[str], line: str
) -> None:
    before = tree_digest(project)

    result = scaffold(project, *arguments)

    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(line)
    assert result.stdout == ""
    assert tree_digest(project) == before


def test_make_new_job_fails_with_the_refusal(project: Path) -> None:
    before = tree_digest(project)

    result = run_make(project, "-s", "new-job", "NAME=send_email")

    assert result.returncode != 0
    assert "new-job: NAME='send_email': must be CamelCase" in result.stderr
    assert tree_digest(project) == before
