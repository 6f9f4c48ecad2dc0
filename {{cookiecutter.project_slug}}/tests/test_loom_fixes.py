"""Each workaround in loom_fixes: the defect on plain loom-kernel, then the fix.

When an upgrade of loom-kernel makes a "defect" test fail, the defect is gone: delete the
workaround and its tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec
import pytest
from celery.app.base import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kombu import Connection
from loom.celery.bootstrap import bootstrap_worker
from loom.celery.service import CeleryJobService
from loom.core.config.overrides import load_application_config
from loom.core.di.container import LoomContainer
from loom.core.job.service import JobService
from loom.prometheus.middleware import PrometheusMiddleware
from loom.rest import autocrud
from loom.rest.fastapi.auto import create_app
from loom.testing import InMemoryRepository
from packaging.requirements import Requirement
from packaging.version import Version
from prometheus_client import CollectorRegistry
from starlette.middleware import Middleware

from {{ cookiecutter.package_name }}.auth import DevelopmentAccess
from {{ cookiecutter.package_name }}.loom_fixes import (
    KNOWN_NOTICES,
    KNOWN_WARNINGS,
    KnownNotice,
    KnownWarning,
    _derivation_keeping_constraints,
    api_celery_app,
    apply_job_overrides,
    quiet_known_notices,
    quiet_known_warnings,
    trace_comment_listeners,
    worker_job_service_module,
)
from {{ cookiecutter.package_name }}.product.jobs import SyncProductToErpJob
from {{ cookiecutter.package_name }}.product.model import Product
from {{ cookiecutter.package_name }}.runtime import (
    EMBEDDED_JOBS_NOTICE,
    JobRuntime,
    Process,
    config_paths,
    create_api,
    create_worker,
)

from tests.conftest import ENVIRONMENTS, PROJECT_ROOT


def plain_loom_api(**options: Any) -> FastAPI:
    """The API as loom builds it, with none of the fixes (open, as in tests)."""
    return create_app(*config_paths(Process.API), authenticator=DevelopmentAccess(), **options)


def test_defect_worker_without_a_job_service_fails_to_boot() -> None:
    with pytest.raises(Exception, match="injects job_service: JobService"):
        bootstrap_worker(*config_paths(Process.WORKER))


def test_fix_worker_gets_a_celery_job_service() -> None:
    booted: list[Celery] = []
    result = bootstrap_worker(
        *config_paths(Process.WORKER), modules=[worker_job_service_module(lambda: booted[0])]
    )
    booted.append(result.celery_app)

    assert isinstance(result.container.resolve(JobService), CeleryJobService)


def test_defect_api_ignores_the_jobs_yaml() -> None:
    plain_loom_api()

    assert SyncProductToErpJob.__dict__.get("__queue__") is None
    assert (SyncProductToErpJob.__queue__, SyncProductToErpJob.__countdown__) == ("default", 0)


def test_fix_api_applies_the_jobs_yaml() -> None:
    paths = config_paths(Process.API)
    plain_loom_api()

    apply_job_overrides(load_application_config(*paths))

    assert SyncProductToErpJob.__queue__ == "erp"
    assert SyncProductToErpJob.__countdown__ == 5
    assert SyncProductToErpJob.__priority__ == 5


def test_fix_rejects_a_jobs_entry_that_names_no_job(tmp_path: pytest.TempPathFactory) -> None:
    paths = config_paths(Process.API)
    typo = tmp_path / "typo.yaml"  # type: ignore[operator]
    typo.write_text("jobs:\n  SyncProductToErp:\n    queue: erp\n")
    plain_loom_api()

    with pytest.raises(ValueError, match="SyncProductToErp name no Job class"):
        apply_job_overrides(load_application_config(*paths, str(typo)))


JSON = {"content-type": "application/json"}
PRODUCT = {"sku": "KET-1", "name": "Kettle", "category": "kitchen", "priceCents": 2599, "stock": 0}


@pytest.fixture
def celery_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API with the Celery job service on kombu's in-process broker."""
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "cache+memory://")
    with TestClient(create_api()) as client:
        yield client


def test_fix_erp_sync_message_carries_the_yaml_queue_countdown_and_priority(
    celery_api: TestClient,
) -> None:
    product = celery_api.post("/products/", json=PRODUCT).json()
    sent_at = datetime.now(UTC)

    response = celery_api.post("/products/jobs/sync-erp", json={"productIds": [product["id"]]})

    assert response.status_code == 202
    with Connection("memory://") as connection:
        message = connection.SimpleQueue("erp").get(timeout=1)
    assert message.headers["task"] == "loom.job.SyncProductToErpJob"
    assert message.headers["id"] == response.json()["jobIds"][0]
    assert message.properties["priority"] == 5
    eta = datetime.fromisoformat(message.headers["eta"])
    assert timedelta(seconds=4) < eta - sent_at < timedelta(seconds=6)


