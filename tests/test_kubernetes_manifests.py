"""deploy/kubernetes renders with kustomize into manifests that Kubernetes (oldest and newest
bundled versions, strict), KEDA's schema and checkov accept, on every option combination that
changes them; and a broken manifest is caught."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from kombu.transport.redis import Channel
from kubernetes_validate.utils import all_versions

from tests.compose import read_env_file
from tests.conftest import Bake, tool
from tests.tools import TEMPLATE, bake_project

# Only the options that change the manifests: one worker or one per queue, Flower or not,
# the queue list (with a "_" that a Kubernetes name cannot hold), the broker.
COMBINATIONS: dict[str, dict[str, str]] = {
    "one-worker-with-flower": {},
    "one-worker-without-flower": {"use_flower": "no"},
    "worker-per-queue-without-flower": {"worker_per_queue": "yes", "use_flower": "no"},
    "worker-per-queue-extra-queue": {
        "queues": "default,notifications,analytics,erp,bulk_reports",
        "default_queue": "bulk_reports",
        "worker_per_queue": "yes",
    },
    "worker-per-queue-rabbitmq": {"worker_per_queue": "yes", "broker": "rabbitmq"},
}
# checkov takes seconds per run: the two shapes of worker Deployments, Flower on and off,
# and the other broker's autoscaling.
CHECKOV_COMBINATIONS = (
    "one-worker-with-flower",
    "worker-per-queue-without-flower",
    "worker-per-queue-rabbitmq",
)

# Every check the manifests are allowed to fail, and why.
CHECKOV_SKIPS = {
    "CKV_K8S_35": (
        "secrets as files: loom reads DATABASE_URL, the Celery URLs and CURSOR_KEY_K1 only "
        "from the environment (${oc.env:...} in config/); JWT_SECRET, which it can read from "
        "a file, is mounted as one"
    ),
    "CKV_K8S_43": (
        "image digest: it exists only once CI has pushed the image; the production overlay's "
        "`images:` entry takes one (kustomize edit set image NAME=REGISTRY/NAME@sha256:...)"
    ),
}

KUBERNETES_VERSIONS = sorted(set(all_versions()), key=lambda v: tuple(map(int, v.split("."))))
OLDEST_AND_NEWEST = (KUBERNETES_VERSIONS[0], KUBERNETES_VERSIONS[-1])
KEDA_SCHEMAS: dict[str, Any] = json.loads(
    (TEMPLATE / "tests" / "keda" / "crd-spec-subset.json").read_text()
)
KEDA_KINDS = ("ScaledObject", "TriggerAuthentication")
COMPONENT = "app.kubernetes.io/component"
# Kept by the first `kubectl apply -l '!rollout'` of a release (README), applied once the
# migrations Job has finished.
AFTER_MIGRATIONS = {"rollout": "after-migrations"}
# SQLAlchemy's default pool (5) plus overflow (10): what one API process may open.
API_POOL_CONNECTIONS = 15
# Rules of the worker's grace period (the comment above it in base/workers.yaml).
EXIT_MARGIN_SECONDS = 5

Document = dict[str, Any]


@dataclass(frozen=True)
class Manifests:
    """A bake's production overlay rendered by kustomize, with the KEDA component added."""

    project: Path
    file: Path
    documents: list[Document]
    shipped: list[Document]  # the overlay exactly as baked, KEDA left out

    def answers(self) -> dict[str, str]:
        recorded = json.loads((self.project / ".cookiecutter-answers.json").read_text())
        answers: dict[str, str] = recorded["cookiecutter"]
        return answers

    def of_kind(self, kind: str) -> list[Document]:
        return [document for document in self.documents if document["kind"] == kind]

    def named(self, kind: str, name: str) -> Document:
        (found,) = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        return found

    def workers(self) -> list[Document]:
        return [
            deployment
            for deployment in self.of_kind("Deployment")
            if deployment["metadata"]["name"].startswith("worker")
        ]


