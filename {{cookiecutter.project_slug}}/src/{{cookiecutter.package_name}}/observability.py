"""One log stream per process, every line of a request and of its jobs under one trace id.

Why: loom configures structlog and the root logger from ``observability.log`` in
config/observability.yaml, and its HTTP middleware binds the request's trace id for the
request. Four things stay outside that: Python warnings go to stderr as plain text,
uvicorn writes through handlers of its own, the Celery worker replaces the root logger's
handlers at start unless something answers its ``setup_logging`` signal, and loom's
Celery tasks activate the job's trace id and caller for loom's own events but not for
structlog's context, so a job's own lines and Celery's lines about it carried neither.
Metrics: loom serves ``/metrics`` on the API's own port; where a separate port is
configured (the Kubernetes manifests do), it moves there.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from celery.signals import setup_logging, task_postrun, task_prerun
from fastapi import FastAPI
from loom.core.config.context import ConfigContext
from loom.core.identity.wire import decode_identity
from loom.core.observability.config import PrometheusObservabilityConfig
from prometheus_client import start_http_server
from structlog.contextvars import bind_contextvars, unbind_contextvars

# uvicorn's loggers, including the access log: the one line a request leaves at INFO.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def log_python_warnings() -> None:
    """Python warnings (loom's advice at start) as records of the ``py.warnings`` logger,
    rendered like every other line instead of as bare text on stderr. Call before loom
    boots."""
    logging.captureWarnings(True)


def route_server_logs() -> None:
    """Send uvicorn's records to the root logger, so they share loom's handler and format
    (and the access line gets the request's trace id, bound while the response starts)."""
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True


def keep_loom_logging_in_the_worker() -> None:
    """Call once loom has booted the worker: bind each job's and callback's trace id and
    the subject of the caller who dispatched it (the ``trace_id`` and ``identity`` kwargs
    of every loom task) for the lines logged while it runs, and leave the logging loom
    configured (its handler on the root logger) to the worker. Without one
    (config/test.yaml turns it off) Celery sets up its own, as it does by default."""
    if logging.getLogger().handlers:
        setup_logging.connect(_logging_already_configured, weak=False, dispatch_uid=__name__)
    task_prerun.connect(_bind_job_context, weak=False, dispatch_uid=__name__)
    task_postrun.connect(_unbind_job_context, weak=False, dispatch_uid=__name__)


def _logging_already_configured(**_: Any) -> None:
    """Answering the signal is what stops Celery from replacing the root handlers."""


def _bind_job_context(kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    kwargs = kwargs or {}
    if kwargs.get("trace_id") is not None:
        bind_contextvars(trace_id=kwargs["trace_id"])
    caller = decode_identity(kwargs.get("identity"))
    if caller is not None:
        bind_contextvars(caller=caller.subject)


def _unbind_job_context(**_: Any) -> None:
    unbind_contextvars("trace_id", "caller")


def serve_metrics_apart(app: FastAPI, config: ConfigContext) -> None:
    """With ``observability.prometheus.config.port`` set (``METRICS_PORT``), ``/metrics``
    leaves the API's public port for that port, served while the app runs.

    Why: an orchestrator's network policy can then admit anyone to the API's port and
    keep metrics (route names, timings, error counts) to the scraper inside the cluster.
    Unset (``make run``, the compose stack) ``/metrics`` stays where loom serves it.
    """
    scrape = config.section("observability.prometheus", PrometheusObservabilityConfig).config
    if scrape is None or scrape.port is None:
        return
    port, address = scrape.port, scrape.bind_address
    app.router.routes[:] = [
        route for route in app.router.routes if getattr(route, "path", None) != scrape.path
    ]
    served = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        server, thread = start_http_server(port, addr=address)
        application.state.metrics_port = server.server_port
        try:
            async with served(application) as state:
                yield state
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    app.router.lifespan_context = lifespan
