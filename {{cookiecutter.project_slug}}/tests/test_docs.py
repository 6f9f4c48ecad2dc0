"""/docs is Swagger UI served from this service's own files: it renders with no CDN."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.docs import ASSET_PATHS, ASSET_PREFIX
from {{ cookiecutter.package_name }}.runtime import JobRuntime, create_api

# Every URL the page loads a script, stylesheet or icon from.
LOADED = re.compile(r'<(?:script src|link[^>]*href)="([^"]+)"')


def test_docs_page_loads_every_asset_from_this_service(any_start: JobRuntime) -> None:
    with TestClient(create_api()) as client:
        page = client.get("/docs")

    assert page.status_code == 200
    loaded = LOADED.findall(page.text)
    assert sorted(loaded) == sorted(ASSET_PATHS)
    assert "url: '/openapi.json'" in page.text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (f"{ASSET_PREFIX}/swagger-ui-bundle.js", "text/javascript"),
        (f"{ASSET_PREFIX}/swagger-ui.css", "text/css"),
        (f"{ASSET_PREFIX}/favicon-32x32.png", "image/png"),
    ],
)
def test_each_asset_is_served(client: TestClient, path: str, content_type: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert len(response.content) > 500


def test_assets_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert not [path for path in paths if path.startswith("/docs")]


def test_the_offline_page_replaces_the_cdn_one() -> None:
    app = create_api()

    assert [getattr(route, "path", None) for route in app.routes].count("/docs") == 1