def kustomize(overlay: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("kubectl"), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def enable_keda(overlay: Path) -> None:
    """What the README tells people to do: uncomment the component in the overlay."""
    kustomization = overlay / "kustomization.yaml"
    shipped = kustomization.read_text()
    enabled = shipped.replace(
        "# components:\n#   - ../../components/keda-autoscaling",
        "components:\n  - ../../components/keda-autoscaling",
    )
    assert enabled != shipped, "the overlay no longer offers the KEDA component commented out"
    kustomization.write_text(enabled)


def bake_and_render(output_dir: Path, answers: dict[str, str]) -> Manifests:
    project = bake_project(output_dir, **answers)
    overlay = project / "deploy" / "kubernetes" / "overlays" / "production"
    without_env = kustomize(overlay)
    assert without_env.returncode != 0, "rendered without .env: secret values come from elsewhere"
    assert ".env" in without_env.stderr
    shutil.copy(overlay / ".env.example", overlay / ".env")
    shipped = kustomize(overlay)
    assert shipped.returncode == 0, shipped.stderr
    enable_keda(overlay)
    with_keda = kustomize(overlay)
    assert with_keda.returncode == 0, with_keda.stderr
    rendered = output_dir / "rendered.yaml"
    rendered.write_text(with_keda.stdout)
    return Manifests(
        project=project,
        file=rendered,
        documents=list(yaml.safe_load_all(with_keda.stdout)),
        shipped=list(yaml.safe_load_all(shipped.stdout)),
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Manifests]:
    """Render a combination on first use; every test of the module shares the result."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the Kubernetes manifests cannot be rendered")
    cache: dict[str, Manifests] = {}

    def render(name: str) -> Manifests:
        if name not in cache:
            cache[name] = bake_and_render(tmp_path_factory.mktemp(name), COMBINATIONS[name])
        return cache[name]

    return render


@pytest.fixture(scope="module", params=list(COMBINATIONS), ids=list(COMBINATIONS))
def manifests(request: pytest.FixtureRequest, rendered: Callable[[str], Manifests]) -> Manifests:
    return rendered(request.param)


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool(command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | (env or {}),
        check=False,
    )


def kubernetes_validate(file: Path, version: str) -> subprocess.CompletedProcess[str]:
    return run("kubernetes-validate", "--strict", "--quiet", "-k", version, str(file))


def keda_errors(document: Document) -> list[str]:
    validator = Draft7Validator(KEDA_SCHEMAS[document["kind"]])
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document["spec"])
    ]


def pod_specs(manifests: Manifests) -> Iterator[tuple[str, Document]]:
    for kind in ("Deployment", "Job"):
        for document in manifests.of_kind(kind):
            yield document["metadata"]["name"], document["spec"]["template"]["spec"]


def worker_option(deployment: Document, option: str) -> str:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command: list[str] = container["command"]
    (value,) = [arg.split("=", 1)[1] for arg in command if arg.startswith(option)]
    return value


def expected_workers(answers: dict[str, str]) -> set[str]:
    if answers["worker_per_queue"] == "no":
        return {"worker"}
    return {f"worker-{queue.strip().replace('_', '-')}" for queue in answers["queues"].split(",")}


def test_every_process_of_the_stack_has_its_manifest(manifests: Manifests) -> None:
    answers = manifests.answers()
    flower = {"flower"} if answers["use_flower"] == "yes" else set()

    flower_file = manifests.project / "deploy" / "kubernetes" / "base" / "flower.yaml"
    assert flower_file.exists() == bool(flower)
    deployments = {d["metadata"]["name"] for d in manifests.of_kind("Deployment")}
    assert deployments == {"api", *expected_workers(answers), "beat", *flower}
    assert [job["metadata"]["name"] for job in manifests.of_kind("Job")] == ["migrate"]
    assert {s["metadata"]["name"] for s in manifests.of_kind("Service")} == {"api", *flower}
    assert manifests.named("HorizontalPodAutoscaler", "api")["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    assert manifests.named("PodDisruptionBudget", "api")["spec"]["minAvailable"] == 1


def test_every_worker_group_together_consumes_every_queue(manifests: Manifests) -> None:
    answers = manifests.answers()
    consumed = [
        queue
        for worker in manifests.workers()
        for queue in worker_option(worker, "--queues=").split(",")
    ]

    assert sorted(consumed) == sorted(q.strip() for q in answers["queues"].split(","))


@pytest.mark.parametrize("version", OLDEST_AND_NEWEST)
def test_manifests_are_valid_for_kubernetes_strictly(manifests: Manifests, version: str) -> None:
    result = kubernetes_validate(manifests.file, version)

    assert result.returncode == 0, result.stdout + result.stderr
    # Only KEDA's kinds are left unchecked here (their schema is checked below).
    unchecked = [line for line in result.stdout.splitlines() if line.startswith("WARN")]
    assert len(unchecked) == len([d for d in manifests.documents if d["kind"] in KEDA_KINDS])
    assert all(re.search(r"kind (ScaledObject|TriggerAuthentication) ", line) for line in unchecked)


def test_keda_resources_match_kedas_schema(manifests: Manifests) -> None:
    keda = [document for document in manifests.documents if document["kind"] in KEDA_KINDS]

    assert {document["kind"] for document in keda} == set(KEDA_KINDS)
    assert {document["apiVersion"] for document in keda} == {"keda.sh/v1alpha1"}
    for document in keda:
        assert keda_errors(document) == [], document["metadata"]["name"]


def broker(manifests: Manifests) -> str:
    answers = json.loads((manifests.project / ".cookiecutter-answers.json").read_text())
    return str(answers["cookiecutter"]["broker"])


def counted_queues(triggers: list[Document], broker: str) -> list[str]:
    """What KEDA counts, in order: Redis lists, or RabbitMQ queues by their length."""
    if broker == "rabbitmq":
        assert {trigger["type"] for trigger in triggers} == {"rabbitmq"}
        assert {trigger["metadata"]["mode"] for trigger in triggers} == {"QueueLength"}
        return [trigger["metadata"]["queueName"] for trigger in triggers]
    assert {trigger["type"] for trigger in triggers} == {"redis"}
    return [trigger["metadata"]["listName"] for trigger in triggers]


def test_each_worker_deployment_is_scaled_on_everything_its_queues_hold(
    manifests: Manifests,
) -> None:
    redis_lists = [""] + [f"{Channel.sep}{step}" for step in Channel.priority_steps if step]
    # RabbitMQ keeps every priority in the queue itself (x-max-priority).
    held = {"redis": redis_lists, "rabbitmq": [""]}[broker(manifests)]

    scaled = {obj["metadata"]["name"]: obj["spec"] for obj in manifests.of_kind("ScaledObject")}
    assert set(scaled) == {worker["metadata"]["name"] for worker in manifests.workers()}
    for worker in manifests.workers():
        spec = scaled[worker["metadata"]["name"]]
        queues = worker_option(worker, "--queues=").split(",")
        assert spec["scaleTargetRef"] == {"name": worker["metadata"]["name"]}
        assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
        assert counted_queues(spec["triggers"], broker(manifests)) == [
            queue + suffix for queue in queues for suffix in held
        ]
        assert {trigger["authenticationRef"]["name"] for trigger in spec["triggers"]} == {"broker"}


def test_keda_logs_in_to_the_broker_the_workers_use(manifests: Manifests) -> None:
    (authentication,) = manifests.of_kind("TriggerAuthentication")
    overlay = manifests.project / "deploy" / "kubernetes" / "overlays" / "production"
    broker_url = read_env_file(overlay / ".env.example")["CELERY_BROKER_URL"]

    parameters = {ref["parameter"]: ref["key"] for ref in authentication["spec"]["secretTargetRef"]}
    if broker(manifests) == "rabbitmq":
        assert broker_url.startswith(("amqp://", "amqps://"))
        assert parameters == {"host": "CELERY_BROKER_URL"}
    else:
        assert broker_url.startswith(("redis://", "rediss://"))
        assert parameters == {"address": "REDIS_ADDRESS", "password": "REDIS_PASSWORD"}


def test_keda_stays_out_unless_its_component_is_added(manifests: Manifests) -> None:
    kinds = [document["kind"] for document in manifests.shipped]

    assert not set(kinds) & set(KEDA_KINDS)
    assert len(kinds) + len(manifests.of_kind("ScaledObject")) + 1 == len(manifests.documents)


def test_worker_grace_period_covers_the_longest_job_time_limit(manifests: Manifests) -> None:
    config = manifests.project / "config"
    jobs = yaml.safe_load((config / "jobs.yaml").read_text())["jobs"]
    runtime = yaml.safe_load((config / "worker.yaml").read_text())["celery"]["runtime"]
    longest = max(job["timeout"] for job in jobs.values() if "timeout" in job)
    expected = longest + runtime["shutdown_timeout_ms"] // 1000 + EXIT_MARGIN_SECONDS

    for worker in manifests.workers():
        pod = worker["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == expected, worker["metadata"]["name"]


def test_api_is_probed_on_health_and_workers_by_their_heartbeat_file(
    manifests: Manifests,
) -> None:
    (api,) = manifests.named("Deployment", "api")["spec"]["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert api["ports"][0] == {"name": "http", "containerPort": 8000}

    package = manifests.answers()["package_name"]
    for worker in manifests.workers():
        (container,) = worker["spec"]["template"]["spec"]["containers"]
        environment = {variable["name"]: variable.get("value") for variable in container["env"]}
        heartbeat = environment["WORKER_HEARTBEAT_FILE"]
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert heartbeat.startswith("/tmp/")
        assert "/tmp" in mounts  # writable beside the read-only root filesystem
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == [
                "python",
                "-m",
                f"{package}.heartbeat",
                heartbeat,
            ]


def test_beat_runs_exactly_one_replica_replaced_not_rolled(manifests: Manifests) -> None:
    beat = manifests.named("Deployment", "beat")

    # Two beats, even for the overlap of a rolling update, send every periodic job twice.
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = beat["spec"]["template"]["spec"]["containers"]
    package = manifests.answers()["package_name"]
    assert container["command"][:4] == ["celery", "-A", f"{package}.beat_main:celery_app", "beat"]
    state = "--schedule=beat-state/schedule"
    assert state in container["command"]
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert "/app/beat-state" in mounts  # writable beside the read-only root filesystem
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == [
            "python",
            "-m",
            f"{package}.heartbeat",
            "beat-state/schedule.heartbeat",
        ]


def test_beat_is_left_out_of_autoscaling(manifests: Manifests) -> None:
    targets = {
        scaled["spec"]["scaleTargetRef"]["name"] for scaled in manifests.of_kind("ScaledObject")
    }
    targets |= {
        hpa["spec"]["scaleTargetRef"]["name"]
        for hpa in manifests.of_kind("HorizontalPodAutoscaler")
    }

    assert "beat" not in targets


def test_only_the_api_port_is_reachable_from_outside_the_namespace(manifests: Manifests) -> None:
    policies = manifests.of_kind("NetworkPolicy")
    deny_all = [
        p["spec"] for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]
    ]
    assert deny_all
    assert deny_all[0]["policyTypes"] == ["Ingress"]

    opened_outside = []
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from", [])
            if not peers or any("namespaceSelector" in p or "ipBlock" in p for p in peers):
                opened_outside.append((policy["spec"]["podSelector"], rule["ports"]))
    (selector, ports), *others = opened_outside
    assert others == []
    assert selector["matchLabels"][COMPONENT] == "api"
    assert ports == [{"protocol": "TCP", "port": 8000}]


def test_api_metrics_are_on_a_port_of_their_own_admitted_from_the_namespace_only(
    manifests: Manifests,
) -> None:
    (api,) = [pod for name, pod in pod_specs(manifests) if name == "api"]
    (container,) = api["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    environment = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert environment["METRICS_PORT"] == str(ports["metrics"])
    assert ports["metrics"] != ports["http"]

    admitted = [
        rule["from"]
        for policy in manifests.of_kind("NetworkPolicy")
        if policy["spec"]["podSelector"].get("matchLabels", {}).get(COMPONENT) == "api"
        for rule in policy["spec"]["ingress"]
        if {"protocol": "TCP", "port": ports["metrics"]} in rule["ports"]
    ]
    assert admitted == [[{"podSelector": {}}]]


def test_every_pod_runs_unprivileged_read_only_with_requests_and_limits(
    manifests: Manifests,
) -> None:
    dockerfile = (manifests.project / "Dockerfile").read_text()
    (image_user,) = re.findall(r"^USER (\d+):\d+$", dockerfile, flags=re.MULTILINE)

    for name, pod in pod_specs(manifests):
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == int(image_user), name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, name
            assert "/tmp" in [mount["mountPath"] for mount in container["volumeMounts"]], name


def test_deployments_roll_out_only_after_the_migrations_job(manifests: Manifests) -> None:
    def first_phase(document: Document) -> bool:
        return "rollout" not in document["metadata"].get("labels", {})

    for deployment in manifests.of_kind("Deployment"):
        labels = deployment["metadata"]["labels"]
        assert {key: labels[key] for key in AFTER_MIGRATIONS} == AFTER_MIGRATIONS
    first = {(d["kind"], d["metadata"]["name"]) for d in manifests.documents if first_phase(d)}
    assert not {kind for kind, _ in first} & {"Deployment"}
    (job,) = manifests.of_kind("Job")
    assert ("Job", "migrate") in first
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["alembic", "upgrade", "head"]
    needed = {
        ("ServiceAccount", job["spec"]["template"]["spec"]["serviceAccountName"]),
        ("Namespace", job["metadata"]["namespace"]),
        *(("ConfigMap", s["configMapRef"]["name"]) for s in container["envFrom"]),
        *(("Secret", e["valueFrom"]["secretKeyRef"]["name"]) for e in container["env"]),
    }
    assert needed <= first


def referenced_secret_keys(manifests: Manifests) -> set[str]:
    keys = set()
    for _, pod in pod_specs(manifests):
        for container in pod["containers"]:
            for variable in container.get("env", []):
                if "secretKeyRef" in variable.get("valueFrom", {}):
                    keys.add(variable["valueFrom"]["secretKeyRef"]["key"])
        for volume in pod.get("volumes", []):
            keys.update(item["key"] for item in volume.get("secret", {}).get("items", []))
    for authentication in manifests.of_kind("TriggerAuthentication"):
        keys.update(ref["key"] for ref in authentication["spec"]["secretTargetRef"])
    return keys


def test_every_secret_the_manifests_read_comes_from_the_overlays_env(manifests: Manifests) -> None:
    (secret,) = manifests.of_kind("Secret")
    overlay = manifests.project / "deploy" / "kubernetes" / "overlays" / "production"

    referenced = referenced_secret_keys(manifests)
    assert referenced <= set(read_env_file(overlay / ".env.example"))
    assert referenced <= set(secret["data"])
    # The generated name carries a hash of the values: a new value rolls the pods.
    assert re.fullmatch(r"service-secrets-[a-z0-9]{10}", secret["metadata"]["name"])


def test_the_overlays_env_is_never_committed(bake: Bake) -> None:
    project = bake()
    subprocess.run(["git", "init", "-q", str(project)], check=True)

    ignored = subprocess.run(
        [
            "git",
            "-C",
            str(project),
            "check-ignore",
            "-q",
            "deploy/kubernetes/overlays/production/.env",
        ],
        check=False,
    )
    example = subprocess.run(
        [
            "git",
            "-C",
            str(project),
            "check-ignore",
            "-q",
            "deploy/kubernetes/overlays/production/.env.example",
        ],
        check=False,
    )

    assert ignored.returncode == 0
    assert example.returncode == 1


@pytest.mark.parametrize("name", CHECKOV_COMBINATIONS)
def test_checkov_fails_nothing_beyond_the_skip_list(
    rendered: Callable[[str], Manifests], name: str
) -> None:
    manifests = rendered(name)

    result = run(
        "checkov",
        "--file",
        str(manifests.file),
        "--framework",
        "kubernetes",
        "--skip-download",
        "--output",
        "json",
        env={"BC_SKIP_MAPPING": "TRUE"},
    )

    report = json.loads(result.stdout)
    assert report["summary"]["passed"] > 0, result.stderr
    failed = {check["check_id"] for check in report["results"]["failed_checks"]}
    # Every failure is on the list, and every entry of the list is still needed.
    assert failed == set(CHECKOV_SKIPS), json.dumps(report["results"]["failed_checks"])[:3000]


def broken_api(mutate: Callable[[Document], None]) -> Callable[[Document], None]:
    def apply(document: Document) -> None:
        if document["kind"] == "Deployment" and document["metadata"]["name"] == "api":
            mutate(document)

    return apply


def replicas_as_words(deployment: Document) -> None:
    deployment["spec"]["replicas"] = "two"


def misspelt_pull_policy(deployment: Document) -> None:
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"


@pytest.mark.parametrize(
    ("mutate", "reported"),
    [
        (replicas_as_words, "'two' is not of type 'integer'"),
        (misspelt_pull_policy, "imagePullPolcy"),
    ],
    ids=["wrong-type", "unknown-field"],
)
def test_kubernetes_validate_rejects_a_broken_manifest(
    rendered: Callable[[str], Manifests],
    tmp_path: Path,
    mutate: Callable[[Document], None],
    reported: str,
) -> None:
    documents = copy.deepcopy(rendered("one-worker-with-flower").documents)
    for document in documents:
        broken_api(mutate)(document)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all(documents))

    for version in OLDEST_AND_NEWEST:
        result = kubernetes_validate(broken, version)
        assert result.returncode != 0
        assert reported in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("field", "value", "reported"),
    [
        ("maxReplicaCount", "5", "'5' is not of type 'integer'"),
        ("maxReplicas", 5, "'maxReplicas' was unexpected"),
        (
            "triggers",
            [{"type": "redis", "metadata": {"listLength": 20}}],
            "20 is not of type 'string'",
        ),
    ],
    ids=["wrong-type", "unknown-field", "number-in-trigger-metadata"],
)
def test_keda_schema_rejects_a_broken_scaled_object(
    rendered: Callable[[str], Manifests], field: str, value: Any, reported: str
) -> None:
    scaled_object = copy.deepcopy(rendered("one-worker-with-flower").of_kind("ScaledObject")[0])
    scaled_object["spec"][field] = value

    errors = keda_errors(scaled_object)

    assert any(reported in error for error in errors), errors


def target_of(trigger: Document) -> str:
    """How the README writes a trigger's target: per Redis list or per RabbitMQ queue."""
    if trigger["type"] == "rabbitmq":
        return f"queue / {trigger['metadata']['value']}"
    return f"list / {trigger['metadata']['listLength']}"


def test_readme_states_the_numbers_the_manifests_use(manifests: Manifests) -> None:
    readme = " ".join((manifests.project / "README.md").read_text().split())
    api = manifests.named("HorizontalPodAutoscaler", "api")["spec"]
    (scaled, *_) = [obj["spec"] for obj in manifests.of_kind("ScaledObject")]
    (worker, *_) = manifests.workers()
    pod = worker["spec"]["template"]["spec"]
    (concurrency,) = [
        e["value"] for e in pod["containers"][0]["env"] if e["name"] == "WORKER_CONCURRENCY"
    ]

    workers = len(manifests.workers())
    connections = API_POOL_CONNECTIONS * api["maxReplicas"]
    connections += int(concurrency) * scaled["maxReplicaCount"] * workers
    budget = (
        f"{API_POOL_CONNECTIONS} x {api['maxReplicas']} + {concurrency} x "
        f"{scaled['maxReplicaCount']} x {workers} = {connections}"
    )

    for statement in (
        f"{api['minReplicas']} to {api['maxReplicas']}, autoscaled",
        f"CPU ({api['metrics'][0]['resource']['target']['averageUtilization']} %",
        f"`ceil(longest {target_of(scaled['triggers'][0])})`",
        f"at least {scaled['minReplicaCount']} and at most {scaled['maxReplicaCount']}",
        f"every {scaled['pollingInterval']} s",
        f"after {scaled['cooldownPeriod'] // 60} quiet minutes",
        f"`terminationGracePeriodSeconds` ({pod['terminationGracePeriodSeconds']} s",
        f"`WORKER_CONCURRENCY` ({concurrency})",
        budget,
    ):
        assert statement in readme
