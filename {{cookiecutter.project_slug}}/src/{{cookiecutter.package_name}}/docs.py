"""Swagger UI at ``/docs`` from files this service serves itself, never from a CDN.

Why: the page FastAPI installs loads Swagger UI's script and stylesheet from a public CDN,
so on a network without one (a strict proxy, a content security policy, a laptop offline)
``/docs`` stays blank. The swagger-ui-bundle-v2 package ships Swagger UI's files; each one
the page needs gets a route of its own under ``ASSET_PREFIX``: an exact path, which is
what an authentication exclusion list names (loom excludes exact paths, not prefixes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.requests import Request
from swagger_ui_bundle import swagger_ui_path

ASSET_PREFIX = "/docs/assets"
SCRIPT, STYLESHEET, FAVICON = "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"
ASSETS = (SCRIPT, STYLESHEET, FAVICON)
ASSET_PATHS = tuple(f"{ASSET_PREFIX}/{name}" for name in ASSETS)


def serve_docs_offline(app: FastAPI) -> None:
    """Replace the CDN-backed ``/docs`` page; nothing to do when docs or schema are off."""
    docs_url, openapi_url = app.docs_url, app.openapi_url
    if docs_url is None or openapi_url is None:
        return
    app.router.routes[:] = [r for r in app.routes if getattr(r, "path", None) != docs_url]
    for name in ASSETS:
        asset = Path(str(swagger_ui_path), name)
        app.add_route(f"{ASSET_PREFIX}/{name}", _file(asset), include_in_schema=False)

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        redirect = app.swagger_ui_oauth2_redirect_url
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSET_PREFIX}/{SCRIPT}",
            swagger_css_url=f"{root}{ASSET_PREFIX}/{STYLESHEET}",
            swagger_favicon_url=f"{root}{ASSET_PREFIX}/{FAVICON}",
            oauth2_redirect_url=root + redirect if redirect else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    app.add_route(docs_url, swagger_ui, include_in_schema=False)


def _file(path: Path) -> Callable[[Request], Awaitable[FileResponse]]:
    if not path.is_file():
        raise FileNotFoundError(f"Swagger UI asset {path} is missing from swagger-ui-bundle-v2")

    async def serve(request: Request) -> FileResponse:
        return FileResponse(path)

    return serve
