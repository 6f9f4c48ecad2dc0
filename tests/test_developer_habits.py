"""What a developer of a baked project relies on besides its code: commit hooks that pass on
a fresh bake and install with no network, a dependabot file GitHub accepts, and a README
that lists the same make targets as `make help`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import Bake, bake_installed, run_make, tool
from tests.tools import uv_executable

# `make help` colours the target name.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
README_TARGET_ROW = re.compile(r"^\| `([^`]+)` \| (.*) \|$", re.MULTILINE)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default bake, installed and made a git repository with every file staged, as a
    developer's first commit would find it."""
    baked = bake_installed(tmp_path_factory.mktemp("habits"))
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=baked, check=True, timeout=60)
    return baked


def hook_environment(project: Path) -> dict[str, str]:
    """uv on PATH for the hooks' `uv run`; pre-commit's cache inside the test's folder."""
    return os.environ | {
        "PATH": f"{Path(uv_executable()).parent}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(project.parent / "pre-commit-home"),
    }


def test_pre_commit_hooks_pass_on_a_fresh_bake(project: Path) -> None:
    result = subprocess.run(
        [str(project / ".venv" / "bin" / "pre-commit"), "run", "--all-files"],
        cwd=project,
        env=hook_environment(project),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert {"ruff check", "ruff format", "mypy (strict)"} <= {
        line.split(".")[0] for line in result.stdout.splitlines() if line.endswith("Passed")
    }


def test_pre_commit_hooks_are_all_local(project: Path) -> None:
    config = (project / ".pre-commit-config.yaml").read_text()

    assert re.findall(r"^\s*- repo: (\S+)", config, re.MULTILINE) == ["local"]


def test_make_hooks_installs_the_git_hook(project: Path) -> None:
    result = run_make(project, "hooks", env=hook_environment(project))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "pre-commit" in (project / ".git" / "hooks" / "pre-commit").read_text()


def test_dependabot_file_is_valid(project: Path) -> None:
    result = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.dependabot",
            str(project / ".github" / "dependabot.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_covers_every_ecosystem_with_a_cooldown(project: Path) -> None:
    updates = yaml.safe_load((project / ".github" / "dependabot.yml").read_text())["updates"]

    assert {update["package-ecosystem"] for update in updates} == {
        "uv",
        "docker",
        "docker-compose",
        "github-actions",
    }
    assert all(update["cooldown"]["default-days"] >= 1 for update in updates)


def test_ci_none_bakes_no_dependabot_file(bake: Bake) -> None:
    assert not (bake(ci="none") / ".github").exists()


def help_targets(project: Path) -> list[tuple[str, str]]:
    result = run_make(project, "help")
    assert result.returncode == 0, result.stderr
    rows = [ANSI.sub("", line).split(maxsplit=1) for line in result.stdout.splitlines()]
    return [(row[0], row[1]) for row in rows if row]


def readme_targets(project: Path) -> list[tuple[str, str]]:
    readme = (project / "README.md").read_text()
    section = readme.split("\n## Make targets\n", 1)[1].split("\n## ", 1)[0]
    return [(target, text) for target, text in README_TARGET_ROW.findall(section)]


def test_readme_lists_the_make_targets_as_make_help_does(project: Path) -> None:
    assert readme_targets(project) == help_targets(project)


def test_readme_lists_the_make_targets_of_another_combination(bake: Bake) -> None:
    combination = bake(use_flower="no", worker_per_queue="yes", broker="rabbitmq")

    assert readme_targets(combination) == help_targets(combination)
