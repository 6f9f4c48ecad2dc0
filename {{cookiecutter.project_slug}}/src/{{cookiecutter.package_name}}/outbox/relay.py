"""Publishing outbox rows: right after each commit, and by a relay loop for what that missed.

The relay runs inside every API process (started by the app's lifespan) rather than as a
compose service of its own: the API is the only process that writes outbox rows, its
restart policy brings it back after a crash (and the relay publishes what the crashed
process committed), and N API replicas share the work without a coordinator because
each pass locks the rows it takes (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), as the
publish after a commit locks its own row. One service fewer to deploy, watch and scale.

Publishing is a synchronous ``send_task``; it runs on one thread of its own so that a
slow or unreachable broker never holds the event loop, and so every request keeps
answering while the broker is down.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any, cast
from weakref import WeakKeyDictionary

from celery import Celery
from loom.core.backend.sqlalchemy import compile_model
from loom.core.repository.sqlalchemy.session_manager import SessionManager
from sqlalchemy import CursorResult, Result, delete, func, select, update

from {{ cookiecutter.package_name }}.outbox.model import OutboxEntry
from {{ cookiecutter.package_name }}.outbox.settings import OutboxSettings

logger = logging.getLogger(__name__)

# Rows per relay transaction: bounds how long a pass holds its row locks.
BATCH = 100
# The relay leaves rows younger than this (seconds) to the publish right after their
# commit, which takes milliseconds with the broker up and gives up within about two
# seconds with it down. Correctness does not rest on it (both paths lock the row they
# publish); it only keeps the relay from queueing behind a publish already under way.
FAST_PATH_GRACE = 3.0
PRUNE_EVERY = 60.0  # seconds
SHUTDOWN_GRACE = 5.0  # seconds the publishes in flight get at shutdown


@dataclass(frozen=True)
class Publication:
    """What ``send_task`` needs of a row, copied off the ORM object for the publishing thread."""

    job_id: str
    task_name: str
    queue: str
    message: dict[str, Any]

    @classmethod
    def of(cls, row: Any) -> Publication:
        return cls(row.id, row.task_name, row.queue, row.message)


def publish(celery_app: Celery, publication: Publication) -> None:
    """Replay the ``send_task`` call loom's own dispatch would have made."""
    message = publication.message
    eta = message["eta"]
    link, link_error = message["link"], message["link_error"]
    celery_app.send_task(
        publication.task_name,
        kwargs=message["kwargs"],
        task_id=publication.job_id,
        queue=publication.queue,
        eta=datetime.fromisoformat(eta) if eta else None,
        priority=message["priority"],
        soft_time_limit=message["soft_time_limit"],
        link=celery_app.signature(link) if link else None,
        link_error=celery_app.signature(link_error) if link_error else None,
    )


class BrokerUnavailableError(RuntimeError):
    """A publish failed; the rows not yet published stay pending."""


