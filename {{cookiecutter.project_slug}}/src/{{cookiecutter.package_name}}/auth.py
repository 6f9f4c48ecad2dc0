"""Who may call the API: bearer tokens when deployed, an open door on a laptop.

Deployed (production) the API verifies HS256 JWTs with loom's own middleware;
every route but ``/health``, ``/docs`` and ``/openapi.json`` needs one. Reads need the
``reader`` or ``writer`` role; writes and job dispatches need ``writer``. The signing
secret comes from ``JWT_SECRET`` (made per bake into ``.env``). In development and test
every request acts as a local developer holding both roles, and the API says so once.
Staging is closed too but ships no overlay: copy config/production.yaml to staging.yaml.
Jobs and callbacks run use cases inside the worker, never over HTTP, so none of this
stands between them and the domain; the dispatching caller still travels with each job.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from loom.core.environment import Environment, resolve_environment
from loom.core.identity import Identity
from loom.rest.auth.abc import Authenticator, RequestCredentials
from loom.rest.auth.config import JwtIssuerConfig
from loom.rest.auth.jwt import JwtIssuer
from loom.rest.model import RestRoute

READER = "reader"
WRITER = "writer"
READ_ROLES = (READER, WRITER)
WRITE_ROLES = (WRITER,)

# Must match app.rest.auth.jwt in config/production.yaml.
AUDIENCE = ISSUER = {{ cookiecutter.project_slug | tojson }}
ROLES_CLAIM = "roles"
# Short-lived: a stateless token cannot be revoked, only outlived.
TOKEN_TTL = timedelta(minutes=15)
# HS256 wants a key at least as long as its 256-bit hash.
MIN_SECRET_LENGTH = 32
PLACEHOLDER = "replace-me"
OPEN_ENVIRONMENTS = frozenset({Environment.DEVELOPMENT, Environment.TEST})

_logger = logging.getLogger(__name__)


class JwtSecretError(RuntimeError):
    """The JWT secret (``JWT_SECRET``, or the file ``JWT_SECRET_FILE`` names) is missing,
    a placeholder or too short."""


def checked_secret(secret: str, source: str) -> str:
    """``secret`` if it is fit to sign tokens; ``source`` names where it came from."""
    if not secret:
        raise JwtSecretError(f"{source} is not set: the API cannot verify tokens")
    if PLACEHOLDER in secret:
        raise JwtSecretError(f"{source} is the .env.example placeholder: set a random value")
    if len(secret) < MIN_SECRET_LENGTH:
        raise JwtSecretError(f"{source} must be at least {MIN_SECRET_LENGTH} characters")
    return secret


def jwt_secret() -> str:
    return checked_secret(os.environ.get("JWT_SECRET", ""), "JWT_SECRET")


def mounted_secret(path: str) -> None:
    """Check the secret in a mounted file as strictly as the one in the environment."""
    source = f"the secret in JWT_SECRET_FILE ({path})"
    try:
        secret = Path(path).read_text()
    except OSError as exc:
        raise JwtSecretError(f"{source} cannot be read: {exc.strerror}") from None
    checked_secret(secret.strip(), source)


@contextmanager
def jwt_secret_file() -> Iterator[str]:
    """A file holding ``JWT_SECRET`` while loom reads it, removed afterwards.

    loom reads the HS256 secret from a file so that no config dump can carry it, and
    reads it once, at start; the stack hands it over in the environment. A mounted
    secret file (Docker or Kubernetes secrets) named by ``JWT_SECRET_FILE`` wins.
    """
    mounted = os.environ.get("JWT_SECRET_FILE")
    if mounted:
        mounted_secret(mounted)
        yield mounted
        return
    with tempfile.TemporaryDirectory(prefix="jwt-") as directory:  # mode 0700
        path = Path(directory, "secret")
        path.write_text(jwt_secret())
        os.environ["JWT_SECRET_FILE"] = str(path)  # config/production.yaml reads it
        try:
            yield str(path)
        finally:
            del os.environ["JWT_SECRET_FILE"]


class DevelopmentAccess:
    """Every request is the local developer, holding every role: ``make run`` stays open."""

    name = "development"
    provides_roles = True
    IDENTITY = Identity(subject="local-developer", roles=READ_ROLES, mechanism=name)

    async def authenticate(self, credentials: RequestCredentials) -> Identity | None:
        return self.IDENTITY


@contextmanager
def api_authentication() -> Iterator[Authenticator | None]:
    """What ``create_app`` needs for authentication, while it builds the app.

    Development and test: the open :class:`DevelopmentAccess`. Deployed: ``None``, so
    loom's JWT middleware configured in production.yaml does the work, with the secret
    file in place while it reads it.
    """
    environment = resolve_environment()
    if environment in OPEN_ENVIRONMENTS:
        _logger.warning(
            "%s: authentication is off, every request acts as a developer with roles %s",
            environment.value,
            ", ".join(READ_ROLES),
        )
        yield DevelopmentAccess()
        return
    with jwt_secret_file():
        yield None


def writes_need_writer(routes: Iterable[RestRoute]) -> tuple[RestRoute, ...]:
    """``routes`` with every non-GET route restricted to the ``writer`` role."""
    return tuple(
        route if route.method.upper() == "GET" else replace(route, requires_roles=WRITE_ROLES)
        for route in routes
    )


def declare_bearer_scheme(app: FastAPI) -> None:
    """Declare the bearer scheme in the OpenAPI document, so /docs can send a token."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        if "bearer" not in schemes:
            schemes["bearer"] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            schema["security"] = [{"bearer": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def issue_token(roles: tuple[str, ...], subject: str = "local-operator") -> str:
    """A bearer token signed with ``JWT_SECRET``, as the API verifies it."""
    with jwt_secret_file() as secret_path:
        issuer = JwtIssuer(
            JwtIssuerConfig(
                secret_path=secret_path,
                algorithm="HS256",
                audience=AUDIENCE,
                issuer=ISSUER,
                roles_claim=ROLES_CLAIM,
                ttl_seconds=int(TOKEN_TTL.total_seconds()),
                allow_symmetric_signing=True,
            )
        )
    return issuer.issue(Identity(subject=subject, roles=roles, mechanism="jwt")).token


def main(argv: list[str] | None = None) -> None:
    """``make token``: print a token for the stack's API (``--roles reader`` narrows it)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--roles", default=",".join(READ_ROLES))
    roles = tuple(role.strip() for role in parser.parse_args(argv).roles.split(",") if role)
    unknown = sorted(set(roles) - set(READ_ROLES))
    if unknown or not roles:
        parser.error(f"roles must be among {', '.join(READ_ROLES)}; got {', '.join(unknown)}")
    try:
        print(issue_token(roles))
    except JwtSecretError as exc:
        raise SystemExit(f"ERROR: {exc}") from None


if __name__ == "__main__":
    main()
