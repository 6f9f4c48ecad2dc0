"""A project baked from an older template takes the current one with cruft, keeping its edits."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_make, tool
from tests.tools import TEMPLATE

JOBS_YAML = Path("{{cookiecutter.project_slug}}") / "config" / "jobs.yaml"
USER_EDIT = "\n\nRESTOCK_THRESHOLD = 0  # added by the project, not by the template\n"


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("cruft"), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.fixture
def template_history(tmp_path: Path) -> tuple[Path, str, str]:
    """A throwaway git history of this template: an older commit, then the current files."""
    repository = tmp_path / "cookiecutter-loom"
    shutil.copytree(
        TEMPLATE,
        repository,
        ignore=shutil.ignore_patterns(".git", ".venv", ".tools", "demo", "__pycache__", "*_cache"),
    )
    current = (repository / JOBS_YAML).read_text()
    assert "countdown: 5 " in current
    (repository / JOBS_YAML).write_text(current.replace("countdown: 5 ", "countdown: 9 "))
    git("init", "-q", "-b", "main", cwd=repository)
    git("add", "-A", cwd=repository)
    git("commit", "-qm", "older template", cwd=repository)
    older = git("rev-parse", "HEAD", cwd=repository)
    (repository / JOBS_YAML).write_text(current)
    git("commit", "-qam", "current template", cwd=repository)
    return repository, older, git("rev-parse", "HEAD", cwd=repository)


def test_update_applies_the_template_change_and_keeps_the_users_edit(
    template_history: tuple[Path, str, str], tmp_path: Path
) -> None:
    repository, older, current = template_history
    created = cruft(
        "create",
        str(repository),
        "--checkout",
        older,
        "--no-input",
        "--output-dir",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    project = tmp_path / "out" / "loom-store"
    assert "countdown: 9 " in (project / "config" / "jobs.yaml").read_text()
    jobs_py = project / "src" / "loom_store" / "product" / "jobs.py"
    jobs_py.write_text(jobs_py.read_text() + USER_EDIT)
    git("init", "-q", "-b", "main", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-qm", "project as baked, plus an edit", cwd=project)

    assert cruft("check", cwd=project).returncode != 0  # behind the template
    updated = cruft("update", "--skip-apply-ask", "--checkout", current, "-y", cwd=project)

    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "countdown: 5 " in (project / "config" / "jobs.yaml").read_text()
    assert jobs_py.read_text().endswith(USER_EDIT)
    assert current in (project / ".cruft.json").read_text()
    assert not list(project.rglob("*.rej"))
    tested = run_make(project, "test")
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
