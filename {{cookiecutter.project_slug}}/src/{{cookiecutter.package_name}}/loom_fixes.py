"""Workarounds for loom-kernel 9.0.0 defects, each pinned by a test in tests/test_loom_fixes.py.

Every test there first shows the defect on plain loom, so when an upgrade fixes one, its
test fails and says which workaround to delete.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, NamedTuple

import msgspec
from celery import Celery
from celery.local import Proxy
from fastapi import FastAPI
from loom.celery.config import JobConfig, apply_job_config
from loom.celery.service import CeleryJobService
from loom.core.config.context import ConfigContext
from loom.core.di.container import LoomContainer
from loom.core.di.scope import Scope
from loom.core.engine.executor import RuntimeExecutor
from loom.core.job.job import Job
from loom.core.job.service import JobService
from loom.core.tracing import get_trace_id
from loom.core.use_case.factory import UseCaseFactory
from loom.rest.fastapi.response import MsgspecJSONResponse
from starlette.middleware import Middleware

AsgiScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[AsgiScope, Receive, Send], Awaitable[None]]


def worker_job_service_module(celery_app: Callable[[], Celery]) -> Callable[[LoomContainer], None]:
    """Register ``JobService`` in the worker's container.

    Why: 9.0.0 verifies every use case's dependencies when a worker boots, but only the
    REST app registers a JobService, so any worker compiling a use case that injects one
    dies with ResolutionError. The Celery app exists only once ``bootstrap_worker``
    returns, so the service gets Celery's own lazy proxy to it.
    """

    def register(container: LoomContainer) -> None:
        def build() -> JobService:
            return CeleryJobService(
                Proxy(celery_app),
                factory=container.resolve(UseCaseFactory),
                executor=container.resolve(RuntimeExecutor),
            )

        container.register(JobService, build, scope=Scope.APPLICATION)

    return register


def api_celery_app(container: LoomContainer) -> Celery | None:
    """The Celery app the API publishes with; ``None`` with the in-process job service.

    Why: 9.0.0 builds that app inside ``create_app`` and offers no handle on it, so
    settings its ``celery:`` section refuses (acks, retry policies) are reached through
    the job service's private attribute.
    """
    service = container.resolve(JobService)
    if not isinstance(service, CeleryJobService):
        return None
    celery_app: Celery = service._app
    return celery_app


def apply_job_overrides(config: ConfigContext) -> None:
    """Apply the ``jobs:`` YAML to the job classes of the calling process.

    Why: 9.0.0 applies ``jobs:`` only inside the worker, but the broker message (queue,
    countdown, priority, soft time limit) is built by the API from the class attributes,
    so without this the YAML never reaches the broker. Call it after the application's
    modules are imported. A key naming no job class is an error, not a silent no-op.
    """
    overrides = config.raw("jobs", {}) or {}
    job_types = {job_type.__name__: job_type for job_type in _job_subclasses(Job)}
    unknown = sorted(set(overrides) - set(job_types))
    if unknown:
        raise ValueError(
            f"jobs: {', '.join(unknown)} name no Job class; known: {', '.join(sorted(job_types))}"
        )
    for name in overrides:
        apply_job_config(job_types[name], config.section(f"jobs.{name}", JobConfig))


def _job_subclasses(base: type[Any]) -> Iterator[type[Job[Any]]]:
    for subclass in base.__subclasses__():
        yield subclass
        yield from _job_subclasses(subclass)


class RejectNonObjectJsonBodies:
    """Answer 400 ``malformed_json`` to a write whose body is not a JSON object.

    Why: 9.0.0 decodes route bodies outside its error mapping, so malformed JSON (or a
    bare array, string or number) becomes a 500 ``internal_error``. The body is parsed
    once more here; it is already capped by loom's body-size middleware, which wraps this.
    """

    _WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})

    def __init__(self, app: AsgiApp) -> None:
        self._app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in self._WRITE_METHODS:
            await self._app(scope, receive, send)
            return
        messages = [await receive()]
        while messages[-1].get("more_body", False):
            messages.append(await receive())
        body = b"".join(message.get("body", b"") for message in messages)
        problem = _not_a_json_object(body)
        if problem is not None:
            detail = {"code": "malformed_json", "message": problem, "trace_id": get_trace_id()}
            await MsgspecJSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
            return
        await self._app(scope, _replay(messages, receive), send)


def _not_a_json_object(body: bytes) -> str | None:
    if not body:
        return None
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        return f"request body is not valid JSON: {exc}"
    return None if isinstance(value, dict) else "request body must be a JSON object"


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = iter(messages)

    async def replayed() -> Message:
        return next(pending, None) or await receive()

    return replayed


def guard_json_bodies(app: FastAPI) -> None:
    """Install :class:`RejectNonObjectJsonBodies` innermost, behind loom's own middleware."""
    app.user_middleware.append(Middleware(RejectNonObjectJsonBodies))


class KnownWarning(NamedTuple):
    """A warning loom emits on every start that the user cannot act on."""

    category: type[Warning]
    message: str  # regular expression, matched from the start of the message
    module: str  # the module the warning is attributed to, exactly
    reason: str


KNOWN_WARNINGS = (
    KnownWarning(
        UserWarning,
        r"register_new_resolver\(\) is deprecated",
        "loom.core.config.loader",
        "9.0.0's config loader calls an omegaconf function deprecated upstream",
    ),
    KnownWarning(
        UserWarning,
        r"Celery config section is missing",
        "loom.rest.fastapi.auto",
        "9.0.0 calls the in-process job service a fallback; the embedded mode asks for it",
    ),
)


def quiet_known_warnings() -> None:
    """Ignore each of :data:`KNOWN_WARNINGS`, by category, message and module only.

    Why: loom-kernel 9.0.0 prints both at every start of the API or worker, so a
    newcomer reads them as a misconfiguration; every other warning still shows.
    """
    for known in KNOWN_WARNINGS:
        warnings.filterwarnings(
            "ignore",
            message=known.message,
            category=known.category,
            module=re.escape(known.module) + r"\Z",
        )
