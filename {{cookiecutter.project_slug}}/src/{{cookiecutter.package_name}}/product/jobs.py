"""Background jobs of the product domain.

Routing (queue, retries, countdown, priority, timeout) is declared on the class as
ClassVars or in ``config/jobs.yaml``; the YAML wins. ``SyncProductToErpJob`` keeps
all of it in YAML to show that style. ``LowStockSweepJob`` is started by the schedule
(``config/schedule.yaml``), not by a request.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Annotated

import msgspec
from loom.core.command import Command
from loom.core.job.handle import JobHandle
from loom.core.job.job import Job
from loom.core.job.service import JobService
from loom.core.logger import get_logger
from loom.core.repository.abc import RepoFor
from loom.core.repository.abc.query import (
    FilterGroup,
    FilterOp,
    FilterSpec,
    PageResult,
    QuerySpec,
    SortSpec,
)
from loom.core.use_case import Input, LoadById

from {{ cookiecutter.package_name }}.product.callbacks import (
    RestockEmailFailureCallback,
    RestockEmailSuccessCallback,
)
from {{ cookiecutter.package_name }}.product.model import (
    NonNegativeInt4,
    Product,
    RestockNotification,
)

_logger = get_logger(__name__)


class JobFailureRequestedError(RuntimeError):
    """Raised when a caller sets ``force_fail`` to exercise the failure path."""


class SendRestockEmailCommand(Command, frozen=True):
    recipient_email: str
    # One per dispatch, made by the dispatcher: what makes a redelivery recognisable.
    notification_key: str
    force_fail: bool = False


class SendRestockEmailJob(Job[bool]):
    """Email ``recipient_email`` that a product is out of stock; True when sent.

    Idempotent: the email is recorded under the dispatch's ``notification_key`` in the
    same transaction, so the same message delivered twice sends one email.
    """

    __queue__ = "notifications"
    __retries__ = 2
    __timeout__ = 30  # seconds; a stuck mail server must not hold a worker slot

    def __init__(self, notifications: RepoFor[RestockNotification]) -> None:
        self._notifications = notifications

    async def execute(
        self,
        product_id: int,
        cmd: SendRestockEmailCommand = Input(),
        product: Product = LoadById(Product, by="product_id"),
    ) -> bool:
        # Every line a job logs carries the dispatching caller (observability.py binds it).
        _logger.info("restock email", product_id=product_id)
        if cmd.force_fail:
            raise JobFailureRequestedError(f"restock email for product {product_id} failed")
        if await self._notifications.get_by_id(cmd.notification_key) is not None:
            _logger.info("restock email already sent", key=cmd.notification_key)
            return True
        if product.stock != 0:
            return False
        # A real service would call its mail gateway here, then record the email: a
        # crash between the two resends it once, the best a gateway without its own
        # idempotency key allows.
        await self._notifications.create(
            RestockNotification(
                key=cmd.notification_key,
                product_id=product_id,
                recipient_email=cmd.recipient_email,
                sent_at=datetime.now(UTC),
            )
        )
        _logger.info("restock email sent", product_id=product_id, key=cmd.notification_key)
        return True


class BuildProductSummaryJob(Job[str]):
    """Describe a product in one line for dashboards."""

    __queue__ = "analytics"
    __retries__ = 1

    async def execute(
        self,
        product_id: int,
        product: Product = LoadById(Product, by="product_id"),
    ) -> str:
        price = f"{product.price_cents / 100:.2f}"
        stock = f"{product.stock} in stock at {price}"
        return f"{product.name} ({product.sku}) in {product.category}: {stock}"


class SyncProductToErpCommand(Command, frozen=True):
    force_fail: bool = False
    # A slow ERP, on purpose: the crash tests kill a worker in the middle of this job.
    hold_seconds: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0


class SyncProductToErpJob(Job[bool]):
    """Push a product to the ERP. Routing and time limit: ``config/jobs.yaml`` only.

    Idempotent by nature: it sends the product's current state, so a second delivery
    sends the same state again.
    """

    async def execute(
        self,
        product_id: int,
        cmd: SyncProductToErpCommand = Input(),
        product: Product = LoadById(Product, by="product_id"),
    ) -> bool:
        if cmd.force_fail:
            raise JobFailureRequestedError(f"ERP sync of product {product.id} failed")
        await asyncio.sleep(cmd.hold_seconds)
        return True


def dispatch_restock_email(
    jobs: JobService,
    product_id: int,
    *,
    recipient_email: str,
    notification_key: str,
    force_fail: bool = False,
) -> JobHandle[bool]:
    """Queue the restock email with both outcome callbacks; sent only if the caller commits.

    The one way to ask for a restock email, from a request or from the sweep alike.
    """
    return jobs.dispatch(
        SendRestockEmailJob,
        params={"product_id": product_id},
        payload={
            "product_id": product_id,
            "recipient_email": recipient_email,
            "notification_key": notification_key,
            "force_fail": force_fail,
        },
        on_success=RestockEmailSuccessCallback,
        on_failure=RestockEmailFailureCallback,
    )


# The namespace of the sweep's notification keys (any fixed UUID; changing it resends).
SWEEP_KEY_NAMESPACE = uuid.UUID("5f0c8e9a-3b1d-4c52-9a7e-2d6b1f4e8c30")


def daily_notification_key(product_id: int, day: date) -> str:
    """The same key for one product all day: however many sweeps ask that day, the
    email job records the first and skips the others. A UUID, so it fits the column."""
    return str(uuid.uuid5(SWEEP_KEY_NAMESPACE, f"low-stock/{product_id}/{day.isoformat()}"))


class LowStockSweepCommand(Command, frozen=True, forbid_unknown_fields=True):
    # Who orders new stock; the schedule's payload names them per deployment.
    recipient_email: str = "purchasing@example.com"
    # SendRestockEmailJob emails only for an empty shelf, so 0 asks for exactly the
    # products that get an email; a higher level dispatches jobs that look again and
    # send nothing until the shelf is empty.
    max_stock: NonNegativeInt4 = 0


# Products read per query: one page of dispatches at a time, whatever the catalogue's size.
SWEEP_PAGE = 100


class LowStockSweepJob(Job[int]):
    """Ask for a restock email for every product at or below ``max_stock``; returns how
    many were asked for.

    Periodic (config/schedule.yaml). Each email goes through ``dispatch_restock_email``
    with a key per product per day, so it is sent once a day however often the sweep
    runs, and a sweep whose dispatches were lost is made good by the next one.
    """

    def __init__(self, products: RepoFor[Product], job_service: JobService) -> None:
        self._products = products
        self._jobs = job_service

    async def execute(self, cmd: LowStockSweepCommand = Input()) -> int:
        today = datetime.now(UTC).date()
        asked = 0
        page = 1
        while True:
            result = await self._products.list_with_query(_low_stock_page(cmd.max_stock, page))
            assert isinstance(result, PageResult)  # QuerySpec defaults to offset pagination
            for product in result.items:
                dispatch_restock_email(
                    self._jobs,
                    product.id,
                    recipient_email=cmd.recipient_email,
                    notification_key=daily_notification_key(product.id, today),
                )
            asked += len(result.items)
            if not result.has_next:
                break
            page += 1
        _logger.info("low-stock sweep", products=asked, max_stock=cmd.max_stock)
        return asked


def _low_stock_page(max_stock: NonNegativeInt4, page: int) -> QuerySpec:
    return QuerySpec(
        filters=FilterGroup(filters=(FilterSpec(field="stock", op=FilterOp.LTE, value=max_stock),)),
        sort=(SortSpec(field="id"),),
        limit=SWEEP_PAGE,
        page=page,
    )
