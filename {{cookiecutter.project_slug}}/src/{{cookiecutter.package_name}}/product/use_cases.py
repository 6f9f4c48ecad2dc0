"""Product use cases beyond AutoCRUD: a typed query, and the three ways to use jobs.

``JobService.dispatch`` queues a job for after the unit of work commits (nothing is sent
if the use case fails); ``JobService.run`` executes a job here and now and returns its
result; ``ApplicationInvoker.invoke`` chains one use case from another.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from loom.core.command import Command
from loom.core.errors import NotFound
from loom.core.job.service import JobService
from loom.core.repository.abc import RepoFor
from loom.core.repository.abc.query import (
    FilterGroup,
    FilterOp,
    FilterSpec,
    PageResult,
    QuerySpec,
    SortSpec,
)
from loom.core.use_case import F, Input, LoadById, Query, Rule
from loom.core.use_case.invoker import ApplicationInvoker
from loom.core.use_case.use_case import UseCase

from {{ cookiecutter.package_name }}.product.jobs import (
    BuildProductSummaryJob,
    LowStockSweepJob,
    SyncProductToErpJob,
    dispatch_restock_email,
)
from {{ cookiecutter.package_name }}.product.model import (
    EMAIL_LENGTH,
    INT4_MAX,
    NonNegativeInt4,
    Product,
)

ProductId = Annotated[int, msgspec.Meta(ge=1, le=INT4_MAX)]
# Deliberately loose: the mail gateway is the judge of deliverability.
Email = Annotated[str, msgspec.Meta(max_length=EMAIL_LENGTH, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]


class LowStockQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_stock: NonNegativeInt4 = 5
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20


class ListLowStockProductsUseCase(UseCase[Product, PageResult[Product]]):
    """Products with ``stock <= max_stock``, emptiest first."""

    async def execute(self, query: LowStockQuery = Query()) -> PageResult[Product]:
        spec = QuerySpec(
            filters=FilterGroup(
                filters=(FilterSpec(field="stock", op=FilterOp.LTE, value=query.max_stock),)
            ),
            sort=(SortSpec(field="stock"), SortSpec(field="id")),
            limit=query.limit,
        )
        result = await self.main_repo.list_with_query(spec)
        assert isinstance(result, PageResult)  # QuerySpec defaults to offset pagination
        return result


class DispatchRestockEmailCommand(Command, frozen=True, forbid_unknown_fields=True):
    recipient_email: Email
    force_fail: bool = False


class JobAccepted(Command, frozen=True):
    job_id: str
    queue: str


def accept_restock_email(
    jobs: JobService, product_id: int, cmd: DispatchRestockEmailCommand
) -> JobAccepted:
    """Queue the restock email a caller asked for: a fresh key, so each request is one email."""
    handle = dispatch_restock_email(
        jobs,
        product_id,
        recipient_email=cmd.recipient_email,
        notification_key=str(uuid.uuid4()),
        force_fail=cmd.force_fail,
    )
    return JobAccepted(job_id=handle.job_id, queue=handle.queue)


class DispatchRestockEmailUseCase(UseCase[Product, JobAccepted]):
    """``POST /products/{product_id}/jobs/restock-email``: fire and forget."""

    def __init__(self, job_service: JobService) -> None:
        self._jobs = job_service

    async def execute(
        self,
        product_id: int,
        cmd: DispatchRestockEmailCommand = Input(),
        product: Product = LoadById(Product, by="product_id"),
    ) -> JobAccepted:
        return accept_restock_email(self._jobs, product.id, cmd)


class ProductSummary(Command, frozen=True):
    product_id: int
    summary: str


class BuildProductSummaryUseCase(UseCase[Product, ProductSummary]):
    """``GET /products/{product_id}/jobs/summary``: runs the job in this process."""

    def __init__(self, job_service: JobService) -> None:
        self._jobs = job_service

    async def execute(self, product_id: int) -> ProductSummary:
        summary = await self._jobs.run(BuildProductSummaryJob, params={"product_id": product_id})
        return ProductSummary(product_id=product_id, summary=summary)


class RestockWorkflowAccepted(Command, frozen=True):
    summary: str
    job_id: str
    queue: str


class RestockWorkflowUseCase(UseCase[Product, RestockWorkflowAccepted]):
    """``POST /products/{product_id}/workflows/restock``: summary use case, then the email job."""

    def __init__(self, app: ApplicationInvoker, job_service: JobService) -> None:
        self._app = app
        self._jobs = job_service

    async def execute(
        self,
        product_id: int,
        cmd: DispatchRestockEmailCommand = Input(),
    ) -> RestockWorkflowAccepted:
        summary: ProductSummary = await self._app.invoke(
            BuildProductSummaryUseCase, params={"product_id": product_id}
        )
        accepted = accept_restock_email(self._jobs, product_id, cmd)
        return RestockWorkflowAccepted(
            summary=summary.summary, job_id=accepted.job_id, queue=accepted.queue
        )


class SyncProductsToErpCommand(Command, frozen=True, forbid_unknown_fields=True):
    # One request, one transaction: a bound keeps it short.
    product_ids: Annotated[list[ProductId], msgspec.Meta(max_length=100)]
    force_fail: bool = False
    # Seconds each sync pretends the ERP takes (for crash tests; under its 20 s limit).
    hold_seconds: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0


def _at_least_one_product(product_ids: list[int]) -> str | None:
    return None if product_ids else "must name at least one product"


class ErpSyncAccepted(Command, frozen=True):
    job_ids: list[str]
    queue: str


class SyncProductsToErpUseCase(UseCase[Product, ErpSyncAccepted]):
    """``POST /products/jobs/sync-erp``: one job per product, all or nothing.

    An unknown id fails the request with 404 part-way through the loop; dispatches wait
    for the commit, so none of the jobs queued before it is sent.
    """

    rules = (Rule.check(F(SyncProductsToErpCommand).product_ids, via=_at_least_one_product),)

    def __init__(self, products: RepoFor[Product], job_service: JobService) -> None:
        self._products = products
        self._jobs = job_service

    async def execute(self, cmd: SyncProductsToErpCommand = Input()) -> ErpSyncAccepted:
        handles = []
        for product_id in cmd.product_ids:
            if await self._products.get_by_id(product_id) is None:
                raise NotFound("Product", id=product_id)
            handles.append(
                self._jobs.dispatch(
                    SyncProductToErpJob,
                    params={"product_id": product_id},
                    payload={"force_fail": cmd.force_fail, "hold_seconds": cmd.hold_seconds},
                )
            )
        return ErpSyncAccepted(job_ids=[h.job_id for h in handles], queue=handles[0].queue)


class LowStockSweepAccepted(Command, frozen=True):
    job_id: str
    queue: str


class RunLowStockSweepUseCase(UseCase[Product, LowStockSweepAccepted]):
    """``POST /products/jobs/low-stock-sweep``: the scheduled sweep, now, with its defaults.

    For an operator who cannot wait for the next tick; the daily keys make it harmless.
    """

    def __init__(self, job_service: JobService) -> None:
        self._jobs = job_service

    async def execute(self) -> LowStockSweepAccepted:
        handle = self._jobs.dispatch(LowStockSweepJob, payload={})
        return LowStockSweepAccepted(job_id=handle.job_id, queue=handle.queue)
