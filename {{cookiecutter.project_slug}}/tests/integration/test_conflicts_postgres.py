"""PostgreSQL's unique violations answered as SQLite's are: 409 ``conflict`` naming the field."""

from __future__ import annotations

import secrets

from fastapi.testclient import TestClient

from tests.integration.conftest import requires_services

pytestmark = requires_services


def test_a_duplicate_sku_is_a_conflict_naming_the_field(api: TestClient) -> None:
    body: dict[str, object] = {"sku": secrets.token_hex(6), "name": "Kettle", "priceCents": 1}
    body |= {"category": "kitchen", "stock": 0}
    assert api.post("/products/", json=body).status_code == 201

    response = api.post("/products/", json=body)

    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert (detail["code"], detail["field"]) == ("conflict", "sku")
    assert detail["trace_id"]
