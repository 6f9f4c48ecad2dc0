"""The baked project's `make doctor`: green on a fresh bake, red with the right line for
each broken case."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import run_make

# What the doctor reads from a project; its code comes from the project's virtualenv.
READ_FILES = ("docker-compose.yml", ".env", ".env.example", "config")
DOCTOR_TIMEOUT = 300  # seconds; one run takes about 10 s of CPU


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def set_variable(name: str, value: str | None) -> Callable[[Path], None]:
    """Set ``name`` in the copy's .env, or drop it with None."""

    def edit(root: Path) -> None:
        env = root / ".env"
        lines = [line for line in env.read_text().splitlines() if not line.startswith(f"{name}=")]
        env.write_text("\n".join([*lines, *([f"{name}={value}"] if value is not None else [])]))

    return edit


def add_unknown_compose_key(root: Path) -> None:
    replace_in(root / "docker-compose.yml", "\n  api:\n", "\n  api:\n    colour: blue\n")


def rename_a_jobs_entry(root: Path) -> None:
    replace_in(root / "config" / "jobs.yaml", "  BuildProductSummaryJob:", "  BuildSummaryJob:")


def unsign_production_cursors(root: Path) -> None:
    replace_in(root / "config" / "production.yaml", "signing: signed", "signing: ephemeral")


# Each broken case: how the copy is broken, and the start of the line the doctor must print.
BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing-env-variable": (
        set_variable("JWT_SECRET", None),
        "ERROR env: JWT_SECRET is not set in .env (docker-compose.yml needs it)",
    ),
    "placeholder-value": (
        set_variable("REDIS_PASSWORD", "replace-me"),
        "ERROR env: REDIS_PASSWORD in .env is the .env.example placeholder 'replace-me'",
    ),
    "broken-compose-file": (
        add_unknown_compose_key,
        "ERROR compose: compose specification: $.services.api: Unevaluated properties are "
        "not allowed ('colour' was unexpected)",
    ),
    "unknown-job-in-jobs-yaml": (
        rename_a_jobs_entry,
        "ERROR jobs: jobs.BuildSummaryJob names no job class",
    ),
    "production-setting-loom-refuses": (
        unsign_production_cursors,
        "ERROR deploy: loom.cursors.E001: persistence.cursors.signing is 'ephemeral'",
    ),
}
LINE = re.compile(r"(ERROR|WARN) [a-z]+: .+|ok [a-z]+")


class DoctorRun(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def broken_runs(
    default_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, DoctorRun]:
    """The doctor module, from the project's virtualenv, on one broken copy per case. All
    run at once: most of each run is importing the service."""
    running = {}
    for case, (breaks, _) in BROKEN.items():
        root = tmp_path_factory.mktemp(case)
        for name in READ_FILES:
            source = default_project / name
            if source.is_dir():
                shutil.copytree(source, root / name)
            else:
                shutil.copy(source, root / name)
        breaks(root)
        running[case] = subprocess.Popen(
            [str(default_project / ".venv/bin/python"), "-m", "loom_store.doctor", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    runs = {}
    for case, process in running.items():
        stdout, stderr = process.communicate(timeout=DOCTOR_TIMEOUT)
        runs[case] = DoctorRun(process.returncode, stdout, stderr)
    return runs


def doctor_lines(stdout: str) -> list[str]:
    """The doctor's own lines: make echoes its commands first."""
    return [line for line in stdout.splitlines() if LINE.fullmatch(line)]


def test_make_doctor_passes_on_a_fresh_bake(default_project: Path) -> None:
    result = run_make(default_project, "doctor")

    assert result.returncode == 0, result.stdout + result.stderr
    assert doctor_lines(result.stdout) == [
        "ok env",
        "ok compose",
        "ok deploy",
        "ok boot",
        "ok jobs",
        "ok registration",
        "ok schedule",
    ], result.stdout


@pytest.mark.parametrize("case", BROKEN)
def test_make_doctor_fails_naming_the_broken_setting(
    broken_runs: dict[str, DoctorRun], case: str
) -> None:
    run = broken_runs[case]
    expected = BROKEN[case][1]

    assert run.returncode == 1, run.stdout + run.stderr
    assert any(line.startswith(expected) for line in run.stdout.splitlines()), run.stdout
    assert doctor_lines(run.stdout) == run.stdout.splitlines(), run.stdout
