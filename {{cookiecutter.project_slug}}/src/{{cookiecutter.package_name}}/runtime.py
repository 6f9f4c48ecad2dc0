"""How this service boots loom: which config files, which job runtime, which fixes.

Jobs run in the API process unless the ``celery:`` section is loaded: the worker always
loads it, the API only with ``JOB_RUNTIME=celery`` (the compose stack sets it). With
Celery, the API and the worker record every dispatch in the transactional outbox
(``outbox/``). Beat (``beat_main.py``) is the worker's app plus ``schedule.py``.
Settings that break their rule stop either process at start, in one line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

from celery import Celery
from fastapi import FastAPI
from loom.celery.bootstrap import bootstrap_worker
from loom.core.bootstrap.bootstrap import BootstrapError
from loom.core.config.overrides import load_application_config
from loom.core.di.container import LoomContainer
from loom.core.environment import resolve_environment
from loom.rest.fastapi.auto import create_app

from {{ cookiecutter.package_name }}.auth import (
    OPEN_ENVIRONMENTS,
    api_authentication,
    declare_bearer_scheme,
)
from {{ cookiecutter.package_name }}.broker import configure_broker
from {{ cookiecutter.package_name }}.cache import require_shared_cache
from {{ cookiecutter.package_name }}.docs import serve_docs_offline
from {{ cookiecutter.package_name }}.loom_fixes import (
    api_celery_app,
    apply_job_overrides,
    document_error_responses,
    drop_sql_trace_comments,
    explain_database_refusals,
    guard_request_bodies,
    label_metrics_by_route,
    quiet_known_notices,
    quiet_known_warnings,
    worker_job_service_module,
)
from {{ cookiecutter.package_name }}.observability import (
    keep_loom_logging_in_the_worker,
    log_python_warnings,
    route_server_logs,
    serve_metrics_apart,
)
from {{ cookiecutter.package_name }}.outbox.install import install_outbox, install_worker_outbox
from {{ cookiecutter.package_name }}.outbox.settings import OutboxSettings
from {{ cookiecutter.package_name }}.setting_error import SettingError
from {{ cookiecutter.package_name }}.worker_heartbeat import keep_worker_heartbeat

logger = logging.getLogger(__name__)

# With the broker or result backend down, give up after one quick retry: Celery's defaults
# retry for ~19 s while the API's event loop, and so every request, waits.
FAIL_FAST_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}


def celery_operational_settings() -> dict[str, Any]:
    """Celery settings that loom's ``celery:`` section refuses (it forbids unknown keys), so
    they are set in code on the API's and the worker's Celery app alike; those that
    depend on the broker come from broker.py."""
    return {
        # Acknowledge a job once it has run, not when it is received: a worker killed
        # mid-job leaves the message to be redelivered to another worker.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_publish_retry_policy": FAIL_FAST_RETRY_POLICY,
        "result_backend_transport_options": {"retry_policy": FAIL_FAST_RETRY_POLICY},
        "redis_socket_connect_timeout": 1,
        "broker_connection_retry_on_startup": True,
    }


# Logged once at the start of an API without Celery, so the mode is stated, not guessed.
EMBEDDED_JOBS_NOTICE = (
    "job runtime: inline (jobs run in this process after their request commits, no broker); "
    "JOB_RUNTIME=celery publishes them to Celery instead"
)


class Process(StrEnum):
    API = "api"
    WORKER = "worker"


class JobRuntime(StrEnum):
    INLINE = "inline"
    CELERY = "celery"


def config_dir() -> Path:
    """``LOOM_CONFIG_DIR``, else ``config/`` in the working directory (the project root)."""
    return Path(os.environ.get("LOOM_CONFIG_DIR", "config"))


def job_runtime(process: Process) -> JobRuntime:
    if process is Process.WORKER:
        return JobRuntime.CELERY
    value = os.environ.get("JOB_RUNTIME", JobRuntime.INLINE)
    try:
        return JobRuntime(value)
    except ValueError:
        choices = ", ".join(runtime.value for runtime in JobRuntime)
        raise ValueError(f"JOB_RUNTIME={value!r} is not one of: {choices}") from None


def config_paths(process: Process) -> list[str]:
    """The YAML layers of ``process``, most general first."""
    directory = config_dir()
    layers = ["base.yaml"]
    if job_runtime(process) is JobRuntime.CELERY:
        layers.append("celery.yaml")
    if process is Process.WORKER:
        layers.append("worker.yaml")
    overlay = f"{resolve_environment().value}.yaml"
    if (directory / overlay).exists():
        layers.append(overlay)
    return [str(directory / layer) for layer in layers]


def start_quietly() -> None:
    """Before loom boots: its known start noise dropped (loom_fixes), every other warning
    logged like any line."""
    quiet_known_warnings()
    if resolve_environment() in OPEN_ENVIRONMENTS:
        quiet_known_notices()
    log_python_warnings()


@contextmanager
def refusing_settings_in_one_line() -> Iterator[None]:
    """A setting refused at start, here or while loom boots (which wraps the error), as
    one ERROR line: the variable to fix is the last thing the user reads."""
    try:
        yield
    except (SettingError, BootstrapError) as exc:
        refused = exc if isinstance(exc, SettingError) else exc.__cause__
        if not isinstance(refused, SettingError):
            raise
        raise SystemExit(f"ERROR: {refused}") from None


def create_api(modules: Sequence[Callable[[LoomContainer], None]] = ()) -> FastAPI:
    """Boot the API; ``modules`` also see its container (the tests take the job service there)."""
    with refusing_settings_in_one_line():
        return _create_api(modules)


def _create_api(modules: Sequence[Callable[[LoomContainer], None]]) -> FastAPI:
    start_quietly()
    paths = config_paths(Process.API)
    containers: list[LoomContainer] = []
    with api_authentication() as authenticator:
        app = create_app(*paths, authenticator=authenticator, modules=[containers.append, *modules])
    if authenticator is None:
        declare_bearer_scheme(app)
    config = load_application_config(*paths)
    apply_job_overrides(config)
    route_server_logs()
    label_metrics_by_route(app)
    serve_metrics_apart(app, config)
    guard_request_bodies(app)
    document_error_responses(app)
    explain_database_refusals(containers[0])
    drop_sql_trace_comments(containers[0])
    serve_docs_offline(app)
    celery_app = api_celery_app(containers[0])
    if celery_app is not None:
        celery_app.conf.update(celery_operational_settings())
        configure_broker(celery_app)
        require_shared_cache(containers[0], str(celery_app.conf.broker_url))
        install_outbox(app, containers[0], celery_app, OutboxSettings.from_environment())
    else:
        logger.info(EMBEDDED_JOBS_NOTICE)
    return app


def create_worker(
    modules: Sequence[Callable[[LoomContainer], None]] = (), **explicit: Any
) -> Celery:
    """Boot the Celery app; ``modules`` also see its container, ``explicit`` goes to
    ``bootstrap_worker`` (jobs=, callbacks=...)."""
    with refusing_settings_in_one_line():
        return _create_worker(modules, explicit)


def _create_worker(
    modules: Sequence[Callable[[LoomContainer], None]], explicit: dict[str, Any]
) -> Celery:
    start_quietly()
    booted: list[Celery] = []
    result = bootstrap_worker(
        *config_paths(Process.WORKER),
        modules=[worker_job_service_module(lambda: booted[0]), *modules],
        **explicit,
    )
    booted.append(result.celery_app)
    keep_loom_logging_in_the_worker()
    explain_database_refusals(result.container)
    drop_sql_trace_comments(result.container)
    result.celery_app.conf.update(celery_operational_settings())
    configure_broker(result.celery_app)
    require_shared_cache(result.container, str(result.celery_app.conf.broker_url))
    install_worker_outbox(result.container, result.celery_app, OutboxSettings.from_environment())
    keep_worker_heartbeat(os.environ)
    return result.celery_app