def test_fix_reaches_the_celery_app_the_api_publishes_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    containers: list[LoomContainer] = []
    plain_loom_api(modules=[containers.append])

    publisher = api_celery_app(containers[0])

    assert isinstance(publisher, Celery)
    assert publisher.conf.broker_url == "memory://"


def test_fix_finds_no_celery_app_with_the_in_process_job_service() -> None:
    containers: list[LoomContainer] = []
    plain_loom_api(modules=[containers.append])

    assert api_celery_app(containers[0]) is None


def test_defect_plain_loom_answers_malformed_json_with_a_500() -> None:
    with TestClient(plain_loom_api(), raise_server_exceptions=False) as client:
        response = client.post(
            "/products/", content=b"{not json", headers={"content-type": "application/json"}
        )

    assert response.status_code == 500


def test_defect_plain_loom_answers_an_empty_body_with_a_500() -> None:
    with TestClient(plain_loom_api(), raise_server_exceptions=False) as client:
        response = client.post("/products/", headers={"content-type": "application/json"})

    assert response.status_code == 500


def test_defect_plain_loom_decodes_a_body_of_another_content_type_as_json() -> None:
    with TestClient(plain_loom_api()) as client:
        response = client.post(
            "/products/", content=json.dumps(PRODUCT), headers={"content-type": "text/plain"}
        )

    assert response.status_code == 201


def test_fix_a_body_of_another_content_type_is_unsupported() -> None:
    with TestClient(create_api()) as client:
        response = client.post(
            "/products/", content=json.dumps(PRODUCT), headers={"content-type": "text/plain"}
        )

    assert response.status_code == 415


def test_defect_plain_loom_answers_a_body_that_is_not_an_object_with_a_500() -> None:
    with TestClient(plain_loom_api(), raise_server_exceptions=False) as client:
        response = client.post("/products/", content=b"[]", headers=JSON)

    assert response.status_code == 500


def test_fix_a_body_that_is_not_an_object_is_a_400() -> None:
    with TestClient(create_api()) as client:
        response = client.post("/products/", content=b"[]", headers=JSON)

    assert response.status_code == 400
    assert response.json()["detail"]["field"] == "body"


def test_defect_plain_loom_answers_an_id_past_the_integer_column_with_a_500() -> None:
    with TestClient(plain_loom_api(), raise_server_exceptions=False) as client:
        response = client.get(f"/products/{2**70}")

    assert response.status_code == 500


def test_defect_plain_loom_names_no_field_in_a_duplicate_conflict() -> None:
    with TestClient(plain_loom_api()) as client:
        client.post("/products/", json=PRODUCT)
        response = client.post("/products/", json=PRODUCT)

    assert response.status_code == 409
    assert "field" not in response.json()["detail"]


def test_fix_a_duplicate_conflict_names_its_field() -> None:
    with TestClient(create_api()) as client:
        client.post("/products/", json=PRODUCT)
        response = client.post("/products/", json=PRODUCT)

    assert response.status_code == 409
    assert response.json()["detail"]["field"] == "sku"


def test_defect_autocrud_inputs_drop_the_model_constraints() -> None:
    create_input = autocrud._derive_create_struct(Product)

    accepted = msgspec.convert(PRODUCT | {"sku": "x" * 500, "stock": -1}, create_input)

    assert accepted.stock == -1  # type: ignore[attr-defined]


def test_defect_autocrud_inputs_accept_unknown_fields() -> None:
    create_input = autocrud._derive_create_struct(Product)

    accepted = msgspec.convert(PRODUCT | {"stok": 5}, create_input)

    assert not hasattr(accepted, "stok")


def test_fix_autocrud_inputs_refuse_unknown_fields() -> None:
    with _derivation_keeping_constraints():
        create_input = autocrud._derive_create_struct(Product)

    with pytest.raises(msgspec.ValidationError, match="stok"):
        msgspec.convert(PRODUCT | {"stok": 5}, create_input)


def test_fix_autocrud_inputs_keep_the_model_constraints() -> None:
    with _derivation_keeping_constraints():
        create_input = autocrud._derive_create_struct(Product)

    with pytest.raises(msgspec.ValidationError, match="sku"):
        msgspec.convert(PRODUCT | {"sku": "x" * 500}, create_input)


