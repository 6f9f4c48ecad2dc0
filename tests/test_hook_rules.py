"""The answer rules of hooks/pre_gen_project.py, checked directly."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from tests.conftest import TEMPLATE

VALID = {
    "project_name": "Loom Store",
    "project_slug": "loom-store",
    "package_name": "loom_store",
    "author_email": "you@example.com",
    "python_version": "3.12",
    "worker_bootstrap": "modules",
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


@pytest.mark.parametrize("package", ["loom-store", "1store", "Store", "_store", "store.api", ""])
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
