"""The low-stock sweep with loom's in-process job service: what beat starts every 15 min.

``POST /products/jobs/low-stock-sweep`` dispatches the same job beat sends; in-process, it
and the restock emails it dispatches run before the response.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.product.jobs import SWEEP_PAGE, daily_notification_key

from tests.conftest import ProductFactory

NOTIFIED = "kitchen-restock-notified"


def sent_emails(tmp_path: Path) -> list[tuple[str, int, str]]:
    """The restock emails recorded, from conftest's SQLite file: (key, product, recipient)."""
    with closing(sqlite3.connect(tmp_path / "test.db")) as db:
        query = "SELECT key, product_id, recipient_email FROM restock_notifications"
        return [tuple(row) for row in db.execute(query)]


def sweep(client: TestClient) -> None:
    response = client.post("/products/jobs/low-stock-sweep")
    assert response.status_code == 202, response.text


def test_sweep_emails_each_empty_product_and_tags_it(
    client: TestClient, create_product: ProductFactory
) -> None:
    empty = [create_product(sku=f"EMPTY-{n}", stock=0)["id"] for n in range(2)]

    sweep(client)

    for product_id in empty:
        assert client.get(f"/products/{product_id}").json()["category"] == NOTIFIED


def test_sweep_leaves_products_in_stock_alone(
    client: TestClient, create_product: ProductFactory, tmp_path: Path
) -> None:
    stocked = create_product(sku="STOCKED", stock=3)["id"]

    sweep(client)

    assert client.get(f"/products/{stocked}").json()["category"] == "kitchen"
    assert sent_emails(tmp_path) == []


def test_two_sweeps_in_a_day_send_one_email_per_product(
    client: TestClient, create_product: ProductFactory, tmp_path: Path
) -> None:
    empty = [create_product(sku=f"EMPTY-{n}", stock=0)["id"] for n in range(3)]

    sweep(client)
    sweep(client)

    emails = sent_emails(tmp_path)
    assert sorted(product for _, product, _ in emails) == empty
    today = datetime.now(UTC).date()  # the job's day
    assert {key for key, _, _ in emails} == {daily_notification_key(p, today) for p in empty}


def test_sweep_emails_the_schedules_default_recipient(
    client: TestClient, create_product: ProductFactory, tmp_path: Path
) -> None:
    create_product(stock=0)

    sweep(client)

    ((_, _, recipient),) = sent_emails(tmp_path)
    assert recipient == "purchasing@example.com"


def test_product_emptied_after_a_sweep_is_emailed_by_the_next(
    client: TestClient, create_product: ProductFactory, tmp_path: Path
) -> None:
    product_id = create_product(stock=2)["id"]
    sweep(client)

    client.patch(f"/products/{product_id}", json={"stock": 0})
    sweep(client)

    assert [product for _, product, _ in sent_emails(tmp_path)] == [product_id]


def test_sweep_covers_more_products_than_one_page(
    client: TestClient, create_product: ProductFactory, tmp_path: Path
) -> None:
    count = SWEEP_PAGE + 1
    for n in range(count):
        create_product(sku=f"EMPTY-{n}", stock=0)

    sweep(client)

    assert len(sent_emails(tmp_path)) == count


def test_daily_key_is_the_same_all_day_and_new_the_next_day() -> None:
    monday, tuesday = date(2026, 1, 5), date(2026, 1, 6)

    assert daily_notification_key(7, monday) == daily_notification_key(7, monday)
    assert daily_notification_key(7, monday) != daily_notification_key(7, tuesday)
    assert daily_notification_key(7, monday) != daily_notification_key(8, monday)
    assert len(daily_notification_key(7, monday)) == 36  # the notification key column