def test_defect_plain_loom_prefixes_every_statement_with_a_trace_comment() -> None:
    containers: list[LoomContainer] = []
    create_app(
        *config_paths(Process.API), authenticator=DevelopmentAccess(), modules=[containers.append]
    )

    assert len(trace_comment_listeners(containers[0])) == 1


def test_fix_api_sends_sql_without_trace_comments() -> None:
    containers: list[LoomContainer] = []

    create_api(modules=[containers.append])

    assert trace_comment_listeners(containers[0]) == []


def test_fix_worker_sends_sql_without_trace_comments() -> None:
    containers: list[LoomContainer] = []

    create_worker(modules=[containers.append])

    assert trace_comment_listeners(containers[0]) == []


def test_defect_autocrud_delete_of_an_unknown_id_answers_false() -> None:
    plain_delete = autocrud._make_delete(Product, int, int)
    empty: Any = InMemoryRepository(Product)  # loom's own fake, though not typed RepoFor

    deleted = asyncio.run(plain_delete(main_repo=empty).execute(id=999))

    assert deleted is False


def test_fix_delete_of_an_unknown_id_is_not_found() -> None:
    with TestClient(create_api()) as client:
        response = client.delete("/products/999")

    assert response.status_code == 404
    assert response.json()["detail"]["code"] == "not_found"


def test_defect_plain_loom_documents_a_422_body_it_never_sends() -> None:
    operation = plain_loom_api().openapi()["paths"]["/products/{id}"]["get"]

    assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }


def route_templates_counted(app: FastAPI) -> set[str]:
    """The ``path_template`` labels of the GETs counted after reading product 1 twice."""
    registry = CollectorRegistry()
    for index, middleware in enumerate(app.user_middleware):
        factory: Any = middleware.cls
        if isinstance(factory, type) and issubclass(factory, PrometheusMiddleware):
            app.user_middleware[index] = Middleware(factory, registry=registry)
    with TestClient(app) as client:
        client.get("/products/1")
        client.get("/products/2")
    return {
        sample.labels["path_template"]
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels["method"] == "GET"
    }


def test_defect_plain_loom_counts_every_request_as_unmatched() -> None:
    assert route_templates_counted(plain_loom_api()) == {"__unmatched__"}


def test_fix_metrics_count_requests_by_route_template() -> None:
    assert route_templates_counted(create_api()) == {"/products/{id}"}


# Runs each start in one fresh interpreter with every warning shown and writes what each
# one warned to argv[2]. loom registers its config resolvers, and omegaconf warns, only
# when they are not registered yet: clearing them first makes every start a first start.
# A start hands warnings to logging (observability.log_python_warnings), which would take
# them from the recorder; here they stay with the recorder.
START_SCRIPT = """
import json, logging, os, sys, warnings
from loom.core.config.resolver import default_resolvers
from omegaconf import OmegaConf
logging.captureWarnings = lambda capture: None
seen = {}
for label, env, statement in json.loads(sys.argv[1]):
    os.environ.update(env)
    for resolver in default_resolvers():
        OmegaConf.clear_resolver(resolver.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(statement)
    seen[label] = [[w.category.__name__, str(w.message), w.filename] for w in caught]
open(sys.argv[2], "w").write(json.dumps(seen))
"""
RUNTIME = "import {{ cookiecutter.package_name }}.runtime as runtime\n"
PLAIN_LOOM = (
    "from loom.rest.fastapi.auto import create_app\n"
    "from {{ cookiecutter.package_name }}.auth import DevelopmentAccess\n"
    "create_app(*runtime.config_paths(runtime.Process.API), authenticator=DevelopmentAccess())"
)
STARTS = {
    "plain-loom-api": ({"JOB_RUNTIME": "inline"}, PLAIN_LOOM),
    **{
        f"{environment}-{runtime}-api": (
            {"LOOM_ENV": environment, "JOB_RUNTIME": runtime},
            "runtime.create_api()",
        )
        for environment in ENVIRONMENTS
        for runtime in JobRuntime
    },
    **{
        f"{environment}-worker": ({"LOOM_ENV": environment}, "runtime.create_worker()")
        for environment in ENVIRONMENTS
    },
}
Seen = list[tuple[str, str, str]]


