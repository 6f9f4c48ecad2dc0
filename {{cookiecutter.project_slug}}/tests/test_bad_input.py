"""Bad input gets a 4xx whose body names the problem; never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ProductFactory

VALID = {"sku": "KET-1", "name": "Kettle", "category": "kitchen", "priceCents": 2599, "stock": 0}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    detail: dict[str, Any] = response.json()["detail"]
    assert detail["code"] == code
    assert detail["message"]
    assert detail["trace_id"]
    return detail


def test_missing_field_is_named(client: TestClient) -> None:
    body = {key: value for key, value in VALID.items() if key != "name"}

    detail = assert_error(client.post("/products/", json=body), 422, "boundary_validation")

    assert detail["violations"] == [
        {"field": "name", "message": "Object missing required field `name`"}
    ]


def test_wrong_type_is_named(client: TestClient) -> None:
    detail = assert_error(
        client.post("/products/", json=VALID | {"stock": "plenty"}), 422, "boundary_validation"
    )

    assert detail["violations"][0]["field"] == "stock"


def test_duplicate_sku_is_a_conflict(client: TestClient, create_product: ProductFactory) -> None:
    create_product(sku="KET-1")

    assert_error(client.post("/products/", json=VALID), 409, "conflict")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/products/999"),
        ("PATCH", "/products/999"),
        ("GET", "/products/999/jobs/summary"),
        ("POST", "/products/999/jobs/restock-email"),
        ("POST", "/products/999/workflows/restock"),
    ],
)
def test_unknown_product_is_not_found(client: TestClient, method: str, path: str) -> None:
    body = {"recipientEmail": "buyer@example.com", "stock": 1} if method != "GET" else None

    detail = assert_error(client.request(method, path, json=body), 404, "not_found")

    assert detail["id"] == 999


def test_unknown_product_in_erp_sync_is_not_found(client: TestClient) -> None:
    assert_error(
        client.post("/products/jobs/sync-erp", json={"productIds": [999]}), 404, "not_found"
    )


def test_non_integer_path_id_is_rejected(client: TestClient) -> None:
    detail = assert_error(
        client.post("/products/abc/jobs/restock-email", json={"recipientEmail": "a@b.c"}),
        422,
        "rule_violations",
    )

    assert detail["violations"][0]["field"] == "path.product_id"


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"42"])
def test_body_that_is_not_a_json_object_is_malformed(client: TestClient, body: bytes) -> None:
    response = client.post("/products/", content=body, headers={"content-type": "application/json"})

    assert_error(response, 400, "malformed_json")


def test_invalid_query_parameter_is_named(client: TestClient) -> None:
    detail = assert_error(
        client.get("/products/low-stock", params={"max_stock": -1}), 400, "query_validation"
    )

    assert detail["violations"][0]["field"] == "max_stock"
