"""Workarounds for loom-kernel 9.0.0 defects, each pinned by a test in tests/test_loom_fixes.py.

Every test there first shows the defect on plain loom, so when an upgrade fixes one, its
test fails and says which workaround to delete.
"""

from __future__ import annotations

import logging
import re
import time
import typing
import warnings
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from functools import partial, wraps
from typing import Any, NamedTuple

import msgspec
from celery import Celery
from celery.local import Proxy
from fastapi import FastAPI
from loom.celery.config import JobConfig, apply_job_config
from loom.celery.service import CeleryJobService
from loom.core.command import Command
from loom.core.config.context import ConfigContext
from loom.core.di.container import LoomContainer
from loom.core.di.scope import Scope
from loom.core.engine.executor import RuntimeExecutor
from loom.core.errors import NotFound, RuleViolation
from loom.core.errors.codes import ErrorCode
from loom.core.job.job import Job
from loom.core.job.service import JobService
from loom.core.model import BoundaryValidationError
from loom.core.repository.sqlalchemy.session_manager import SessionManager
from loom.core.tracing import get_trace_id
from loom.core.use_case.factory import UseCaseFactory
from loom.prometheus.middleware import PrometheusMiddleware
from loom.rest import autocrud
from loom.rest.fastapi.response import MsgspecJSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DataError
from starlette.middleware import Middleware
from starlette.routing import Match

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


class StrictCommand(Command, frozen=True, forbid_unknown_fields=True):
    """A command that refuses fields it does not declare (a typo is a 422, not ignored)."""


@contextmanager
def _derivation_keeping_constraints() -> Iterator[None]:
    saved = autocrud.get_type_hints, autocrud.Command  # type: ignore[attr-defined]
    autocrud.get_type_hints = partial(typing.get_type_hints, include_extras=True)  # type: ignore[attr-defined]
    autocrud.Command = StrictCommand  # type: ignore[attr-defined]
    try:
        yield
    finally:
        autocrud.get_type_hints, autocrud.Command = saved  # type: ignore[attr-defined]


def constrained_auto_routes(model: type[Any]) -> tuple[Any, ...]:
    """``build_auto_routes(model, ())`` whose create and update inputs keep the model's
    field constraints and refuse unknown fields, and whose delete of an unknown id is a
    404.

    Why: 9.0.0 derives those inputs with ``get_type_hints`` without extras, dropping
    every ``Annotated`` constraint, so an over-long or negative value reaches the
    database. loom caches the routes per model, so this must be the first call for it.
    """
    with _derivation_keeping_constraints():
        routes = autocrud.build_auto_routes(model, ())
    for route in routes:
        if route.method == "DELETE":
            _delete_unknown_is_not_found(route.use_case, model)
    return routes


def _delete_unknown_is_not_found(delete: type[Any], model: type[Any]) -> None:
    """Why: 9.0.0's AutoCRUD delete answers ``200 false`` for an id that does not exist,
    where its get and update answer 404. The generated use case belongs to this model
    alone, so its ``execute`` is wrapped in place, keeping the signature loom reads."""
    deletes = delete.execute

    @wraps(deletes)
    async def execute(self: Any, id: Any) -> bool:
        deleted: bool = await deletes(self, id)
        if not deleted:
            raise NotFound(model.__name__, id=id)
        return deleted

    delete.execute = execute