@pytest.fixture(scope="module")
def start_warnings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Seen]:
    """What each of ``STARTS`` warned: (category, message, file of the attributed frame)."""
    directory = tmp_path_factory.mktemp("starts")
    common = {
        "LOOM_ENV": "test",
        "LOOM_CONFIG_DIR": str(PROJECT_ROOT / "config"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'test.db'}",
        "CURSOR_KEY_K1": base64.b64encode(secrets.token_bytes(32)).decode(),
        "JWT_SECRET": secrets.token_urlsafe(48),
        # Nothing answers there: a start connects to no broker, and production refuses
        # kombu's in-process one and an in-process cache.
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "CELERY_RESULT_BACKEND": "cache+memory://",
        "CACHE_URL": "redis://127.0.0.1:1/2",
    }
    starts = [[label, env, RUNTIME + code] for label, (env, code) in STARTS.items()]
    started = subprocess.run(
        [sys.executable, "-c", START_SCRIPT, json.dumps(starts), str(directory / "seen.json")],
        cwd=PROJECT_ROOT,
        env=os.environ | common,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert started.returncode == 0, started.stderr[-3000:]
    seen: dict[str, list[list[str]]] = json.loads((directory / "seen.json").read_text())
    return {label: [(c, m, f) for c, m, f in warned] for label, warned in seen.items()}


@pytest.mark.parametrize("known", KNOWN_WARNINGS, ids=lambda known: known.module)
def test_defect_plain_loom_start_emits_the_known_warning(
    start_warnings: dict[str, Seen], known: KnownWarning
) -> None:
    source = known.module.replace(".", "/") + ".py"

    assert [
        message
        for category, message, filename in start_warnings["plain-loom-api"]
        if category == known.category.__name__
        and re.match(known.message, message)
        and Path(filename).as_posix().endswith(source)
    ], (
        f"loom no longer emits {known.message!r} from {known.module}: "
        "delete its entry in loom_fixes.KNOWN_WARNINGS"
    )


# Production publishes /docs and /openapi.json without a token on purpose (auth.py);
# loom says so at every start, and that is the operator's call to know about.
ANONYMOUS_SCHEMA = "Authentication is enabled but /openapi.json"


@pytest.mark.parametrize("start", [label for label in STARTS if label != "plain-loom-api"])
def test_fix_api_and_worker_start_without_a_warning(
    start_warnings: dict[str, Seen], start: str
) -> None:
    expected = 1 if start.startswith("production-") and start.endswith("-api") else 0
    shown = [message for _, message, _ in start_warnings[start]]

    assert len(shown) == expected, shown
    assert all(message.startswith(ANONYMOUS_SCHEMA) for message in shown)


def test_fix_a_misconfiguration_warning_still_shows(tmp_path: Path) -> None:
    """JWT on, yet the schema published anonymously: loom's warning, same module, shows."""
    secret = tmp_path / "jwt-secret"
    secret.write_text(secrets.token_urlsafe(32))
    auth = tmp_path / "auth.yaml"
    auth.write_text(
        "app:\n  rest:\n    auth:\n      custom: false\n      jwt:\n"
        f"        secret_path: {secret}\n        algorithms: [HS256]\n"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        create_app(*config_paths(Process.API), str(auth))

    shown = [str(warning.message) for warning in caught]
    assert [message for message in shown if message.startswith("Authentication is enabled")]


@pytest.fixture
def notices_unfiltered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Development, with no notice filter left on loom's loggers by an earlier start."""
    monkeypatch.setenv("LOOM_ENV", "development")

    def unfilter() -> None:
        for notice in KNOWN_NOTICES:
            target = logging.getLogger(notice.logger)
            for installed in list(target.filters):
                target.removeFilter(installed)

    unfilter()
    yield
    unfilter()


class Recorded(logging.Handler):
    """Each line that reaches it, as text (structlog hands stdlib its event dict)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = record.msg.get("event") if isinstance(record.msg, dict) else record.getMessage()
        self.lines.append(str(event))


@pytest.fixture
def loom_warnings(notices_unfiltered: None) -> Iterator[Recorded]:
    """loom's warning-level lines, recorded on the ``loom`` logger itself: a start
    replaces the root logger's handlers, pytest's capture among them."""
    recorded = Recorded()
    logging.getLogger("loom").addHandler(recorded)
    yield recorded
    logging.getLogger("loom").removeHandler(recorded)


@pytest.mark.parametrize("notice", KNOWN_NOTICES, ids=lambda notice: notice.logger)
def test_defect_plain_loom_development_start_logs_the_known_notice(
    loom_warnings: Recorded, notice: KnownNotice
) -> None:
    plain_loom_api()

    assert [line for line in loom_warnings.lines if re.match(notice.message, line)], (
        f"loom no longer logs {notice.message!r}: delete its entry in loom_fixes.KNOWN_NOTICES"
    )


def test_fix_development_start_logs_no_loom_warning(loom_warnings: Recorded) -> None:
    create_api()

    assert loom_warnings.lines == []


def test_fix_other_lines_of_the_same_loggers_still_show(loom_warnings: Recorded) -> None:
    quiet_known_notices()

    for notice in KNOWN_NOTICES:
        logging.getLogger(notice.logger).warning("a finding the user must act on")

    assert loom_warnings.lines == ["a finding the user must act on"] * len(KNOWN_NOTICES)


def test_fix_embedded_mode_states_itself_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="{{ cookiecutter.package_name }}.runtime"):
        create_api()

    assert [record.getMessage() for record in caplog.records].count(EMBEDDED_JOBS_NOTICE) == 1


# The compose stack's worker command, on kombu's in-process broker: nothing to reach.
WORKER_COMMAND = [
    str(Path(sys.executable).parent / "celery"),
    "-A",
    "{{ cookiecutter.package_name }}.worker_main:celery_app",
    "worker",
    "--pool=solo",
    "--loglevel=INFO",
    "--hostname=start-check@localhost",
]
# Celery's advice against running as root is the operator's to act on, and is right
# wherever these tests run as root.
AS_ROOT = "You're running the worker with superuser privileges"


def started_worker_output(log: Path, environment: str) -> str:
    """What the worker command prints until it is ready, in ``environment``."""
    settings = {"LOOM_ENV": environment, "CELERY_BROKER_URL": "memory://"}
    settings["CELERY_RESULT_BACKEND"] = "cache+memory://"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            WORKER_COMMAND,
            env=os.environ | settings,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    return log.read_text()


@pytest.mark.parametrize("environment", ["development", "test"])
def test_fix_the_worker_command_starts_without_a_warning_or_a_known_notice(
    tmp_path: Path, environment: str
) -> None:
    output = started_worker_output(tmp_path / "worker.log", environment)

    python_warnings = re.findall(r"\b(\w*Warning): (.*)", output)
    assert [warned for warned in python_warnings if AS_ROOT not in warned[1]] == []
    for notice in KNOWN_NOTICES:
        assert not re.search(notice.message, output), notice.message


def test_fix_celery_mode_does_not_claim_to_be_embedded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    with caplog.at_level(logging.INFO, logger="{{ cookiecutter.package_name }}.runtime"):
        create_api()

    assert EMBEDDED_JOBS_NOTICE not in [record.getMessage() for record in caplog.records]


def celery_extra_requirements(distribution: str) -> dict[str, Requirement]:
    """``distribution``'s requirements that its ``celery`` extra (or no extra) pulls in."""
    requirements = [Requirement(line) for line in metadata.requires(distribution) or []]
    return {
        requirement.name: requirement
        for requirement in requirements
        if requirement.marker is None or requirement.marker.evaluate({"extra": "celery"})
    }


def test_defect_loom_admits_a_kombu_whose_redis_transport_it_forbids() -> None:
    """kombu 5.7's Redis transport needs redis>=6.1; loom caps redis below 6 yet not kombu."""
    loom = celery_extra_requirements("loom-kernel")

    assert not loom["redis"].specifier.contains("6.1.0"), (
        "loom-kernel now admits redis>=6.1: remove the kombu<5.7 pin from pyproject.toml"
    )
    assert "kombu" not in loom or loom["kombu"].specifier.contains("5.7.0"), (
        "loom-kernel now caps kombu below 5.7 itself: remove the kombu<5.7 pin from pyproject.toml"
    )


def test_fix_installed_kombu_is_below_5_7_and_redis_within_loom() -> None:
    assert Version(metadata.version("kombu")) < Version("5.7")
    redis_spec = celery_extra_requirements("loom-kernel")["redis"].specifier

    assert redis_spec.contains(metadata.version("redis"))


def test_defect_celery_job_service_has_no_public_handle_on_its_celery_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOB_RUNTIME", "celery")
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    containers: list[LoomContainer] = []
    app = plain_loom_api(modules=[containers.append])
    service = containers[0].resolve(JobService)
    assert isinstance(service, CeleryJobService)
    celery_app = getattr(service, "_app", None)

    assert isinstance(celery_app, Celery), (
        "CeleryJobService._app is gone: loom_fixes.api_celery_app must reach the app another way"
    )
    public = [name for name in dir(service) if not name.startswith("_")]
    handles = [name for name in public if getattr(service, name, None) is celery_app]
    state: dict[str, object] = vars(app.state)["_state"]
    handles += [f"app.state.{name}" for name, value in state.items() if value is celery_app]
    assert handles == [], (
        f"loom now exposes the API's Celery app as {handles}: read it there in "
        "loom_fixes.api_celery_app instead of CeleryJobService._app"
    )
