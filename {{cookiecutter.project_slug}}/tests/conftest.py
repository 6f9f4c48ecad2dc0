"""Shared set-up: every test gets its own SQLite file and a freshly booted API."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import schemathesis
import structlog
from fastapi.testclient import TestClient
from loom.core.di.container import LoomContainer
from loom.core.job.job import Job
from loom.core.job.service import JobService

from {{ cookiecutter.package_name }}.jobs import added_jobs
from {{ cookiecutter.package_name }}.loom_fixes import quiet_known_warnings
from {{ cookiecutter.package_name }}.product.jobs import (
    BuildProductSummaryJob,
    LowStockSweepJob,
    SendRestockEmailJob,
    SyncProductToErpJob,
)
from {{ cookiecutter.package_name }}.runtime import JobRuntime, create_api

PROJECT_ROOT = Path(__file__).resolve().parents[1]
JOB_TYPES: tuple[type[Job[Any]], ...] = (
    SendRestockEmailJob,
    BuildProductSummaryJob,
    SyncProductToErpJob,
    LowStockSweepJob,
    *added_jobs(),
)
ROUTING = ("__queue__", "__retries__", "__countdown__", "__timeout__", "__priority__")


@pytest.fixture(autouse=True)
def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOOM_ENV", "test")
    monkeypatch.setenv("LOOM_CONFIG_DIR", str(PROJECT_ROOT / "config"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    monkeypatch.delenv("JOB_RUNTIME", raising=False)


@pytest.fixture(autouse=True)
def known_warnings_quiet() -> None:
    """The filters the service installs at start, for tests that boot plain loom too."""
    quiet_known_warnings()


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """A start outside the test environment configures logging for the whole process
    (config/observability.yaml); put every logger and structlog back after each test."""
    structlog_config = structlog.get_config()
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    saved = [(logger, logger.level, list(logger.handlers), logger.propagate) for logger in loggers]
    yield
    structlog.configure(**structlog_config)
    logging.captureWarnings(False)
    for logger, level, handlers, propagate in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.fixture(autouse=True)
def job_routing_restored() -> Iterator[None]:
    """Booting applies config/jobs.yaml to the job classes; undo it after each test."""
    saved = {job: {name: job.__dict__.get(name) for name in ROUTING} for job in JOB_TYPES}
    yield
    for job, attrs in saved.items():
        for name, value in attrs.items():
            if value is None:
                if name in job.__dict__:
                    delattr(job, name)
            else:
                setattr(job, name, value)


def one_line(refusal: pytest.ExceptionInfo[SystemExit]) -> str:
    """What a refused start prints: one line, ``ERROR: `` then the setting and its rule."""
    message = str(refusal.value)
    assert "\n" not in message
    assert message.startswith("ERROR: ")
    return message.removeprefix("ERROR: ")


ENVIRONMENTS = ("development", "test", "production")
STARTS = [(environment, runtime) for environment in ENVIRONMENTS for runtime in JobRuntime]


@pytest.fixture(params=STARTS, ids=[f"{env}-{runtime}" for env, runtime in STARTS])
def any_start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> JobRuntime:
    """Each environment and job runtime the API starts in. Celery's broker and the cache
    are at a Redis address nothing answers: starting connects to none, and production
    refuses kombu's in-process broker and an in-process cache."""
    environment, runtime = request.param
    monkeypatch.setenv("LOOM_ENV", environment)
    monkeypatch.setenv("CURSOR_KEY_K1", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.setenv("JWT_SECRET", secrets.token_urlsafe(48))
    monkeypatch.setenv("JOB_RUNTIME", runtime)
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "cache+memory://")
    monkeypatch.setenv("CACHE_URL", "redis://127.0.0.1:1/2")
    return JobRuntime(runtime)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_api(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def api_schema() -> schemathesis.schemas.BaseSchema:
    """The app's own OpenAPI, for tests/test_api_fuzz.py (and its PostgreSQL run).

    schemathesis runs the app's lifespan around every call, each on a loop of its own:
    the app must not be started here, or its pooled connections would belong to
    another loop (asyncpg refuses that).
    """
    return schemathesis.openapi.from_asgi("/openapi.json", create_api())


ResultT = TypeVar("ResultT")


class JobRunner(Protocol):
    def __call__(
        self,
        job: type[Job[ResultT]],
        /,
        *,
        params: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> ResultT: ...


@pytest.fixture
def run_job() -> Iterator[JobRunner]:
    """Run a job now, in this process, with the started API's own job service (in-process:
    the tests load no ``celery:`` section) and on its event loop, as ``JobService.run()``
    does inside a use case."""
    containers: list[LoomContainer] = []
    with TestClient(create_api(modules=[containers.append])) as client:
        service: JobService = containers[0].resolve(JobService)
        portal = client.portal
        assert portal is not None  # set while the client is open

        def run(
            job: type[Job[ResultT]],
            /,
            *,
            params: dict[str, Any] | None = None,
            payload: dict[str, Any] | None = None,
        ) -> ResultT:
            async def execute() -> ResultT:
                return await service.run(job, params=params, payload=payload)

            return portal.call(execute)

        yield run


class ProductFactory(Protocol):
    def __call__(self, **overrides: object) -> dict[str, Any]: ...


@pytest.fixture
def create_product(client: TestClient) -> ProductFactory:
    """POST a product (out of stock unless told otherwise) and return its JSON."""

    def create(**overrides: object) -> dict[str, Any]:
        body = {
            "sku": "SKU-1",
            "name": "Kettle",
            "category": "kitchen",
            "priceCents": 2599,
            "stock": 0,
        }
        response = client.post("/products/", json=body | overrides)
        assert response.status_code == 201, response.text
        product: dict[str, Any] = response.json()
        return product

    return create
