"""The answer rules of hooks/pre_gen_project.py, checked directly."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.tools import TEMPLATE

VALID = {
    "project_name": "Loom Store",
    "project_slug": "loom-store",
    "package_name": "loom_store",
    "author_name": "Your Name",
    "author_email": "you@example.com",
    "python_version": "3.12",
    "worker_bootstrap": "modules",
    "queues": "default,notifications,analytics,erp",
    "default_queue": "default",
    "worker_per_queue": "no",
    "broker": "redis",
    "use_flower": "yes",
    "ci": "github",
    "open_source_license": "MIT",
}


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "pre_gen_project", TEMPLATE / "hooks" / "pre_gen_project.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_answers_break_no_rule(hook: ModuleType) -> None:
    assert hook.problems_in(VALID) == []


@pytest.mark.parametrize(
    "slug", ["Loom-Store", "loom store", "1store", "loom--store", "store-", "ß", "a" * 65]
)
def test_bad_slug_is_named_with_its_rule(hook: ModuleType, slug: str) -> None:
    assert hook.problems_in(VALID | {"project_slug": slug}) == [
        f"project_slug={slug!r}: must be lowercase letters and digits in words joined by "
        "single hyphens, starting with a letter, at most 64 characters (e.g. loom-store)"
    ]


@pytest.mark.parametrize(
    "package", ["loom-store", "1store", "Store", "_store", "store.api", "", "a" * 33]
)
def test_package_that_is_not_an_identifier_is_refused(hook: ModuleType, package: str) -> None:
    (problem,) = hook.problems_in(VALID | {"package_name": package})

    assert problem.startswith(f"package_name={package!r}: must be a lowercase Python identifier")


def test_keyword_package_is_refused(hook: ModuleType) -> None:
    assert hook.problems_in(VALID | {"package_name": "class"}) == [
        "package_name='class': is a Python keyword"
    ]


@pytest.mark.parametrize("package", ["json", "celery", "loom", "tests"])
def test_package_that_shadows_an_import_is_refused(hook: ModuleType, package: str) -> None:
    (problem,) = hook.problems_in(VALID | {"package_name": package})

    assert "would shadow a module the project imports" in problem


def test_bad_email_is_refused(hook: ModuleType) -> None:
    assert hook.problems_in(VALID | {"author_email": "not-an-address"}) == [
        "author_email='not-an-address': must be an e-mail address like you@example.com"
    ]


def test_unsupported_python_is_refused(hook: ModuleType) -> None:
    assert hook.problems_in(VALID | {"python_version": "3.10"}) == [
        "python_version='3.10': must be one of 3.11, 3.12, 3.13"
    ]


def test_every_broken_rule_gets_its_own_line(hook: ModuleType) -> None:
    problems = hook.problems_in(VALID | {"project_slug": "Bad Slug", "package_name": "class"})

    assert [line.split("=")[0] for line in problems] == ["project_slug", "package_name"]


def test_unknown_worker_bootstrap_is_refused(hook: ModuleType) -> None:
    assert hook.problems_in(VALID | {"worker_bootstrap": "magic"}) == [
        "worker_bootstrap='magic': must be one of modules, manifest, explicit"
    ]


def test_rabbitmq_broker_is_accepted(hook: ModuleType) -> None:
    assert hook.problems_in(VALID | {"broker": "rabbitmq"}) == []


@pytest.mark.parametrize("broker", ["kafka", "RabbitMQ", "amqp", ""])
def test_unknown_broker_is_refused_with_the_brokers(hook: ModuleType, broker: str) -> None:
    assert hook.problems_in(VALID | {"broker": broker}) == [
        f"broker={broker!r}: must be one of redis, rabbitmq"
    ]


def test_queues_may_add_to_the_jobs_queues(hook: ModuleType) -> None:
    assert hook.problems_in(VALID | {"queues": "default,notifications,analytics,erp,reports"}) == []


def test_queues_missing_a_jobs_queue_name_the_job(hook: ModuleType) -> None:
    assert hook.problems_in(VALID | {"queues": "default,notifications,analytics"}) == [
        "queues='default,notifications,analytics': must include every job's queue: "
        "SyncProductToErpJob needs 'erp'"
    ]


@pytest.mark.parametrize(
    "queues", ["default,,erp", "default,Erp", "default,analytics;erp", "default,erp q"]
)
def test_malformed_queue_names_are_refused(hook: ModuleType, queues: str) -> None:
    (problem,) = hook.problems_in(VALID | {"queues": queues})

    assert problem.startswith(f"queues={queues!r}: must be comma-separated queue names")


def test_a_queue_named_twice_is_refused(hook: ModuleType) -> None:
    queues = "default,notifications,analytics,erp,erp"

    assert hook.problems_in(VALID | {"queues": queues}) == [
        f"queues={queues!r}: names a queue twice"
    ]


def test_default_queue_must_be_one_of_the_queues(hook: ModuleType) -> None:
    assert hook.problems_in(VALID | {"default_queue": "callbacks"}) == [
        "default_queue='callbacks': must be one of the queues "
        "(default, notifications, analytics, erp)"
    ]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("worker_per_queue", "maybe"),
        ("use_flower", "true"),
        ("ci", "gitlab"),
        ("open_source_license", "GPL"),
    ],
)
def test_unknown_choice_is_refused_with_the_choices(
    hook: ModuleType, option: str, value: str
) -> None:
    (problem,) = hook.problems_in(VALID | {option: value})

    assert problem.startswith(f"{option}={value!r}: must be one of ")


def test_job_queues_in_the_hook_match_the_jobs_yaml(hook: ModuleType) -> None:
    jobs_yaml = TEMPLATE / "{{cookiecutter.project_slug}}" / "config" / "jobs.yaml"
    routed = {
        job: spec["queue"]
        for job, spec in yaml.safe_load(jobs_yaml.read_text())["jobs"].items()
        # The sweep follows the default_queue answer, which the hook checks on its own.
        if spec["queue"] != "{{ cookiecutter.default_queue }}"
    }

    assert routed == hook.JOB_QUEUES


def test_rerun_hint_names_the_saved_answers_and_the_template(
    hook: ModuleType, tmp_path: Path
) -> None:
    saved = tmp_path / "cookiecutter-loom.json"
    saved.write_text("{}")
    answers = {"_template": "gh:acme/cookiecutter-loom", "_repo_dir": "/cache/cookiecutter-loom"}

    hint = hook.rerun_hint(answers, hook.saved_answers(tmp_path, answers))

    assert hint.startswith(f"Your answers are saved in {saved}")
    assert hint.endswith(f"cookiecutter --replay-file {saved} gh:acme/cookiecutter-loom")


def test_saved_answers_are_the_file_named_after_the_template_not_the_newest(
    hook: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "cookiecutter-loom.json").write_text("{}")
    (tmp_path / "other-template.json").write_text("{}")
    os.utime(tmp_path / "cookiecutter-loom.json", (1, 1))

    saved = hook.saved_answers(tmp_path, {"_repo_dir": "/cache/cookiecutter-loom"})

    assert saved == tmp_path / "cookiecutter-loom.json"


@pytest.mark.parametrize(
    "argv",
    [
        ["cookiecutter", "--config-file", "team.yaml", "gh:acme/cookiecutter-loom"],
        ["cookiecutter", "--config-file=team.yaml", "--no-input", "."],
    ],
)
def test_config_file_option_is_read_in_both_spellings(hook: ModuleType, argv: list[str]) -> None:
    assert hook.config_file_option(argv) == "team.yaml"


def test_no_config_file_option_means_the_user_configuration(hook: ModuleType) -> None:
    assert hook.config_file_option(["cookiecutter", "--no-input", "."]) is None
