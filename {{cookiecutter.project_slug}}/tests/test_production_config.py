"""Production refuses to start until its secrets come from the environment."""

from __future__ import annotations

import base64
import secrets

import pytest
from loom.core.config.errors import ConfigError

from {{ cookiecutter.package_name }}.runtime import create_api


@pytest.fixture(autouse=True)
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOM_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", secrets.token_urlsafe(48))


def test_production_refuses_to_start_without_a_cursor_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURSOR_KEY_K1", raising=False)

    with pytest.raises(ConfigError, match="k1"):
        create_api()


def test_production_refuses_a_placeholder_cursor_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURSOR_KEY_K1", "change-me")

    with pytest.raises(ConfigError, match="cursor key 'k1'"):
        create_api()


def test_production_starts_with_a_random_cursor_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURSOR_KEY_K1", base64.b64encode(secrets.token_bytes(32)).decode())

    assert create_api().title == {{ cookiecutter.project_name | tojson }}
