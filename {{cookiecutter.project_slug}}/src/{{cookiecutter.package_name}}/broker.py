"""The broker behind Celery, told apart by its URL's scheme: its settings and its rules.

Redis and RabbitMQ differ in how a dead worker's jobs come back (Redis after the
visibility timeout, RabbitMQ as soon as the worker's connection drops) and in how
priorities work, so each gets its own settings. Any other broker is refused at start.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from loom.core.environment import Environment, resolve_environment
from loom.core.job.job import Job

from {{ cookiecutter.package_name }}.setting_error import SettingError


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


# Where kombu's in-process broker is allowed: it keeps messages in the process that
# sent them, so a deployed API's jobs would never reach a worker. An in-process cache
# likewise (cache.py): a worker's writes would never invalidate the API's entries.
IN_PROCESS_ENVIRONMENTS = frozenset({Environment.DEVELOPMENT, Environment.TEST})


def broker_of(url: str, environment: Environment) -> Broker:
    """The broker ``url`` points at, if ``environment`` may use it. Only the scheme is
    named in an error: the URL holds a password."""
    scheme = urlsplit(url).scheme
    allowed = {
        known: broker
        for known, broker in BROKER_SCHEMES.items()
        if broker is not Broker.MEMORY or environment in IN_PROCESS_ENVIRONMENTS
    }
    if scheme not in allowed:
        schemes = ", ".join(f"{known}://" for known in allowed)
        raise SettingError(
            f"CELERY_BROKER_URL (celery.broker_url) scheme {scheme!r} is not a supported "
            f"broker in {environment.value}: it must start with one of {schemes}"
        )
    return allowed[scheme]


# Redis gives a message held by a worker that died back to the queue after this many
# seconds. The rule: longer than the longest job's soft time limit plus its countdown
# (SendRestockEmailJob's 30 s here), or a slow or delayed job is handed to a second
# worker while the first still runs it. Shorter than that is refused at start; longer
# means a crashed worker's jobs wait longer before they run again. RabbitMQ has no such
# timeout: it redelivers as soon as the dead worker's connection drops.
DEFAULT_VISIBILITY_TIMEOUT = 600


def _jobs(base: type[Job[Any]] = Job) -> list[type[Job[Any]]]:
    return [job for sub in base.__subclasses__() for job in (sub, *_jobs(sub))]


def longest_hold() -> tuple[str, int, int]:
    """The job a worker may hold longest, as (name, soft time limit, countdown) in seconds.
    A job without a time limit counts its countdown alone (how long it runs has no bound);
    a job with neither is held only while it runs, and is left out."""
    holds = [
        (job.__name__, job.__timeout__ or 0, job.__countdown__ or 0)
        for job in _jobs()
        if job.__timeout__ or job.__countdown__
    ]
    return max(holds, key=lambda hold: hold[1] + hold[2], default=("no job", 0, 0))


def visibility_timeout() -> int:
    """``CELERY_VISIBILITY_TIMEOUT`` (seconds), else the default: set per deployment.

    Call it once the job classes carry their ``jobs:`` YAML, so the rule sees it.
    """
    raw = os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(DEFAULT_VISIBILITY_TIMEOUT))
    slowest, limit, countdown = longest_hold()
    rule = (
        "must be whole seconds longer than the longest job's soft time limit plus its "
        f"countdown ({slowest}: {limit} s + {countdown} s)"
    )
    try:
        seconds = int(raw)
    except ValueError:
        raise SettingError(f"CELERY_VISIBILITY_TIMEOUT={raw!r}: {rule}") from None
    if seconds <= limit + countdown:
        raise SettingError(f"CELERY_VISIBILITY_TIMEOUT={seconds}: {rule}")
    return seconds


def broker_settings(broker: Broker, timeout: int) -> dict[str, Any]:
    """Celery settings that depend on the broker."""
    if broker is Broker.REDIS:
        return {
            "broker_transport_options": {
                "visibility_timeout": timeout,
                # An unreachable broker fails a publish in about a second, not the OS's minutes.
                "socket_connect_timeout": 1,
            }
        }
    if broker is Broker.MEMORY:
        return {}
    # The API and the worker declare each queue with the same arguments; RabbitMQ refuses
    # a second declaration that differs, so both processes take these settings.
    return {
        "task_queue_max_priority": MAX_PRIORITY,
        "task_default_priority": DEFAULT_PRIORITY,
        # As for Redis: an unreachable broker fails a publish in a second (Celery's 4 s
        # default would outlast the outbox's 3 s hand-over to the relay).
        "broker_connection_timeout": 1,
    }


def configure_broker(celery_app: Celery) -> Broker:
    """Apply the settings of the broker ``celery_app`` uses and check its rules; call it
    after the ``jobs:`` YAML has reached the job classes, before anything is sent."""
    broker = broker_of(str(celery_app.conf.broker_url), resolve_environment())
    # kombu's in-process broker stands in for Redis in the tests, so the rule holds there too.
    timeout = 0 if broker is Broker.RABBITMQ else visibility_timeout()
    celery_app.conf.update(broker_settings(broker, timeout))
    return broker
