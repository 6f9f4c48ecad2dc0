"""The bare Celery baseline: one task doing the job round trip's database work by hand.

The service's restock email ends in a callback that reads the product and tags its
category (a SELECT and an UPDATE); this task does exactly that and nothing else, on the
same driver (asyncpg through SQLAlchemy) and broker, so the difference to the service's
round trip is what loom's job machinery costs. Results are ignored: a bare task needs
no result backend.
"""

from __future__ import annotations

import asyncio
import os

from celery import Celery
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

QUEUE = "bench_baseline"
TASK = "bench.tag_product"
SUFFIX = "-restock-notified"

celery_app = Celery("bench_baseline", broker=os.environ.get("CELERY_BROKER_URL"))
celery_app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    # The service's worker settings (config/worker.yaml): fair dispatch, acks after the job.
    worker_prefetch_multiplier=1,
    task_acks_late=True,
)

# One event loop and engine per worker child, made on its first task (after the fork).
_loop: asyncio.AbstractEventLoop | None = None
_engine: AsyncEngine | None = None


async def _tag(product_id: int) -> None:
    assert _engine is not None
    async with _engine.begin() as connection:
        found = await connection.execute(
            text("SELECT category FROM products WHERE id = :id"), {"id": product_id}
        )
        category = found.scalar_one_or_none()
        if category is None or category.endswith(SUFFIX):
            return
        await connection.execute(
            text("UPDATE products SET category = :category, updated_at = now() WHERE id = :id"),
            {"id": product_id, "category": category + SUFFIX},
        )


@celery_app.task(name=TASK)  # type: ignore[untyped-decorator]
def tag_product(product_id: int) -> None:
    global _loop, _engine
    if _loop is None:
        _loop = asyncio.new_event_loop()
        _engine = create_async_engine(os.environ["DATABASE_URL"])
    _loop.run_until_complete(_tag(product_id))
