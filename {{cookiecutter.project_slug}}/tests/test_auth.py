"""Production lets no anonymous caller in, and no reader change anything."""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.auth import JwtSecretError, issue_token, main
from {{ cookiecutter.package_name }}.docs import ASSET_PATHS
from {{ cookiecutter.package_name }}.runtime import create_api

PRODUCT = {"sku": "KET-1", "name": "Kettle", "category": "kitchen", "priceCents": 2599, "stock": 0}


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOM_ENV", "production")
    monkeypatch.setenv("CURSOR_KEY_K1", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.setenv("JWT_SECRET", secrets.token_urlsafe(48))


@pytest.fixture
def production(production_env: None) -> Iterator[TestClient]:
    with TestClient(create_api()) as client:
        yield client


def bearer(*roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(roles)}"}


OPEN_PATHS = {"/health", "/metrics"}
CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


def operations(client: TestClient) -> list[tuple[str, str]]:
    """Every operation the API documents, its path parameters filled with 1."""
    document = client.get("/openapi.json").json()
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, item in document["paths"].items()
        if path not in OPEN_PATHS
        for method in item
    ]


def test_anonymous_caller_is_refused_by_every_operation(production: TestClient) -> None:
    answers = {
        (method, path): production.request(method, path, json=PRODUCT)
        for method, path in operations(production)
    }

    assert len(answers) >= 10
    refused = {key: response.status_code for key, response in answers.items()}
    assert refused == dict.fromkeys(answers, 401)
    assert {response.json()["detail"]["code"] for response in answers.values()} == {
        "unauthenticated"
    }


def test_reader_is_refused_by_every_operation_that_changes_something(
    production: TestClient,
) -> None:
    changes = [(method, path) for method, path in operations(production) if method in CHANGES]
    answers = {
        (method, path): production.request(method, path, json=PRODUCT, headers=bearer("reader"))
        for method, path in changes
    }

    assert len(answers) >= 7
    assert {key: response.status_code for key, response in answers.items()} == dict.fromkeys(
        answers, 403
    )


@pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json", *ASSET_PATHS])
def test_health_and_documentation_need_no_token(production: TestClient, path: str) -> None:
    assert production.get(path).status_code == 200


def test_reader_reads(production: TestClient) -> None:
    assert production.get("/products/", headers=bearer("reader")).status_code == 200


def test_reader_cannot_dispatch_a_job(production: TestClient) -> None:
    product = production.post("/products/", json=PRODUCT, headers=bearer("writer")).json()

    response = production.post(
        f"/products/{product['id']}/jobs/restock-email",
        json={"recipientEmail": "buyer@example.com"},
        headers=bearer("reader"),
    )

    assert response.status_code == 403


def test_writer_creates(production: TestClient) -> None:
    assert production.post("/products/", json=PRODUCT, headers=bearer("writer")).status_code == 201


def test_token_signed_with_another_secret_is_refused(production: TestClient) -> None:
    forged = jwt.encode(
        {"sub": "intruder", "roles": ["writer"], "exp": 4_102_444_800},
        secrets.token_urlsafe(48),
        algorithm="HS256",
    )

    response = production.get("/products/", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401


def test_openapi_declares_the_bearer_scheme(production: TestClient) -> None:
    document = production.get("/openapi.json").json()

    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]


@pytest.mark.parametrize(
    ("secret", "rule"),
    [(None, "not set"), ("replace-me", "placeholder"), ("short-secret", "at least 32")],
)
def test_production_refuses_to_start_without_a_usable_secret(
    production_env: None, monkeypatch: pytest.MonkeyPatch, secret: str | None, rule: str
) -> None:
    if secret is None:
        monkeypatch.delenv("JWT_SECRET")
    else:
        monkeypatch.setenv("JWT_SECRET", secret)

    with pytest.raises(JwtSecretError, match=rule):
        create_api()


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (None, "cannot be read"),
        ("", "not set"),
        ("replace-me\n", "placeholder"),
        ("short", "at least 32"),
    ],
)
def test_production_refuses_a_mounted_secret_file_it_cannot_use(
    production_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    content: str | None,
    rule: str,
) -> None:
    mounted = tmp_path / "jwt-secret"
    if content is not None:
        mounted.write_text(content)
    monkeypatch.setenv("JWT_SECRET_FILE", str(mounted))

    with pytest.raises(JwtSecretError, match=rule):
        create_api()


def test_production_starts_with_a_mounted_secret_file(
    production_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mounted = tmp_path / "jwt-secret"
    mounted.write_text(secrets.token_urlsafe(48) + "\n")
    monkeypatch.setenv("JWT_SECRET_FILE", str(mounted))
    monkeypatch.delenv("JWT_SECRET")

    with TestClient(create_api()) as client:
        assert client.get("/products/").status_code == 401


def test_token_command_narrows_the_roles(
    production_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--roles", "reader"])

    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["roles"] == ["reader"]
    assert claims["exp"] - claims["iat"] <= 15 * 60


def test_development_is_open_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOOM_ENV", "development")

    with caplog.at_level(logging.WARNING), TestClient(create_api()) as client:
        assert client.post("/products/", json=PRODUCT).status_code == 201

    assert "authentication is off" in caplog.text
