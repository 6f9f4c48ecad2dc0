"""The job routes with loom's in-process job service (no ``celery:`` section).

Dispatched jobs run after the request's unit of work commits and before the response,
so their callbacks' effects are visible to the very next request.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ProductFactory

EMAIL = {"recipientEmail": "buyer@example.com"}


def test_restock_email_is_accepted_with_a_job_id_and_queue(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(stock=0)

    response = client.post(f"/products/{product['id']}/jobs/restock-email", json=EMAIL)

    assert response.status_code == 202
    assert response.json()["queue"] == "notifications"
    assert len(response.json()["jobId"]) == 36  # a UUID


def test_sent_restock_email_tags_the_category_as_notified(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(stock=0, category="kitchen")

    client.post(f"/products/{product['id']}/jobs/restock-email", json=EMAIL)

    assert client.get(f"/products/{product['id']}").json()["category"] == "kitchen-restock-notified"


def test_product_in_stock_gets_no_email_and_keeps_its_category(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(stock=4, category="kitchen")

    client.post(f"/products/{product['id']}/jobs/restock-email", json=EMAIL)

    assert client.get(f"/products/{product['id']}").json()["category"] == "kitchen"


def test_success_callback_tags_only_once(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(stock=0, category="kitchen")

    for _ in range(2):
        client.post(f"/products/{product['id']}/jobs/restock-email", json=EMAIL)

    assert client.get(f"/products/{product['id']}").json()["category"] == "kitchen-restock-notified"


def test_forced_failure_runs_the_failure_callback(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(stock=0, category="kitchen")

    response = client.post(
        f"/products/{product['id']}/jobs/restock-email", json=EMAIL | {"forceFail": True}
    )

    assert response.status_code == 202
    assert client.get(f"/products/{product['id']}").json()["category"] == "kitchen-restock-failed"


def test_summary_is_computed_in_the_api_process(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(
        name="Kettle", sku="KET-1", category="kitchen", stock=3, priceCents=2599
    )

    response = client.get(f"/products/{product['id']}/jobs/summary")

    assert response.status_code == 200
    assert response.json() == {
        "productId": product["id"],
        "summary": "Kettle (KET-1) in kitchen: 3 in stock at 25.99",
    }


def test_restock_workflow_returns_the_summary_and_queues_the_email(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(stock=0, category="kitchen")

    response = client.post(f"/products/{product['id']}/workflows/restock", json=EMAIL)

    assert response.status_code == 202
    assert response.json()["summary"].startswith("Kettle (SKU-1)")
    assert response.json()["queue"] == "notifications"
    assert client.get(f"/products/{product['id']}").json()["category"] == "kitchen-restock-notified"


def test_erp_sync_accepts_one_job_per_product(
    client: TestClient, create_product: ProductFactory
) -> None:
    ids = [create_product(sku=sku)["id"] for sku in ("A", "B")]

    response = client.post("/products/jobs/sync-erp", json={"productIds": ids})

    assert response.status_code == 202
    assert response.json()["queue"] == "erp"
    assert len(set(response.json()["jobIds"])) == 2


def test_erp_sync_of_an_empty_list_is_a_rule_violation(client: TestClient) -> None:
    response = client.post("/products/jobs/sync-erp", json={"productIds": []})

    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "rule_violations"


def test_use_case_that_fails_after_dispatching_sends_nothing(
    client: TestClient, create_product: ProductFactory
) -> None:
    product = create_product(category="kitchen")

    response = client.post(
        "/products/jobs/sync-erp", json={"productIds": [product["id"], 999_999], "forceFail": True}
    )

    assert response.status_code == 404
    # Had the first job run, it would have failed; no job ran, so nothing else changed.
    assert client.get(f"/products/{product['id']}").json()["category"] == "kitchen"