def _aware(moment: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class OutboxRelay:
    """Publishes pending outbox rows, marks them sent, prunes old sent rows."""

    def __init__(self, celery_app: Celery, sessions: SessionManager, settings: OutboxSettings):
        self.table: Any = compile_model(OutboxEntry)
        self._celery_app = celery_app
        self._sessions = sessions
        self._settings = settings
        self._publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-publish")
        # One publish after a commit at a time, as there is one publishing thread: the
        # others wait here, not holding a database connection and a row lock meanwhile.
        # One per event loop: a Celery worker runs each task in a loop of its own.
        self._turns: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            WeakKeyDictionary()
        )
        self._background: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        # While the broker is known to be down, commits skip their own attempt: the
        # relay's next pass publishes them, and requests pay no failing connect.
        self._skip_fast_path_until = 0.0
        self._next_prune = 0.0

    def publish_soon(self, publication: Publication) -> None:
        """After a commit: publish in the background; the request does not wait."""
        if monotonic() < self._skip_fast_path_until:
            return
        task = asyncio.get_running_loop().create_task(self._publish_committed(publication))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish_committed(self, publication: Publication) -> None:
        loop = asyncio.get_running_loop()
        table = self.table
        # Marking first takes the row's lock for the whole publish: a relay pass skips
        # the row meanwhile, and if a relay holds or has sent it, nothing is marked here
        # and nothing is published twice. A failed publish rolls the mark back.
        mark = (
            update(table)
            .where(table.id == publication.job_id, table.sent_at.is_(None))
            .values(sent_at=datetime.now(UTC))
        )
        try:
            async with (
                self._turn(),
                self._sessions.session() as session,
                session.begin(),
            ):
                if _rows_affected(await session.execute(mark)) != 1:
                    return
                await loop.run_in_executor(self._publisher, publish, self._celery_app, publication)
        except Exception as exc:  # left pending: the relay's next pass retries it
            self._skip_fast_path_until = monotonic() + self._settings.relay_max_backoff
            logger.warning(
                "outbox: job %s left for the relay: %s", publication.job_id, _first_line(exc)
            )

    def _turn(self) -> asyncio.Lock:
        return self._turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())

    async def publish_pending(self) -> int:
        """Publish every pending row, oldest first; the number published."""
        published = 0
        while True:
            count = await self._publish_batch()
            published += count
            if count < BATCH:
                return published

    async def _publish_batch(self) -> int:
        table = self.table
        settled = datetime.now(UTC) - timedelta(seconds=FAST_PATH_GRACE)
        query = (
            select(table)
            .where(table.sent_at.is_(None), table.created_at < settled)
            .order_by(table.created_at)
            .limit(BATCH)
            # Rows another relay holds are skipped: each row is published by one relay.
            .with_for_update(skip_locked=True)
        )
        loop = asyncio.get_running_loop()
        failure: Exception | None = None
        published = 0
        async with self._sessions.session() as session, session.begin():
            for row in (await session.scalars(query)).all():
                publication = Publication.of(row)
                try:
                    await loop.run_in_executor(
                        self._publisher, publish, self._celery_app, publication
                    )
                except Exception as exc:
                    failure = exc
                    break  # keep what was published: the commit below marks it
                row.sent_at = datetime.now(UTC)
                published += 1
        if failure is not None:
            raise BrokerUnavailableError(_first_line(failure)) from failure
        return published

    async def publication(self, job_id: str) -> Publication | None:
        """The recorded message of ``job_id``, sent or not (for operators replaying one)."""
        async with self._sessions.session() as session:
            row = await session.get(self.table, job_id)
        return None if row is None else Publication.of(row)

    async def prune(self) -> int:
        """Delete rows sent longer ago than the retention; the number deleted."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self._settings.retention)
        async with self._sessions.session() as session, session.begin():
            result = await session.execute(delete(self.table).where(self.table.sent_at < cutoff))
        return _rows_affected(result)

    async def backlog(self) -> dict[str, Any]:
        """Pending rows and the age in seconds of the oldest, for ``/health``."""
        table = self.table
        query = select(func.count(), func.min(table.created_at)).where(table.sent_at.is_(None))
        async with self._sessions.session() as session:
            count, oldest = (await session.execute(query)).one()
        age = (datetime.now(UTC) - _aware(oldest)).total_seconds() if oldest else 0.0
        return {"pending": int(count), "oldestPendingSeconds": round(age, 3)}

    async def run(self) -> None:
        """Relay until cancelled; while the broker is down, wait twice as long each time
        up to ``relay_max_backoff``."""
        settings = self._settings
        delay = settings.relay_interval
        while True:
            try:
                published = await self.publish_pending()
                if published:
                    logger.info("outbox: relay published %d pending job(s)", published)
                self._skip_fast_path_until = 0.0
                delay = settings.relay_interval
                if monotonic() >= self._next_prune:
                    await self.prune()
                    self._next_prune = monotonic() + PRUNE_EVERY
            except Exception as exc:
                delay = min(delay * 2, settings.relay_max_backoff)
                self._skip_fast_path_until = monotonic() + delay
                logger.warning("outbox: relay retrying in %.1f s: %s", delay, _first_line(exc))
            await asyncio.sleep(delay)

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop relaying; publishes in flight get a moment to finish, and whatever they
        miss stays pending for the next start."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._background:
            _, unfinished = await asyncio.wait(self._background, timeout=SHUTDOWN_GRACE)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        self._publisher.shutdown(wait=False)


def _rows_affected(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def _first_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0]
