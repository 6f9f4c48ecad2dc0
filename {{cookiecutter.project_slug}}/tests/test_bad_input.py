"""Bad input gets a 4xx whose structured body names the problem; never a 500."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from loom.core.backend.sqlalchemy import compile_model

from {{ cookiecutter.package_name }}.product.model import (
    CATEGORY_LENGTH,
    INT4_MAX,
    NAME_LENGTH,
    SKU_LENGTH,
    Category,
    Name,
    Product,
    RestockNotification,
    Sku,
)
from {{ cookiecutter.package_name }}.product.use_cases import Email

from tests.conftest import ProductFactory

VALID = {"sku": "KET-1", "name": "Kettle", "category": "kitchen", "priceCents": 2599, "stock": 0}
JSON = {"content-type": "application/json"}
BODY_ROUTES = [
    ("POST", "/products/"),
    ("PATCH", "/products/1"),
    ("POST", "/products/jobs/sync-erp"),
    ("POST", "/products/1/jobs/restock-email"),
    ("POST", "/products/1/workflows/restock"),
]


def assert_error(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    detail: dict[str, Any] = response.json()["detail"]
    assert detail["code"] == code
    assert detail["message"]
    assert detail["trace_id"]
    return detail


def violated_field(response: Response) -> str:
    detail = assert_error(response, 422, "boundary_validation")
    field: str = detail["violations"][0]["field"]
    return field


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_missing_body_is_a_422_naming_the_body(client: TestClient, method: str, path: str) -> None:
    assert violated_field(client.request(method, path, headers=JSON)) == "body"


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_body_that_is_not_json_is_unsupported(client: TestClient, method: str, path: str) -> None:
    response = client.request(
        method, path, content=b"sku=1", headers={"content-type": "text/plain"}
    )

    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"42"])
def test_body_that_is_not_a_json_object_is_malformed(client: TestClient, body: bytes) -> None:
    assert_error(client.post("/products/", content=body, headers=JSON), 400, "malformed_json")


def test_missing_field_is_named(client: TestClient) -> None:
    body = {key: value for key, value in VALID.items() if key != "name"}

    assert violated_field(client.post("/products/", json=body)) == "name"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stock", "plenty"),
        ("priceCents", 10**30),
        ("priceCents", INT4_MAX + 1),
        ("stock", -1),
        ("priceCents", -1),
        ("sku", "x" * (SKU_LENGTH + 1)),
        ("name", "x" * (NAME_LENGTH + 1)),
        ("category", "x" * (CATEGORY_LENGTH + 1)),
        ("sku", ""),
        ("name", "nul\u0000byte"),
    ],
)
def test_field_breaking_its_rule_is_named(client: TestClient, field: str, value: object) -> None:
    assert violated_field(client.post("/products/", json=VALID | {field: value})) == field


def test_unknown_field_is_refused_not_ignored(client: TestClient) -> None:
    assert violated_field(client.post("/products/", json=VALID | {"price": 5})) == "price"


def test_unknown_field_in_a_patch_is_refused(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product()

    response = client.patch(f"/products/{product['id']}", json={"stok": 3})

    assert violated_field(response) == "stok"


def test_longest_valid_values_are_stored(client: TestClient) -> None:
    body = VALID | {"sku": "s" * SKU_LENGTH, "category": "c" * CATEGORY_LENGTH, "stock": INT4_MAX}

    assert client.post("/products/", json=body).status_code == 201


def test_duplicate_sku_is_a_conflict_naming_the_field(
    client: TestClient, create_product: ProductFactory
) -> None:
    create_product(sku="KET-1")

    detail = assert_error(client.post("/products/", json=VALID), 409, "conflict")

    assert detail["field"] == "sku"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/products/999"),
        ("PATCH", "/products/999"),
        ("DELETE", "/products/999"),
        ("GET", "/products/999/jobs/summary"),
        ("POST", "/products/999/jobs/restock-email"),
        ("POST", "/products/999/workflows/restock"),
    ],
)
def test_unknown_product_is_not_found(client: TestClient, method: str, path: str) -> None:
    body = {"stock": 1} if method == "PATCH" else {"recipientEmail": "buyer@example.com"}

    response = client.request(method, path, json=body if method in {"PATCH", "POST"} else None)

    assert assert_error(response, 404, "not_found")["id"] == 999


def test_unknown_product_in_erp_sync_is_not_found(client: TestClient) -> None:
    assert_error(
        client.post("/products/jobs/sync-erp", json={"productIds": [999]}), 404, "not_found"
    )


def test_id_past_the_integer_column_is_refused(client: TestClient) -> None:
    assert_error(client.get(f"/products/{2**70}"), 422, "boundary_validation")


def test_non_integer_path_id_is_rejected(client: TestClient) -> None:
    detail = assert_error(
        client.post("/products/abc/jobs/restock-email", json={"recipientEmail": "a@b.c"}),
        422,
        "rule_violations",
    )

    assert detail["violations"][0]["field"] == "path.product_id"


def test_invalid_query_parameter_is_named(client: TestClient) -> None:
    detail = assert_error(
        client.get("/products/low-stock", params={"max_stock": -1}), 400, "query_validation"
    )

    assert detail["violations"][0]["field"] == "max_stock"


@pytest.mark.parametrize("query", [{"name": "Kettle"}, {"sort": "sku"}])
def test_undeclared_filter_or_sort_is_refused(client: TestClient, query: dict[str, str]) -> None:
    assert_error(client.get("/products/", params=query), 400, "unsupported_query")


def test_tampered_cursor_is_refused(client: TestClient, create_product: ProductFactory) -> None:
    create_product(sku="A")
    create_product(sku="B")
    cursor = client.get("/products/", params={"pagination": "cursor", "limit": 1}).json()

    tampered = cursor["nextCursor"][:-2] + ("AA" if cursor["nextCursor"][-2:] != "AA" else "BB")
    response = client.get("/products/", params={"pagination": "cursor", "cursor": tampered})

    assert_error(response, 400, "unsupported_query")


def test_body_over_the_size_cap_is_refused(client: TestClient) -> None:
    body = b'{"sku": "' + b"x" * (2 * 1024 * 1024) + b'"}'

    assert_error(client.post("/products/", content=body, headers=JSON), 413, "payload_too_large")


@pytest.mark.parametrize("status", ["400", "401", "403", "404", "409", "413", "415", "422"])
def test_every_error_status_is_documented_with_the_error_body(
    client: TestClient, status: str
) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/products/{id}"]["patch"]

    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize(
    ("declared", "model", "column"),
    [
        (Sku, Product, "sku"),
        (Name, Product, "name"),
        (Category, Product, "category"),
        (Email, RestockNotification, "recipient_email"),
    ],
    ids=["sku", "name", "category", "recipient_email"],
)
def test_each_text_rule_allows_exactly_its_columns_length(
    declared: Any, model: type[Any], column: str
) -> None:
    _, rule = get_args(declared)

    assert rule.max_length == compile_model(model).__table__.c[column].type.length
