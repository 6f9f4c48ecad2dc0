"""A real browser on the default bake's `make run`: /docs works with no network but the service.

Debian's chromium, driven by Playwright (never a browser Playwright downloads itself). Every
request that leaves the service is refused, so a page that still reaches for a CDN fails
here even on a machine that could reach one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from tests.conftest import Served

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Swagger UI renders the schema, then a 1.5 MB script runs: generous on a shared 2-core box.
RENDER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def offline_page(browser: Browser, served: Served) -> Iterator[tuple[Page, list[str]]]:
    """A page that reaches the served project only; the list collects refused requests."""
    refused: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(served.url + "/"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context = browser.new_context()
    page = context.new_page()
    page.route("**/*", only_the_service)
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    yield page, refused
    context.close()


def operation_count(served: Served) -> int:
    paths = served.client.get("/openapi.json").json()["paths"]
    return sum(1 for item in paths.values() for method in item if method in HTTP_METHODS)


def test_docs_renders_every_operation_without_leaving_the_service(
    served: Served, offline_page: tuple[Page, list[str]]
) -> None:
    page, refused = offline_page

    page.goto(f"{served.url}/docs")

    expect(page.locator(".opblock-summary")).to_have_count(
        operation_count(served), timeout=RENDER_TIMEOUT_MS
    )
    assert refused == []


def test_try_it_out_creates_a_product_and_shows_the_201(
    served: Served, offline_page: tuple[Page, list[str]]
) -> None:
    page, refused = offline_page
    page.goto(f"{served.url}/docs")
    create = page.locator(".opblock-post").filter(
        has=page.locator('.opblock-summary-path[data-path="/products/"]')
    )
    product = {
        "sku": "KET-DOCS",
        "name": "Kettle",
        "category": "kitchen",
        "priceCents": 2599,
        "stock": 4,
    }

    create.locator(".opblock-summary-control").click()
    create.get_by_role("button", name="Try it out").click()
    create.locator("textarea.body-param__text").fill(json.dumps(product))
    create.get_by_role("button", name="Execute").click()

    expect(create.locator(".live-responses-table tbody .response-col_status")).to_have_text(
        "201", timeout=RENDER_TIMEOUT_MS
    )
    stored = served.client.get("/products/", params={"sku": "KET-DOCS"}).json()["items"]
    assert [item["name"] for item in stored] == ["Kettle"]
    assert refused == []
