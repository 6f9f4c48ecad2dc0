"""The outbox row: one broker message waiting to be published, or published.

A loom model like the domain's, so ``create_all`` and alembic (through loom's compiled
metadata) see the table; the service reaches it through SQLAlchemy directly because it
writes inside another use case's transaction and locks rows, which repositories do not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loom.core.model import BaseModel, ColumnField

# The job id, a UUID: the Celery task id the API returns as ``jobId``.
JOB_ID_LENGTH = 36
TASK_NAME_LENGTH = 200
QUEUE_LENGTH = 100


class OutboxEntry(BaseModel):
    """A job's broker message; ``sent_at`` is empty until the broker has accepted it."""

    __tablename__ = "outbox"

    id: str = ColumnField(primary_key=True, length=JOB_ID_LENGTH)
    task_name: str = ColumnField(length=TASK_NAME_LENGTH)
    queue: str = ColumnField(length=QUEUE_LENGTH)
    # The send_task arguments: kwargs envelope, eta, priority, soft time limit, callbacks.
    message: dict[str, Any] = ColumnField()
    created_at: datetime = ColumnField(index=True)
    # Indexed: the relay looks for the empty ones, pruning for the old ones.
    sent_at: datetime | None = ColumnField(default=None, index=True)