def _causes(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _unstorable(error: BaseException) -> bool:
    """A value the column cannot hold: PostgreSQL's data exceptions (SQLSTATE class 22:
    out of range, too long, NUL), or a driver refusing to encode it (asyncpg's int32
    check, sqlite3's int64 one) before it is sent."""
    if isinstance(error, DataError | ArithmeticError | ValueError):
        return True
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return isinstance(code, str) and code.startswith("22")


# A unique index's columns, as PostgreSQL's detail and SQLite's message name them.
_DUPLICATE_KEY = re.compile(
    r"Key \((?P<postgres>[^)]+)\)=|UNIQUE constraint failed: (?P<sqlite>[\w., ]+)"
)


class DuplicateValue(RuleViolation):
    """A value a unique column already holds: a 409 ``conflict`` naming the field.

    A ``RuleViolation`` so that loom's error body carries ``field``; its code is
    ``conflict``, so the status is 409 as for loom's own ``Conflict``.
    """

    def __init__(self, field: str) -> None:
        super().__init__(field, f"another record already has this {field}")
        self.code = ErrorCode.CONFLICT


def _duplicate_field(error: BaseException) -> str | None:
    """The API name of the one column a unique violation is about, if it is one column."""
    for cause in _causes(error):
        found = _DUPLICATE_KEY.search(getattr(cause, "detail", None) or str(cause))
        if found:
            columns = (found["postgres"] or found["sqlite"]).split(",")
            if len(columns) != 1:
                return None
            column = columns[0].strip().rpartition(".")[2]
            # loom's models encode their fields in camelCase.
            head, *rest = column.split("_")
            return head + "".join(word.title() for word in rest)
    return None


def _explain_database_refusal(context: ExceptionContext) -> None:
    if any(_unstorable(cause) for cause in _causes(context.original_exception)):
        reason = str(context.original_exception).splitlines()[0]
        raise BoundaryValidationError(f"a value does not fit its database column: {reason}")
    duplicate = _duplicate_field(context.original_exception)
    if duplicate is not None:
        raise DuplicateValue(duplicate)


# The listener loom registers on every engine to prefix each SQL statement with a comment.
TRACE_COMMENT_LISTENER = "_register_trace_id_listener.<locals>._inject"


def trace_comment_listeners(container: LoomContainer) -> list[Callable[..., Any]]:
    engine = container.resolve(SessionManager).engine.sync_engine
    return [
        listener
        for listener in engine.dispatch.before_cursor_execute
        if getattr(listener, "__qualname__", "") == TRACE_COMMENT_LISTENER
    ]


def drop_sql_trace_comments(container: LoomContainer) -> None:
    """Send SQL without loom's ``/* trace_id=... */`` prefix.

    Why: 9.0.0 prefixes every statement with the request's trace id and offers no switch,
    so no two requests send the same SQL text and asyncpg prepares every statement on the
    server again: half of a read's time on PostgreSQL. Trace ids stay in every log line.
    """
    engine = container.resolve(SessionManager).engine.sync_engine
    for listener in trace_comment_listeners(container):
        event.remove(engine, "before_cursor_execute", listener)


def explain_database_refusals(container: LoomContainer) -> None:
    """Answer a value the database refuses with a 4xx naming the problem: 422
    ``boundary_validation`` for one it cannot store (an id past its integer column, NUL
    in a filter), 409 ``conflict`` with the ``field`` for one a unique column holds.

    Why: 9.0.0 turns every exception other than its own into a 500 inside its route
    dispatcher; typed inputs stop these values in bodies, but path ids and filter
    values reach the database as they came. And its ``Conflict`` for a unique violation
    names no field, only the index, on PostgreSQL.
    """
    engine = container.resolve(SessionManager).engine.sync_engine
    event.listen(engine, "handle_error", _explain_database_refusal)


class RequestBodyGuard:
    """Check a route's JSON body before loom decodes it: 422 when a required body is
    missing, 415 when it is not JSON, 400 when it is malformed or not an object.

    Why: 9.0.0 decodes route bodies outside its error mapping, so each of these became
    a 500 ``internal_error``. Which routes need a body comes from the app's own
    OpenAPI. Bodies are already capped by loom's size-limit middleware, which wraps
    this one.
    """

    _WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})

    def __init__(self, app: AsgiApp, api: FastAPI) -> None:
        self._app = app
        self._api = api

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._requires_body(scope):
            await self._app(scope, receive, send)
            return
        messages = [await receive()]
        while messages[-1].get("more_body", False):
            messages.append(await receive())
        body = b"".join(message.get("body", b"") for message in messages)
        problem = _body_problem(_content_type(scope), body)
        if problem is not None:
            status, detail = problem
            detail["trace_id"] = get_trace_id()
            await MsgspecJSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
            return
        await self._app(scope, _replay(messages, receive), send)

    def _requires_body(self, scope: AsgiScope) -> bool:
        if scope["method"] not in self._WRITE_METHODS:
            return False
        paths = self._api.openapi()["paths"]
        for route in self._api.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                path = getattr(route, "path_format", "")
                operation = paths.get(path, {}).get(scope["method"].lower(), {})
                return bool(operation.get("requestBody", {}).get("required"))
        return False


