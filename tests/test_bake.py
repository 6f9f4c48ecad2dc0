"""Baking: what the default bake contains, and what a bad answer does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException

from tests.conftest import Bake, unrendered_jinja
from tests.tools import TEMPLATE


def test_default_bake_names_the_project_after_the_defaults(bake: Bake) -> None:
    project = bake()

    assert project.name == "loom-store"
    assert (project / "src" / "loom_store" / "product" / "jobs.py").is_file()
    assert 'name = "loom-store"' in (project / "pyproject.toml").read_text()


def test_no_file_is_left_with_unrendered_jinja(bake: Bake) -> None:
    assert unrendered_jinja(bake()) == []


def test_answers_reach_the_package_and_its_imports(bake: Bake) -> None:
    project = bake(project_name="Zeta Shop", python_version="3.13")

    assert (project / "src" / "zeta_shop" / "main.py").read_text().count("zeta_shop.runtime") == 1
    assert (project / ".python-version").read_text().strip() == "3.13"


def test_next_steps_are_printed(bake: Bake, capfd: pytest.CaptureFixture[str]) -> None:
    bake()

    out = capfd.readouterr().out
    assert "cd loom-store" in out
    assert "make run" in out


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (
            {"project_slug": "Bad Slug", "package_name": "bad_slug"},
            "ERROR: project_slug='Bad Slug': must be lowercase letters and digits",
        ),
        ({"package_name": "class"}, "ERROR: package_name='class': is a Python keyword"),
        (
            {"package_name": "my-pkg"},
            "ERROR: package_name='my-pkg': must be a lowercase Python identifier",
        ),
    ],
)
def test_invalid_name_stops_the_bake_with_one_line_and_leaves_nothing(
    bake: Bake,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    answers: dict[str, str],
    message: str,
) -> None:
    with pytest.raises(FailedHookException):
        bake(**answers)

    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1
    assert errors[0].startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_the_rerun_hint_names_the_replay_file_of_the_given_config_file(tmp_path: Path) -> None:
    replays = tmp_path / "replays"
    config = tmp_path / "team.yaml"
    config.write_text(yaml.safe_dump({"replay_dir": str(replays)}))
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(config)]
    output = tmp_path / "out"

    baked = subprocess.run(
        [*command, "-o", str(output), str(TEMPLATE), "package_name=class"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert baked.returncode != 0
    saved = replays / f"{TEMPLATE.name}.json"
    assert saved.is_file()
    assert f"Your answers are saved in {saved}:" in baked.stderr
    assert not output.exists() or list(output.iterdir()) == []


def test_project_name_with_a_slash_bakes_inside_the_output_folder(
    bake: Bake, tmp_path: Path
) -> None:
    project = bake(project_name="Shop/Back Office")

    assert project == tmp_path / "shop-back-office"
    assert list(tmp_path.iterdir()) == [project]


@pytest.mark.parametrize("name", ["../Escape", "a/../b"])
def test_project_name_climbing_out_is_refused_and_leaves_nothing(
    bake: Bake, tmp_path: Path, capfd: pytest.CaptureFixture[str], name: str
) -> None:
    before = sorted(tmp_path.parent.iterdir())

    with pytest.raises(FailedHookException):
        bake(project_name=name)

    assert "ERROR: project_slug=" in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert sorted(tmp_path.parent.iterdir()) == before


def test_the_secrets_file_is_readable_by_its_owner_only(bake: Bake) -> None:
    assert (bake() / ".env").stat().st_mode & 0o777 == 0o600


def test_workflow_tests_the_newest_allowed_loom_celery_and_kombu_weekly(bake: Bake) -> None:
    workflow = bake() / ".github" / "workflows" / "ci.yml"
    document: dict[Any, Any] = yaml.safe_load(workflow.read_text())
    triggers: dict[str, Any] = document[True]  # YAML 1.1 reads the bare key `on` as true
    job = document["jobs"]["latest-dependencies"]
    commands = [step["run"] for step in job["steps"] if "run" in step]

    assert [entry["cron"].split()[-1] for entry in triggers["schedule"]] == ["1"]  # weekly
    assert "schedule" in job["if"]
    upgrade = next(command for command in commands if "uv lock" in command)
    for package in ("loom-kernel", "celery", "kombu"):
        assert f"--upgrade-package {package}" in upgrade
    assert commands[-1] == "make test"
    assert "!= 'schedule'" in document["jobs"]["check"]["if"]


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_weekly_latest_dependencies_job_tests_on_the_same_services_as_every_push(
    bake: Bake, broker: str
) -> None:
    workflow = bake(broker=broker) / ".github" / "workflows" / "ci.yml"
    jobs = yaml.safe_load(workflow.read_text())["jobs"]

    def integration(job: dict[str, Any]) -> tuple[set[str], dict[str, str]]:
        (tests,) = [step for step in job["steps"] if step.get("name", "").startswith("Tests")]
        return set(job["services"]), tests["env"]

    assert integration(jobs["latest-dependencies"]) == integration(jobs["check"])
    assert ("rabbitmq" in jobs["check"]["services"]) is (broker == "rabbitmq")
