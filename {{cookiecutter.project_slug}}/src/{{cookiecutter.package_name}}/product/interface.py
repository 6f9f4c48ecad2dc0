"""HTTP routes of the product domain: AutoCRUD plus the job endpoints."""

from __future__ import annotations

from loom.rest.model import RestInterface, RestRoute

from {{ cookiecutter.package_name }}.auth import READ_ROLES, WRITE_ROLES, writes_need_writer
from {{ cookiecutter.package_name }}.loom_fixes import constrained_auto_routes
from {{ cookiecutter.package_name }}.product.model import Product
from {{ cookiecutter.package_name }}.product.use_cases import (
    BuildProductSummaryUseCase,
    DispatchRestockEmailUseCase,
    ListLowStockProductsUseCase,
    RestockWorkflowUseCase,
    RunLowStockSweepUseCase,
    SyncProductsToErpUseCase,
)


class ProductInterface(RestInterface[Product]):
    prefix = "/products"
    tags = ("Products",)
    # Reads need either role; every route that changes something or dispatches a job
    # needs writer (config/production.yaml turns authentication on).
    requires_roles = READ_ROLES
    # List queries must name their fields; anything else is a 400 unsupported_query.
    filterable = ("sku", "category", "stock", "price_cents")
    sortable = ("id", "name", "stock", "price_cents", "created_at")
    # Fixed paths come before the AutoCRUD "/{id}" routes so they are matched first.
    routes = (
        RestRoute(
            use_case=ListLowStockProductsUseCase,
            method="GET",
            path="/low-stock",
            summary="Products at or below a stock level",
        ),
        RestRoute(
            use_case=SyncProductsToErpUseCase,
            method="POST",
            path="/jobs/sync-erp",
            requires_roles=WRITE_ROLES,
            summary="Queue one ERP sync job per product",
            status_code=202,
        ),
        RestRoute(
            use_case=RunLowStockSweepUseCase,
            method="POST",
            path="/jobs/low-stock-sweep",
            requires_roles=WRITE_ROLES,
            summary="Run the scheduled low-stock sweep now (emails at most once a day each)",
            status_code=202,
        ),
        RestRoute(
            use_case=DispatchRestockEmailUseCase,
            method="POST",
            path="/{product_id}/jobs/restock-email",
            requires_roles=WRITE_ROLES,
            summary="Queue the restock email (sent only when stock is 0)",
            status_code=202,
        ),
        RestRoute(
            use_case=BuildProductSummaryUseCase,
            method="GET",
            path="/{product_id}/jobs/summary",
            summary="Build the product summary now, in the API process",
        ),
        RestRoute(
            use_case=RestockWorkflowUseCase,
            method="POST",
            path="/{product_id}/workflows/restock",
            requires_roles=WRITE_ROLES,
            summary="Build the summary, then queue the restock email",
            status_code=202,
        ),
        # AutoCRUD's create and update inputs, with the constraints declared on Product.
        *writes_need_writer(constrained_auto_routes(Product)),
    )
