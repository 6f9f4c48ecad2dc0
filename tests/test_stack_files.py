"""The stack's files are valid for the tools that will read them, on every bake."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.compose import read_env_file
from tests.conftest import Bake, tool
from tests.tools import bake_project


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool(command[0]), *command[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("files")
    return bake_project(output)


@pytest.mark.parametrize("service", ["beat", "migrate"])
def test_make_scale_refuses_the_services_that_run_once(project: Path, service: str) -> None:
    scaled = subprocess.run(
        ["make", "-s", "scale", f"SERVICE={service}", "N=2"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert scaled.returncode != 0
    assert scaled.stderr.splitlines()[0] == (
        f"make scale: {service} runs once by design (README: Running on more than one machine)"
    )
    assert scaled.stdout == ""


def test_compose_file_is_valid_for_docker_compose_1_29(project: Path) -> None:
    result = run("docker-compose", "-f", "docker-compose.yml", "config", "-q", cwd=project)

    assert result.returncode == 0, result.stderr


def test_compose_file_is_valid_for_the_compose_specification(project: Path) -> None:
    result = run(
        "check-jsonschema",
        "--builtin-schema",
        "vendor.compose-spec",
        "docker-compose.yml",
        cwd=project,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("baked", "broker"),
    [("project", "redis"), ("rabbitmq_project", "rabbitmq")],
    ids=["redis", "rabbitmq"],
)
def test_every_service_others_wait_for_has_a_start_period(
    request: pytest.FixtureRequest, baked: str, broker: str
) -> None:
    """docker-compose 1.29 stops `make up` once a service others wait for is unhealthy: a
    slow first start on a busy host must not count against its healthcheck."""
    compose = request.getfixturevalue(baked) / "docker-compose.yml"
    services = yaml.safe_load(compose.read_text())["services"]
    awaited = {
        name
        for service in services.values()
        for name, condition in (service.get("depends_on") or {}).items()
        if condition == {"condition": "service_healthy"}
    }

    assert awaited >= {"postgres", "redis", broker}
    for name in awaited:
        assert services[name]["healthcheck"].get("start_period"), name


def test_compose_refuses_to_start_without_the_secrets(project: Path, tmp_path: Path) -> None:
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")

    result = run(
        "docker-compose",
        "--env-file",
        str(empty_env),
        "-f",
        "docker-compose.yml",
        "config",
        "-q",
        cwd=project,
    )

    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_every_published_port_listens_on_loopback_only(project: Path) -> None:
    services = yaml.safe_load((project / "docker-compose.yml").read_text())["services"]

    published = [port for spec in services.values() for port in spec.get("ports", [])]
    assert published
    assert all(port.startswith("127.0.0.1:") for port in published)


def test_dockerfile_is_hadolint_clean_at_warning_level(project: Path) -> None:
    result = run("hadolint", "--failure-threshold", "warning", "Dockerfile", cwd=project)

    assert result.returncode == 0, result.stdout


def test_dockerfile_runs_as_a_non_root_user(project: Path) -> None:
    users = re.findall(r"^USER (\S+)$", (project / "Dockerfile").read_text(), flags=re.MULTILINE)

    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_bake_writes_a_git_ignored_env_with_fresh_random_secrets(bake: Bake) -> None:
    first, second = (
        read_env_file(bake() / ".env"),
        read_env_file(bake(project_name="Other Store") / ".env"),
    )

    for secret in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "CURSOR_KEY_K1", "FLOWER_BASIC_AUTH"):
        assert len(first[secret]) >= 20
        assert first[secret] != second[secret]
    assert ".env" in (bake(project_name="Third Store") / ".gitignore").read_text().splitlines()


def test_env_example_names_every_variable_the_compose_file_requires(project: Path) -> None:
    required = set(re.findall(r"\$\{(\w+):\?", (project / "docker-compose.yml").read_text()))
    example = read_env_file(project / ".env.example")

    assert required
    assert required <= set(example)


@pytest.fixture(scope="module")
def rabbitmq_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("rabbitmq-files")
    return bake_project(output, broker="rabbitmq")


def test_rabbitmq_env_example_names_every_variable_its_compose_file_requires(
    rabbitmq_project: Path,
) -> None:
    required = set(
        re.findall(r"\$\{(\w+):\?", (rabbitmq_project / "docker-compose.yml").read_text())
    )

    assert {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS", "RABBITMQ_DEFAULT_VHOST"} <= required
    assert required <= set(read_env_file(rabbitmq_project / ".env.example"))


def test_rabbitmq_bake_writes_a_fresh_random_broker_password(bake: Bake) -> None:
    first = read_env_file(bake(broker="rabbitmq") / ".env")
    second = read_env_file(bake(broker="rabbitmq", project_name="Other Store") / ".env")

    assert len(first["RABBITMQ_DEFAULT_PASS"]) >= 20
    assert first["RABBITMQ_DEFAULT_PASS"] != second["RABBITMQ_DEFAULT_PASS"]
    assert (first["RABBITMQ_DEFAULT_USER"], first["RABBITMQ_DEFAULT_VHOST"]) == (
        "loom_store",
        "loom_store",
    )


def test_rabbitmq_publishes_amqp_and_its_management_ui_on_loopback_only(
    rabbitmq_project: Path,
) -> None:
    services = yaml.safe_load((rabbitmq_project / "docker-compose.yml").read_text())["services"]

    assert services["rabbitmq"]["ports"] == [
        "127.0.0.1:${RABBITMQ_PORT:-5672}:5672",
        "127.0.0.1:${RABBITMQ_MANAGEMENT_PORT:-15672}:15672",
    ]


def test_rabbitmq_compose_refuses_to_start_without_the_broker_password(
    rabbitmq_project: Path, tmp_path: Path
) -> None:
    env = read_env_file(rabbitmq_project / ".env")
    without = tmp_path / "without.env"
    without.write_text(
        "".join(f"{key}={value}\n" for key, value in env.items() if key != "RABBITMQ_DEFAULT_PASS")
    )

    result = run(
        "docker-compose",
        "--env-file",
        str(without),
        "-f",
        "docker-compose.yml",
        "config",
        "-q",
        cwd=rabbitmq_project,
    )

    assert result.returncode != 0
    assert "set RABBITMQ_DEFAULT_PASS in .env" in result.stderr
