"""A Docker engine and the stand-in base images for running generated stacks in containers.

No image registry is reachable where these tests run, so the official images the generated
files name (python, postgres, redis, flower, rabbitmq) are built here from Debian's packages under
those exact names (``tests/images/``), and the project's own Dockerfile and compose file run
unchanged. The engine is Debian's ``docker.io``; installed and started when missing, and a
daemon started here is stopped here, by its PID.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parent / "images"
PACKAGES = {"docker": "docker.io", "dockerd": "docker.io"} | {
    "docker-compose": "docker-compose",
    "debootstrap": "debootstrap",
}
BASE_IMAGE = "loom-test/debian:bookworm"
# A label with a digest of what built a stand-in: an edited Dockerfile builds again.
DIGEST_LABEL = "org.cookiecutter-loom.test-stand-in"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
ENABLE = (
    "run the tests as root on Debian or Ubuntu (apt-get), as CI does, to install and start "
    "the engine"
)


def run(
    *command: str, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def checked(*command: str, timeout: float = 600) -> str:
    result = run(*command, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def install_missing_packages() -> None:
    """Debian's docker.io, docker-compose and debootstrap, when a command is missing."""
    missing = sorted(
        {package for command, package in PACKAGES.items() if not shutil.which(command)}
    )
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"real-container tests skipped: {', '.join(missing)} missing; {ENABLE}")
    environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        result = run(*command, env=environment)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"


def engine_answers() -> bool:
    return run("docker", "info", timeout=30).returncode == 0


@contextmanager
def docker_engine(log_dir: Path) -> Iterator[None]:
    """A Docker daemon that answers: the one running, else ``dockerd`` started (and stopped)
    here."""
    install_missing_packages()
    if engine_answers():
        yield
        return
    if os.geteuid() != 0:
        pytest.skip(f"real-container tests skipped: no Docker daemon answers; {ENABLE}")
    log_path = log_dir / "dockerd.log"
    with log_path.open("ab") as log:
        daemon = subprocess.Popen(
            ["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while not engine_answers():
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield
    finally:
        if daemon.poll() is None:
            _stop(daemon)


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM: dockerd stops its containers and its containerd, then exits."""
    daemon.terminate()
    try:
        daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait(timeout=30)


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (its ``URIs:`` line)."""
    match = re.search(r"^URIs:\s*(\S+)", DEBIAN_SOURCES.read_text(), flags=re.MULTILINE)
    assert match, f"no URIs: line in {DEBIAN_SOURCES}"
    return match[1]


def image_label(name: str) -> str | None:
    """The stand-in digest label of image ``name``; None when there is no such image."""
    result = run(
        "docker", "image", "inspect", "-f", f'{{{{index .Config.Labels "{DIGEST_LABEL}"}}}}', name
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_base_image(work: Path) -> None:
    """A minimal Debian bookworm made by debootstrap from this machine's mirror."""
    if image_label(BASE_IMAGE) is not None:
        return
    root = work / "debian-root"
    checked("debootstrap", "--variant=minbase", "bookworm", str(root), debian_mirror())
    for package in (root / "var/cache/apt/archives").glob("*.deb"):
        package.unlink()  # downloaded once to install, dead weight in every image after
    archive = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        ["docker", "import", "-", BASE_IMAGE],
        stdin=archive.stdout,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert archive.wait(timeout=60) == 0
    assert imported.returncode == 0, imported.stderr.decode()
    shutil.rmtree(root)


def digest(directory: Path, *extra: str) -> str:
    content = hashlib.sha256("\0".join(extra).encode())
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            content.update(path.name.encode() + path.read_bytes())
    return content.hexdigest()[:16]


def build_stand_in(name: str, source: Path, context: Path, **build_args: str) -> None:
    """Build ``tests/images/<source>`` as image ``name`` unless it is there and current."""
    wanted = digest(source, *sorted(f"{key}={value}" for key, value in build_args.items()))
    if image_label(name) == wanted:
        return
    for path in source.iterdir():
        shutil.copy2(path, context / path.name)
    args = [part for key, value in build_args.items() for part in ("--build-arg", f"{key}={value}")]
    checked(
        "docker",
        "build",
        "--quiet",
        "--label",
        f"{DIGEST_LABEL}={wanted}",
        "-t",
        name,
        *args,
        str(context),
    )


def pyenv_interpreter(version: str) -> Path:
    """The newest pyenv build of ``version`` (e.g. 3.12) on this machine."""
    pyenv = shutil.which("pyenv")
    root = Path(checked("pyenv", "root").strip()) if pyenv else Path.home() / ".pyenv"
    builds = [
        path
        for path in (root / "versions").glob(f"{version}.*")
        if re.fullmatch(rf"{re.escape(version)}\.\d+", path.name)
    ]
    if not builds:
        pytest.fail(f"no Python {version} under {root / 'versions'} for the python stand-in image")
    return max(builds, key=lambda path: int(path.name.rsplit(".", 1)[1]))


def python_image(version: str) -> str:
    return f"python:{version}-slim-bookworm"


def ensure_stand_in_images(python_versions: set[str]) -> None:
    """Every image the generated files name, for the given project Python versions. After
    the common Debian base, the builds run side by side: each mostly waits on the mirror or
    the package index, and only flower needs another stand-in (python) first."""
    with tempfile.TemporaryDirectory(prefix="stand-ins-") as scratch:
        work = Path(scratch)
        ensure_base_image(work)
        newest = max(python_versions, key=lambda version: tuple(map(int, version.split("."))))

        def python_then_flower() -> None:
            for version in sorted(python_versions):
                build_python_image(version, work)
            build_from_base(work, "mher/flower:2.0", "flower", PYTHON_IMAGE=python_image(newest))

        def from_debian(name: str, source: str) -> Callable[[], None]:
            return partial(build_from_base, work, name, source, BASE=BASE_IMAGE)

        builds = [
            python_then_flower,
            from_debian("postgres:16-alpine", "postgres"),
            from_debian("redis:7-alpine", "redis"),
            from_debian("rabbitmq:3-management-alpine", "rabbitmq"),
        ]
        with ThreadPoolExecutor(max_workers=len(builds)) as pool:
            for finished in [pool.submit(build) for build in builds]:
                finished.result()  # a failed build's assertion, raised here


def build_python_image(version: str, work: Path) -> None:
    """The python stand-in for one version: this machine's build of that Python."""
    interpreter = pyenv_interpreter(version)
    context = work / f"python-{version}"
    context.mkdir()
    # Hard links when on the same file system: the interpreter is not copied twice.
    shutil.copytree(interpreter, context / "python", copy_function=_link_or_copy, symlinks=True)
    shutil.copy(
        os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
        context / "ca-bundle.crt",
    )
    build_stand_in(
        python_image(version),
        IMAGES / "python",
        context,
        BASE=BASE_IMAGE,
        PYTHON_HOME=str(interpreter),
    )


def build_from_base(work: Path, name: str, source: str, **build_args: str) -> None:
    context = work / source
    context.mkdir()
    build_stand_in(name, IMAGES / source, context, **build_args)


def _link_or_copy(source: str, target: str) -> object:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target
