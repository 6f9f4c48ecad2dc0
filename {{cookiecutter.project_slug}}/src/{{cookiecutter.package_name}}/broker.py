"""The broker behind Celery, told apart by its URL's scheme: its settings and its rules.

Redis and RabbitMQ differ in how a dead worker's jobs come back (Redis after the
visibility timeout, RabbitMQ as soon as the worker's connection drops) and in how
priorities work, so each gets its own settings. Any other broker is refused at start.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from loom.core.job.job import Job


class Broker(StrEnum):
    REDIS = "redis"
    RABBITMQ = "rabbitmq"
    # kombu's in-process transport: the tests' broker, never a deployment's.
    MEMORY = "memory"


BROKER_SCHEMES = {
    "redis": Broker.REDIS,
    "rediss": Broker.REDIS,
    "amqp": Broker.RABBITMQ,
    "amqps": Broker.RABBITMQ,
    "memory": Broker.MEMORY,
}

# RabbitMQ orders a queue's messages by priority only when the queue is declared with
# x-max-priority; 10 leaves room above and below the jobs' own priorities.
MAX_PRIORITY = 10
# Messages sent without one (callbacks) rank with jobs of loom's default priority, 0.
DEFAULT_PRIORITY = 0


class BrokerSettingError(ValueError):
    """A broker setting the service cannot run with; its message names it and the rule."""


def broker_of(url: str) -> Broker:
    """The broker ``url`` points at. Only the scheme is named in an error: the URL holds
    a password."""
    scheme = urlsplit(url).scheme
    try:
        return BROKER_SCHEMES[scheme]
    except KeyError:
        schemes = ", ".join(f"{known}://" for known in BROKER_SCHEMES)
        raise BrokerSettingError(
            f"CELERY_BROKER_URL (celery.broker_url) scheme {scheme!r} is not a supported "
            f"broker: it must start with one of {schemes}"
        ) from None


def broker_settings(broker: Broker, visibility_timeout: int) -> dict[str, Any]:
    """Celery settings that depend on the broker."""
    if broker is Broker.REDIS:
        return {"broker_transport_options": {"visibility_timeout": visibility_timeout}}
    if broker is Broker.MEMORY:
        return {}
    # The API and the worker declare each queue with the same arguments; RabbitMQ refuses
    # a second declaration that differs, so both processes take these settings.
    return {
        "task_queue_max_priority": MAX_PRIORITY,
        "task_default_priority": DEFAULT_PRIORITY,
    }


def loaded_jobs(base: type[Any] = Job) -> Iterator[type[Job[Any]]]:
    """Every Job class imported so far, with the ``jobs:`` YAML already applied to it."""
    for subclass in base.__subclasses__():
        yield subclass
        yield from loaded_jobs(subclass)


def check_visibility_timeout(timeout: int, jobs: Iterable[type[Job[Any]]]) -> None:
    """Refuse a Redis visibility timeout that a job can outlast.

    Redis hands an unacknowledged message to another worker once the timeout has passed
    since delivery; a job is held through its countdown and then runs up to its soft time
    limit, so a shorter timeout runs a slow job twice.
    """
    jobs = list(jobs)
    limits = ((job.__timeout__, job.__name__) for job in jobs if job.__timeout__)
    countdowns = ((job.__countdown__, job.__name__) for job in jobs if job.__countdown__)
    limit, limited = max(limits, default=(0, ""))
    countdown, delayed = max(countdowns, default=(0, ""))
    if timeout < limit + countdown:
        raise BrokerSettingError(
            f"CELERY_VISIBILITY_TIMEOUT={timeout} is shorter than the longest job soft time "
            f"limit plus the longest countdown ({limit} s of {limited or 'no job'} + "
            f"{countdown} s of {delayed or 'no job'} = {limit + countdown} s): "
            "Redis would give a job that is still running to a second worker"
        )


@contextmanager
def one_line_refusal() -> Iterator[None]:
    """Exit with the refused setting's one line: uvicorn and celery would print a
    traceback around it, burying the line that says what to fix."""
    try:
        yield
    except BrokerSettingError as exc:
        raise SystemExit(f"ERROR: {exc}") from None


def configure_broker(celery_app: Celery, visibility_timeout: int) -> Broker:
    """Apply the settings of the broker ``celery_app`` uses and check its rules; call it
    after the ``jobs:`` YAML has reached the job classes, before anything is sent."""
    broker = broker_of(str(celery_app.conf.broker_url))
    if broker is Broker.REDIS:
        check_visibility_timeout(visibility_timeout, loaded_jobs())
    celery_app.conf.update(broker_settings(broker, visibility_timeout))
    return broker
