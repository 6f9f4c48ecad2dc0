"""Everything the service registers, listed by hand: read when ``app.discovery.mode: manifest``.

Keep it in step with the modules list in ``config/base.yaml``; a test boots both. Jobs
added with ``make new-job`` come from the ``jobs`` package, which lists itself.
"""

from {{ cookiecutter.package_name }}.jobs import added_jobs
from {{ cookiecutter.package_name }}.outbox.model import OutboxEntry
from {{ cookiecutter.package_name }}.product.callbacks import (
    RestockEmailFailureCallback,
    RestockEmailSuccessCallback,
)
from {{ cookiecutter.package_name }}.product.interface import ProductInterface
from {{ cookiecutter.package_name }}.product.jobs import (
    BuildProductSummaryJob,
    LowStockSweepJob,
    SendRestockEmailJob,
    SyncProductToErpJob,
)
from {{ cookiecutter.package_name }}.product.model import Product, RestockNotification
from {{ cookiecutter.package_name }}.product.repository import ProductRepository
from {{ cookiecutter.package_name }}.product.use_cases import (
    BuildProductSummaryUseCase,
    DispatchRestockEmailUseCase,
    ListLowStockProductsUseCase,
    RestockWorkflowUseCase,
    RunLowStockSweepUseCase,
    SyncProductsToErpUseCase,
)

MODELS = [Product, RestockNotification, OutboxEntry]
REPOSITORIES = [ProductRepository]
USE_CASES = [
    ListLowStockProductsUseCase,
    DispatchRestockEmailUseCase,
    BuildProductSummaryUseCase,
    RestockWorkflowUseCase,
    SyncProductsToErpUseCase,
    RunLowStockSweepUseCase,
]
INTERFACES = [ProductInterface]
JOBS = [
    SendRestockEmailJob,
    BuildProductSummaryJob,
    SyncProductToErpJob,
    LowStockSweepJob,
    *added_jobs(),
]
CALLBACKS = [RestockEmailSuccessCallback, RestockEmailFailureCallback]
