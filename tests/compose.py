"""Read a docker-compose.yml the way compose does, to run its services as local processes.

Only what the generated file uses: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``
(and their forms without the colon), ``$$``, YAML anchors and merge keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

VARIABLE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


class MissingVariableError(KeyError):
    """A ``${VAR:?message}`` whose variable is unset: compose refuses to start."""


def interpolate(text: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = variables.get(name)
        missing = value is None or (op is not None and op.startswith(":") and value == "")
        if not missing:
            return value or ""
        if op in (":?", "?"):
            raise MissingVariableError(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return VARIABLE.sub(replace, text)


def _interpolate_tree(node: Any, variables: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolate_tree(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, variables) for key, value in node.items()}
    return node


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    environment: dict[str, str]
    # (host port, container port) of every published port
    ports: list[tuple[int, int]] = field(default_factory=list)
    healthcheck: list[str] | None = None
    depends_on: dict[str, str] = field(default_factory=dict)
    # built from the project's Dockerfile, as opposed to a published image
    builds_project: bool = False
    one_shot: bool = False


def _ports(entries: list[str]) -> list[tuple[int, int]]:
    published = []
    for entry in entries:
        host_ip, host_port, container_port = entry.split(":")
        assert host_ip == "127.0.0.1", f"port {entry} is published beyond loopback"
        published.append((int(host_port), int(container_port)))
    return published


def load_services(compose_file: Path, variables: dict[str, str]) -> dict[str, Service]:
    """Every service of ``compose_file`` with its strings interpolated from ``variables``."""
    document = _interpolate_tree(yaml.safe_load(compose_file.read_text()), variables)
    services = {}
    for name, spec in document["services"].items():
        environment = {key: str(value) for key, value in (spec.get("environment") or {}).items()}
        healthcheck = (spec.get("healthcheck") or {}).get("test")
        services[name] = Service(
            name=name,
            command=[str(part) for part in spec.get("command") or []],
            environment=environment,
            ports=_ports(spec.get("ports") or []),
            healthcheck=healthcheck,
            depends_on={
                service: condition["condition"]
                for service, condition in (spec.get("depends_on") or {}).items()
            },
            builds_project="build" in spec,
            one_shot=spec.get("restart") == "no",
        )
    return services
