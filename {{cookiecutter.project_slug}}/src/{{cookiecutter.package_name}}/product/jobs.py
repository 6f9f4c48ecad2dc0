"""Background jobs of the product domain.

Routing (queue, retries, countdown, priority, timeout) is declared on the class as
ClassVars or in ``config/jobs.yaml``; the YAML wins. ``SyncProductToErpJob`` keeps
all of it in YAML to show that style.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from loom.core.command import Command
from loom.core.identity import Identity
from loom.core.job.job import Job
from loom.core.logger import get_logger
from loom.core.repository.abc import RepoFor
from loom.core.use_case import Caller, Input, LoadById

from {{ cookiecutter.package_name }}.product.model import Product, RestockNotification

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
        caller: Identity = Caller(),
    ) -> bool:
        # The dispatching caller travels with the job: the audit trail says who asked.
        _logger.info("restock email", product_id=product_id, requested_by=caller.subject)
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
