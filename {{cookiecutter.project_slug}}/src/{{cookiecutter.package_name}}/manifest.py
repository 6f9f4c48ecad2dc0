"""Everything the service registers, listed by hand: read when ``app.discovery.mode: manifest``.

Keep it in step with the modules list in ``config/base.yaml``; a test boots both.
"""

from {{ cookiecutter.package_name }}.outbox.model import OutboxEntry
from {{ cookiecutter.package_name }}.product.callbacks import (
    RestockEmailFailureCallback,
    RestockEmailSuccessCallback,
)
from {{ cookiecutter.package_name }}.product.interface import ProductInterface
from {{ cookiecutter.package_name }}.product.jobs import (
    BuildProductSummaryJob,
    SendRestockEmailJob,
    SyncProductToErpJob,
)
from {{ cookiecutter.package_name }}.product.model import Product, RestockNotification
from {{ cookiecutter.package_name }}.product.use_cases import (
    BuildProductSummaryUseCase,
    DispatchRestockEmailUseCase,
    ListLowStockProductsUseCase,
    RestockWorkflowUseCase,
    SyncProductsToErpUseCase,
)

MODELS = [Product, RestockNotification, OutboxEntry]
USE_CASES = [
    ListLowStockProductsUseCase,
    DispatchRestockEmailUseCase,
    BuildProductSummaryUseCase,
    RestockWorkflowUseCase,
    SyncProductsToErpUseCase,
]
INTERFACES = [ProductInterface]
JOBS = [SendRestockEmailJob, BuildProductSummaryJob, SyncProductToErpJob]
CALLBACKS = [RestockEmailSuccessCallback, RestockEmailFailureCallback]
