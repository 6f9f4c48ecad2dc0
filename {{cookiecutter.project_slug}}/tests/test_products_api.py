"""AutoCRUD routes and the typed low-stock query."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ProductFactory


def test_created_product_is_returned_in_camel_case(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(sku="KET-1", priceCents=1999, stock=3)

    assert product["sku"] == "KET-1"
    assert product["priceCents"] == 1999
    assert isinstance(product["id"], int)


def test_get_returns_the_stored_product(client: TestClient, create_product: ProductFactory) -> None:
    product = create_product()

    response = client.get(f"/products/{product['id']}")

    assert response.status_code == 200
    assert response.json()["name"] == "Kettle"


def test_list_filters_on_a_declared_field(
    client: TestClient, create_product: ProductFactory
) -> None:
    create_product(sku="A", category="kitchen")
    create_product(sku="B", category="garden")

    response = client.get("/products/", params={"category": "garden"})

    assert response.status_code == 200
    assert [item["sku"] for item in response.json()["items"]] == ["B"]


def test_list_sorts_on_a_declared_field(client: TestClient, create_product: ProductFactory) -> None:
    for sku, stock in (("A", 7), ("B", 1), ("C", 4)):
        create_product(sku=sku, stock=stock)

    response = client.get("/products/", params={"sort": "stock"})

    assert [item["sku"] for item in response.json()["items"]] == ["B", "C", "A"]


def test_list_refuses_an_undeclared_filter(client: TestClient) -> None:
    response = client.get("/products/", params={"name": "Kettle"})

    assert response.status_code == 400
    assert response.json()["detail"]["code"] == "unsupported_query"


def test_patch_updates_only_the_given_fields(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(stock=2)

    response = client.patch(f"/products/{product['id']}", json={"stock": 9})

    assert response.status_code == 200
    assert response.json()["stock"] == 9
    assert response.json()["name"] == "Kettle"


def test_delete_removes_the_product(client: TestClient, create_product: ProductFactory) -> None:
    product = create_product()

    assert client.delete(f"/products/{product['id']}").status_code in (200, 204)
    assert client.get(f"/products/{product['id']}").status_code == 404


def test_low_stock_lists_products_at_or_below_the_threshold_emptiest_first(
    client: TestClient, create_product: ProductFactory
) -> None:
    for sku, stock in (("A", 3), ("B", 0), ("C", 50)):
        create_product(sku=sku, stock=stock)

    response = client.get("/products/low-stock", params={"max_stock": 5})

    assert response.status_code == 200
    assert [item["sku"] for item in response.json()["items"]] == ["B", "A"]


def test_health_reports_the_database(client: TestClient) -> None:
    response = client.get("/health")

    assert response.json() == {"status": "ok", "backends": {"sqlalchemy": True}}
