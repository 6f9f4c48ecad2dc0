"""Job callbacks: record the outcome of a restock email on the product itself.

Callbacks run as their own Celery tasks (on ``task_default_queue``) after the job, or in
the API process with the in-process job service. They receive the dispatch payload as
``**context`` and reach the domain through ``ApplicationInvoker``, so the AutoCRUD use
cases must be compiled wherever callbacks run (every worker bootstrap here does that).
"""

from __future__ import annotations

from typing import Any

from loom.core.errors import NotFound
from loom.core.logger import get_logger
from loom.core.use_case.invoker import ApplicationInvoker

from {{ cookiecutter.package_name }}.product.model import CATEGORY_LENGTH, Product

NOTIFIED_SUFFIX = "-restock-notified"
FAILED_SUFFIX = "-restock-failed"

_logger = get_logger(__name__)


def tagged(category: str, suffix: str) -> str:
    """``category`` ending in ``suffix``, cut short where needed to fit the column: a
    callback must not fail on a category that was valid when it was written."""
    return category[: CATEGORY_LENGTH - len(suffix)] + suffix


async def tag_product_category(app: ApplicationInvoker, product_id: int, suffix: str) -> None:
    """Tag the product's category with ``suffix`` once; a deleted product is skipped."""
    products = app.entity(Product)
    try:
        product = await products.get(params={"id": product_id})
    except NotFound:  # loom 9 raises where older releases returned None
        return
    if product.category.endswith(suffix):  # a redelivered callback must not tag twice
        return
    # Before the write, so whoever sees the tag can already read why it was set.
    _logger.info("tagging product category", product_id=product_id, tag=suffix)
    await products.update(
        params={"id": product_id}, payload={"category": tagged(product.category, suffix)}
    )


class RestockEmailSuccessCallback:
    """Tags the category with ``-restock-notified`` when an email was actually sent."""

    def __init__(self, app: ApplicationInvoker) -> None:
        self._app = app

    async def on_success(self, job_id: str, result: Any, **context: Any) -> None:
        if result is True:
            await tag_product_category(self._app, int(context["product_id"]), NOTIFIED_SUFFIX)

    def on_failure(self, job_id: str, exc_type: str, exc_msg: str, **context: Any) -> None:
        """Failures are handled by :class:`RestockEmailFailureCallback`."""


class RestockEmailFailureCallback:
    """Tags the category with ``-restock-failed`` once the job has exhausted its retries."""

    def __init__(self, app: ApplicationInvoker) -> None:
        self._app = app

    def on_success(self, job_id: str, result: Any, **context: Any) -> None:
        """Successes are handled by :class:`RestockEmailSuccessCallback`."""

    async def on_failure(self, job_id: str, exc_type: str, exc_msg: str, **context: Any) -> None:
        await tag_product_category(self._app, int(context["product_id"]), FAILED_SUFFIX)
