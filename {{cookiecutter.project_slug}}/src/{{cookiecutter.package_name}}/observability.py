"""One log stream per process, every line of a request and of its jobs under one trace id.

Why: loom configures structlog and the root logger from ``observability.log`` in
config/observability.yaml, and its HTTP middleware binds the request's trace id for the
request. Four things stay outside that: Python warnings go to stderr as plain text,
uvicorn writes through handlers of its own, the Celery worker replaces the root logger's
handlers at start unless something answers its ``setup_logging`` signal, and loom's
Celery tasks activate the job's trace id and caller for loom's own events but not for
structlog's context, so a job's own lines and Celery's lines about it carried neither.
Metrics need nothing here: loom serves ``/metrics`` from the same file.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import setup_logging, task_postrun, task_prerun
from loom.core.identity.wire import decode_identity
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
