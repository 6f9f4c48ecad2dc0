"""``JobService`` whose ``dispatch()`` writes the broker message into the outbox.

It wraps loom's own ``CeleryJobService``: that builds the message (task id = job id,
``loom.job.<Job>``, the kwargs envelope with trace id and caller, queue, countdown,
priority, soft time limit, callback signatures) and hands it to the post-commit channel.
Here that hand-over is caught and the message becomes a row of the use case's own
transaction instead, so a rolled-back use case leaves nothing, and a committed one
cannot lose its job to a broker outage. The post-commit step only asks the relay to
publish that row now. ``run()`` is loom's, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from loom.celery.service import CeleryJobService, _PendingCeleryDispatch
from loom.core.engine.post_commit import (
    PostCommitAction,
    PostCommitChannel,
    bind_channel,
    reset_channel,
)
from loom.core.job.callback import JobCallback
from loom.core.job.context import add_pending_dispatch
from loom.core.job.handle import JobGroup, JobHandle
from loom.core.job.job import Job
from loom.core.repository.sqlalchemy.transactional import get_active_session

from {{ cookiecutter.package_name }}.outbox.relay import OutboxRelay, Publication

ResultT = TypeVar("ResultT")


class _Capture(PostCommitChannel):
    """A post-commit channel that keeps what is queued on it instead of running it."""

    __slots__ = ("captured",)

    def __init__(self) -> None:
        super().__init__()
        self.captured: list[PostCommitAction] = []

    def enqueue(self, action: PostCommitAction) -> None:
        self.captured.append(action)


def outbox_message(pending: _PendingCeleryDispatch) -> dict[str, Any]:
    """The ``send_task`` arguments of loom's pending dispatch, as JSON.

    A countdown becomes an eta fixed now, at commit time: a job delayed by a broker
    outage is not delayed again by its countdown once published.
    """
    eta = pending.eta
    if eta is None and pending.countdown:
        eta = datetime.now(UTC) + timedelta(seconds=pending.countdown)
    return {
        "kwargs": {
            "payload": pending.payload,
            "params": pending.params,
            "trace_id": pending.trace_id,
            "identity": pending.identity,
        },
        "eta": eta.isoformat() if eta else None,
        "priority": pending.priority,
        "soft_time_limit": pending.soft_time_limit,
        # Celery signatures are dicts; the relay turns them back into signatures.
        "link": dict(pending.link) if pending.link else None,
        "link_error": dict(pending.link_error) if pending.link_error else None,
    }


class OutboxJobService:
    """loom's ``CeleryJobService`` with every dispatch recorded in the outbox first."""

    def __init__(self, inner: CeleryJobService, relay: OutboxRelay) -> None:
        self._inner = inner
        self._relay = relay

    async def run(
        self,
        job_type: type[Job[ResultT]],
        *,
        params: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> ResultT:
        return await self._inner.run(job_type, params=params, payload=payload)

    def dispatch(
        self,
        job_type: type[Job[ResultT]],
        *,
        params: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
        on_success: type[JobCallback] | None = None,
        on_failure: type[JobCallback] | None = None,
        queue: str | None = None,
        countdown: int | None = None,
        priority: int | None = None,
        eta: datetime | None = None,
    ) -> JobHandle[ResultT]:
        capture = _Capture()
        token = bind_channel(capture)
        try:
            handle = self._inner.dispatch(
                job_type,
                params=params,
                payload=payload,
                on_success=on_success,
                on_failure=on_failure,
                queue=queue,
                countdown=countdown,
                priority=priority,
                eta=eta,
            )
        finally:
            reset_channel(token)
        (pending,) = capture.captured
        session = get_active_session()
        if session is None or not isinstance(pending, _PendingCeleryDispatch):
            # No transaction to join (a use case touching no repository): publish after
            # the call as loom does, with no outbox to fall back on.
            add_pending_dispatch(pending)
            return handle
        publication = Publication(
            pending.task_id, pending.task_name, pending.queue, outbox_message(pending)
        )
        session.add(
            self._relay.table(
                id=publication.job_id,
                task_name=publication.task_name,
                queue=publication.queue,
                message=publication.message,
                created_at=datetime.now(UTC),
            )
        )
        add_pending_dispatch(partial(self._relay.publish_soon, publication))
        return handle

    def dispatch_parallel(
        self,
        jobs: Sequence[tuple[type[Job[Any]], dict[str, Any]]],
        *,
        on_all_success: type[JobCallback] | None = None,
        on_any_failure: type[JobCallback] | None = None,
    ) -> JobGroup:
        if on_all_success is not None or on_any_failure is not None:
            raise NotImplementedError("dispatch_parallel() callbacks need Celery chords")
        return JobGroup(handles=tuple(self.dispatch(job, payload=body) for job, body in jobs))
