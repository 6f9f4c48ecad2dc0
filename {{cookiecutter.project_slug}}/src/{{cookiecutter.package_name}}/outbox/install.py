"""Put the outbox into a booted API (its job service, its relay, its line in ``/health``)
and into a booted worker (its job service only).

Runs after ``create_app`` returns, because loom registers its own ``JobService`` after
the application's modules; use cases resolve the service per request, so registering
again here replaces it for every request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from celery import Celery
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from loom.celery.service import CeleryJobService
from loom.core.di.container import LoomContainer
from loom.core.job.service import JobService
from loom.core.repository.sqlalchemy.session_manager import SessionManager
from loom.rest.fastapi.health import HEALTH_PATH

from {{ cookiecutter.package_name }}.outbox.relay import OutboxRelay
from {{ cookiecutter.package_name }}.outbox.service import OutboxJobService
from {{ cookiecutter.package_name }}.outbox.settings import OutboxSettings


def install_outbox(
    app: FastAPI, container: LoomContainer, celery_app: Celery, settings: OutboxSettings
) -> OutboxRelay:
    inner = container.resolve(JobService)
    assert isinstance(inner, CeleryJobService), "the outbox wraps the Celery job service"
    relay = OutboxRelay(celery_app, container.resolve(SessionManager), settings)
    container.register_instance(JobService, OutboxJobService(inner, relay))
    _run_relay_with_the_app(app, relay)
    _report_backlog_in_health(app, relay)
    app.state.outbox_relay = relay  # for operators' scripts and the tests
    return relay


def install_worker_outbox(
    container: LoomContainer, celery_app: Celery, settings: OutboxSettings
) -> None:
    """Jobs that dispatch jobs (the scheduled low-stock sweep) record them as the API does:
    the row commits with the job's own transaction, its publish follows the commit, and
    the API's relay publishes whatever that misses. The worker runs no relay of its own:
    the API always runs beside it in Celery mode, and one kind of relay is enough."""
    inner = container.resolve(JobService)
    assert isinstance(inner, CeleryJobService), "the outbox wraps the Celery job service"
    relay = OutboxRelay(celery_app, container.resolve(SessionManager), settings)
    container.register_instance(JobService, OutboxJobService(inner, relay))


def _run_relay_with_the_app(app: FastAPI, relay: OutboxRelay) -> None:
    served = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with served(application) as state:
            relay.start()  # first pass at once: publishes what a crashed process left
            try:
                yield state
            finally:
                await relay.stop()

    app.router.lifespan_context = lifespan


def _report_backlog_in_health(app: FastAPI, relay: OutboxRelay) -> None:
    """``/health`` gains ``outbox: {pending, oldestPendingSeconds}``; its status stays
    loom's: a broker outage is not a reason for an orchestrator to restart the API."""
    routes = app.router.routes
    index, route = next(
        (i, r) for i, r in enumerate(routes) if isinstance(r, APIRoute) and r.path == HEALTH_PATH
    )
    readiness = route.endpoint

    async def health() -> JSONResponse:
        answer = await readiness()
        body = json.loads(answer.body)
        try:
            body["outbox"] = await relay.backlog()
        except Exception:  # the database is down: loom's own probe already says so
            body["outbox"] = None
        return JSONResponse(body, status_code=answer.status_code)

    routes[index] = APIRoute(HEALTH_PATH, health, methods=["GET"], include_in_schema=False)