def _content_type(scope: AsgiScope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return str(value.decode("latin-1").split(";")[0].strip().lower())
    return ""


def _body_problem(content_type: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
    if not body:
        message = "a JSON object body is required"
        violation = {"field": "body", "message": message}
        return 422, {"code": "boundary_validation", "message": message, "violations": [violation]}
    if content_type != "application/json" and not content_type.endswith("+json"):
        message = f"content type {content_type or 'none'!r} is not application/json"
        return 415, {"code": "unsupported_media_type", "message": message, "field": "body"}
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        message = f"request body is not valid JSON: {exc}"
        return 400, {"code": "malformed_json", "message": message, "field": "body"}
    if not isinstance(value, dict):
        message = "request body must be a JSON object"
        return 400, {"code": "malformed_json", "message": message, "field": "body"}
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = iter(messages)

    async def replayed() -> Message:
        return next(pending, None) or await receive()

    return replayed


def guard_request_bodies(app: FastAPI) -> None:
    """Install :class:`RequestBodyGuard` innermost, behind loom's own middleware."""
    app.user_middleware.append(Middleware(RequestBodyGuard, api=app))


ERROR_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "type": "object",
            "required": ["code", "message", "trace_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "trace_id": {"type": ["string", "null"]},
                "field": {"type": "string"},
                "violations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}
_ERROR_DESCRIPTIONS = {
    "400": "Malformed JSON, or a query parameter, filter, sort or cursor not accepted",
    "401": "Missing, expired or invalid bearer token",
    "403": "The token lacks a role this operation needs",
    "404": "No row with that id",
    "409": "Conflicts with an existing row; `field` names the duplicate value (sku)",
    "413": "Body over the size cap",
    "415": "Body is not application/json",
    "422": "A field breaks its rule; `violations` names each field",
}


def _error_statuses(method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["400", "401", "403", "422"]
    if any(parameter.get("in") == "path" for parameter in operation.get("parameters", [])):
        statuses.append("404")
    if method in {"post", "patch", "delete"}:
        statuses.append("409")
    if "requestBody" in operation:
        statuses += ["413", "415"]
    return sorted(statuses)


def document_error_responses(app: FastAPI) -> None:
    """Declare loom's error body, and the statuses that carry it, on every operation.

    Why: 9.0.0 documents only FastAPI's own 422 shape, which loom never sends, so
    clients and contract tests cannot tell what a 4xx looks like.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        if "Error" in schemas:
            return schema
        schemas["Error"] = ERROR_BODY_SCHEMA
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                for status in _error_statuses(method, operation):
                    operation["responses"][status] = {
                        "description": _ERROR_DESCRIPTIONS[status],
                        "content": content,
                    }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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


class KnownNotice(NamedTuple):
    """A warning-level log line loom writes at every start of an open environment
    (development, test) about what that environment is meant to do."""

    logger: str  # the logger it is written to, exactly
    message: str  # regular expression, matched from the start of the line
    reason: str


KNOWN_NOTICES = (
    KnownNotice(
        "loom.core.checks",
        r"deploy checks skipped: the environment is '(development|test)'",
        "9.0.0 warns that deploy checks do not run where they are not meant to",
    ),
    KnownNotice(
        "loom.core.repository.abc.cursor",
        r"cursor signing is ephemeral",
        "9.0.0 warns of the per-process cursor key that development.yaml and test.yaml ask for",
    ),
)


class _DropKnownNotices(logging.Filter):
    def __init__(self, notices: tuple[KnownNotice, ...]) -> None:
        super().__init__()
        self._patterns = [re.compile(notice.message) for notice in notices]

    def filter(self, record: logging.LogRecord) -> bool:
        # structlog hands stdlib its event dict; a plain record carries its message.
        event = record.msg.get("event") if isinstance(record.msg, dict) else record.getMessage()
        return not any(pattern.match(str(event)) for pattern in self._patterns)


def quiet_known_notices() -> None:
    """Drop each of :data:`KNOWN_NOTICES` by logger and message; every other line of those
    loggers still shows. Call it in development and test only.

    Why: loom-kernel 9.0.0 writes both at WARNING on every ``make run``, about the very
    settings the open environments choose, so a newcomer reads them as problems.
    """
    for logger in {notice.logger for notice in KNOWN_NOTICES}:
        notices = tuple(notice for notice in KNOWN_NOTICES if notice.logger == logger)
        target = logging.getLogger(logger)
        if not any(isinstance(existing, _DropKnownNotices) for existing in target.filters):
            target.addFilter(_DropKnownNotices(notices))


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


class RouteTemplateMetrics(PrometheusMiddleware):
    """loom's HTTP metrics, labelled with the route that answered (``/products/{id}``).

    Why: 9.0.0's middleware reads the route from the request before the router has set
    it, so every request is counted as ``path_template="__unmatched__"``. This reads it
    once the response is done; requests no route matched keep that label.
    """

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]  # what the client gets when the app raises before answering

        async def record_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "__unmatched__"
            method = str(scope.get("method", "UNKNOWN")).upper()
            self._requests_total.labels(
                method=method, path_template=route, status_code=str(status[0])
            ).inc()
            self._duration_seconds.labels(method=method, path_template=route).observe(
                time.perf_counter() - started
            )


def label_metrics_by_route(app: FastAPI) -> None:
    """Swap loom's metrics middleware for :class:`RouteTemplateMetrics`, same place, same
    registry; nothing to do when ``observability.prometheus`` is off."""
    for index, middleware in enumerate(app.user_middleware):
        factory: object = middleware.cls
        if factory is PrometheusMiddleware:
            given = dict(middleware.kwargs).get("registry")
            registry = given if isinstance(given, CollectorRegistry) else None
            app.user_middleware[index] = Middleware(RouteTemplateMetrics, registry=registry)
