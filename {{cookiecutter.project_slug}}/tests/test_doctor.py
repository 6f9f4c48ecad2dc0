"""make doctor: each check refuses its broken file, and the whole run passes on this project."""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.auth import PLACEHOLDER
from {{ cookiecutter.package_name }}.doctor import (
    CHECKS,
    Finding,
    boot_problems,
    compose_problems,
    deploy_problems,
    env_problems,
    job_classes,
    jobs_problems,
{%- if cookiecutter.worker_bootstrap == "modules" %}
    registration_problems,
{%- endif %}
)

from tests.conftest import PROJECT_ROOT

# What the doctor reads from a project; the code comes from the installed package.
READ_FILES = ("docker-compose.yml", ".env.example", "config")


def known_jobs() -> str:
    """The job classes an error names as known: the shipped ones and any `make new-job` added."""
    return ", ".join(sorted(job_classes()))


def random_secret(name: str) -> str:
    """A value loom and the stack accept: the cursor key is base64 of 32 bytes."""
    if name == "CURSOR_KEY_K1":
        return base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(32)


def filled_in(example: str) -> str:
    """``.env.example`` with a random value wherever it holds the placeholder."""
    lines = []
    for line in example.splitlines():
        name, equals, value = line.partition("=")
        if equals and not line.startswith("#") and PLACEHOLDER in value:
            line = f"{name}={value.replace(PLACEHOLDER, random_secret(name))}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what the doctor reads, with a .env filled in as the bake fills it."""
    for name in READ_FILES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    (tmp_path / ".env").write_text(filled_in((tmp_path / ".env.example").read_text()))
    return tmp_path


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def drop_line(path: Path, prefix: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(prefix)]
    assert len(kept) == len(lines) - 1, f"no single line starts with {prefix!r}"
    path.write_text("".join(kept))


def test_doctor_passes_on_this_project_as_a_module(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}.doctor", str(project)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("ERROR")], result.stdout
    # compose may only WARN that no compose tool is installed to run `config -q`.
    assert {f"ok {name}" for name, _ in CHECKS if name != "compose"} <= set(lines), result.stdout


def test_a_missing_env_file_is_one_error(project: Path) -> None:
    (project / ".env").unlink()

    assert env_problems(project) == [
        ".env is missing: copy .env.example to .env and fill in every value"
    ]


def test_a_variable_missing_from_env_is_named(project: Path) -> None:
    drop_line(project / ".env", "JWT_SECRET=")

    assert env_problems(project) == ["JWT_SECRET is not set in .env (docker-compose.yml needs it)"]


def test_an_empty_variable_is_named(project: Path) -> None:
    drop_line(project / ".env", "APP_DB_PASSWORD=")
    with (project / ".env").open("a") as env:
        env.write("APP_DB_PASSWORD=\n")

    assert env_problems(project) == ["APP_DB_PASSWORD is empty in .env"]


def test_env_example_copied_unchanged_names_every_placeholder(project: Path) -> None:
    shutil.copy(project / ".env.example", project / ".env")

    named = {problem.split()[0] for problem in env_problems(project)}

    assert {"POSTGRES_PASSWORD", "APP_DB_PASSWORD", "CURSOR_KEY_K1", "JWT_SECRET"} <= named
    assert all(PLACEHOLDER in problem for problem in env_problems(project))


def test_an_unknown_compose_key_breaks_the_schema(project: Path) -> None:
    replace_in(project / "docker-compose.yml", "\n  api:\n", "\n  api:\n    colour: blue\n")

    problems = compose_problems(project)

    assert any(
        isinstance(problem, str)
        and problem.startswith("compose specification: $.services.api:")
        and "'colour'" in problem
        for problem in problems
    ), problems


def test_unsigned_cursors_in_production_fail_loom_deploy_checks(project: Path) -> None:
    replace_in(project / "config" / "production.yaml", "signing: signed", "signing: ephemeral")

    problems = deploy_problems(project)

    assert any(
        isinstance(problem, str) and problem.startswith("loom.cursors.E001:")
        for problem in problems
    ), problems


def test_a_finding_no_longer_silenced_is_reported(project: Path) -> None:
    replace_in(project / "config" / "production.yaml", "    - loom.rest.W001\n", "    []\n")

    problems = deploy_problems(project)

    warned = [problem.message for problem in problems if isinstance(problem, Finding)]
    assert [message.split(":")[0] for message in warned] == ["loom.rest.W001"]


def test_a_cursor_key_too_short_stops_both_apps(project: Path) -> None:
    replace_in(project / ".env", "CURSOR_KEY_K1=", "CURSOR_KEY_K1=c2hvcnQ=\n# was: ")

    problems = boot_problems(project)

    assert [problem.split(" does not start")[0] for problem in problems] == [
        "the API (inline jobs)",
        "the API (celery jobs)",
        "the worker",
    ]
    assert all("k1" in problem for problem in problems), problems


def test_a_jobs_entry_naming_no_job_class_is_refused(project: Path) -> None:
    replace_in(project / "config" / "jobs.yaml", "  BuildProductSummaryJob:", "  BuildSummaryJob:")

    assert jobs_problems(project) == [
        f"jobs.BuildSummaryJob names no job class (known: {known_jobs()})",
        "BuildProductSummaryJob has no entry under jobs: in config/jobs.yaml",
    ]


def test_a_schedule_entry_naming_no_job_class_is_refused(project: Path) -> None:
    replace_in(project / "config" / "schedule.yaml", "job: LowStockSweepJob", "job: LowStockJob")

    schedule_check = dict(CHECKS)["schedule"]

    assert schedule_check(project) == [
        "schedule.yaml: low-stock-sweep: job 'LowStockJob' names no Job class; "
        f"known: {known_jobs()}"
    ]


def test_a_job_on_an_undeclared_queue_is_refused(project: Path) -> None:
    replace_in(project / "config" / "jobs.yaml", "queue: erp", "queue: nowhere")

    problems = jobs_problems(project)

    assert len(problems) == 1
    assert problems[0].startswith("SyncProductToErpJob goes to queue 'nowhere'")
    assert "not in celery.queues" in problems[0]


def test_a_misspelt_jobs_key_is_refused(project: Path) -> None:
    replace_in(project / "config" / "jobs.yaml", "retries: 3", "retires: 3")

    problems = jobs_problems(project)

    assert len(problems) == 1
    assert problems[0].startswith("jobs.SyncProductToErpJob:")
    assert "retires" in problems[0]
{%- if cookiecutter.worker_bootstrap == "modules" %}


def drop_line_ending(path: Path, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.rstrip().endswith(text)]
    assert len(kept) == len(lines) - 1, f"no single line ends with {text!r}"
    path.write_text("".join(kept))


def test_a_jobs_module_missing_from_discovery_leaves_its_jobs_unregistered(project: Path) -> None:
    drop_line_ending(project / "config" / "base.yaml", "{{ cookiecutter.package_name }}.product.jobs")

    assert registration_problems(project) == [
        f"{name} is not registered with the worker: list its module under "
        "app.discovery.modules.include in config/base.yaml"
        for name in (
            "BuildProductSummaryJob",
            "LowStockSweepJob",
            "SendRestockEmailJob",
            "SyncProductToErpJob",
        )
    ]
{%- endif %}
