"""Background jobs of the product domain.

Routing (queue, retries, countdown, priority, timeout) is declared on the class as
ClassVars or in ``config/jobs.yaml``; the YAML wins. ``SyncProductToErpJob`` keeps
all of it in YAML to show that style.
"""

from __future__ import annotations

from loom.core.command import Command
from loom.core.identity import Identity
from loom.core.job.job import Job
from loom.core.logger import get_logger
from loom.core.use_case import Caller, Input, LoadById

from {{ cookiecutter.package_name }}.product.model import Product

_logger = get_logger(__name__)


class JobFailureRequestedError(RuntimeError):
    """Raised when a caller sets ``force_fail`` to exercise the failure path."""


class SendRestockEmailCommand(Command, frozen=True):
    recipient_email: str
    force_fail: bool = False


class SendRestockEmailJob(Job[bool]):
    """Email ``recipient_email`` that a product is out of stock; True when sent."""

    __queue__ = "notifications"
    __retries__ = 2
    __timeout__ = 30  # seconds; a stuck mail server must not hold a worker slot

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
        # A real service would call its mail gateway here.
        return product.stock == 0


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


class SyncProductToErpJob(Job[bool]):
    """Push a product to the ERP. Queue, retries, countdown and priority: ``config/jobs.yaml``."""

    async def execute(
        self,
        product_id: int,
        cmd: SyncProductToErpCommand = Input(),
        product: Product = LoadById(Product, by="product_id"),
    ) -> bool:
        if cmd.force_fail:
            raise JobFailureRequestedError(f"ERP sync of product {product.id} failed")
        return True
