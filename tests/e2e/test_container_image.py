"""The Dockyard image, built from ``deploy/Containerfile`` and run as the docs say.

No base image can be pulled here, so the base is made on the spot: a minimal Debian of the
host's release with python3 and its venv module, from ``debootstrap`` (what the Containerfile's
``BASE`` argument asks for). buildah builds the image on it; podman runs it like ``registry:2``
(a published port, a data volume, ``REGISTRY_*`` overrides), skopeo pushes and pulls through it,
and ``podman stop`` shows that SIGTERM ends it cleanly.

The build's ``pip`` gets this machine's package sources (its pip configuration, with the
files it names mounted read-only), as a user behind a mirror would pass them.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from .clients import Skopeo, require
from .conftest import DISTRIBUTION
from .images import Layout, build_image, write_layout

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="Dockyard's own image")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = "localhost/dockyard-test-base:debian"
IMAGE = "localhost/dockyard:e2e"
DATA_OWNER = 65532  # the image's USER
BUILD_TIMEOUT = 900.0
# pip settings whose values may name files or directories of this machine.
PIP_KEYS = ("index-url", "extra-index-url", "find-links", "cert", "constraint", "trusted-host")


def _run(
    args: list[str], *, timeout: float = 120.0, stdin: IO[bytes] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, stdin=stdin, check=False
    )
    if check:
        assert done.returncode == 0, f"{args[:3]} exited {done.returncode}\n{done.stderr[-4000:]}"
    return done


@dataclass(frozen=True)
class Engine:
    """podman and buildah over one containers-storage of the test's own (overlay)."""

    root: Path
    runroot: Path

    @property
    def storage(self) -> list[str]:
        return ["--root", str(self.root), "--runroot", str(self.runroot)]

    def podman(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        """Its output; with ``check`` False, its standard error and exit status instead."""
        done = _run(
            [
                require("podman"),
                *self.storage,
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
                # crun 1.8 refuses hybrid cgroup hierarchies, which this kind of machine has.
                "--runtime",
                require("runc"),
                *args,
            ],
            timeout=timeout,
            check=check,
        )
        return done.stdout if check else f"exit {done.returncode}\n{done.stderr}"

    def buildah(self, *args: str) -> None:
        _run([require("buildah"), *self.storage, *args], timeout=BUILD_TIMEOUT)


def _suite() -> str:
    """The host's Debian release: its mirror (or cache) surely has it."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.partition("=")[2].strip('"')
    pytest.skip("not a Debian host: debootstrap needs a release name")


def _mirror() -> str:
    """The host's own Debian mirror (from its apt sources), else deb.debian.org."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def _pip_settings() -> tuple[list[str], set[Path]]:
    """This machine's pip configuration as ``pip.conf`` lines, and the local paths it names."""
    shown = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout
    settings: dict[str, str] = {}
    for line in shown.splitlines():
        match = re.fullmatch(r"[^.]+\.([a-z-]+)='(.*)'", line)
        if match and match.group(1) in PIP_KEYS:
            settings[match.group(1)] = match.group(2)
    paths: set[Path] = set()
    for value in settings.values():
        for word in value.split():
            path = Path(word.removeprefix("file://"))
            if path.is_absolute() and path.exists():
                # A file:// "simple" index links to files beside it: mount its parent.
                paths.add(path.parent if path.name == "simple" else path)
    return [f"{key} = {value}" for key, value in settings.items()], paths


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ulimits() -> list[str]:
    """Limits at or below this process's own: podman's defaults ask for more than an engine
    without CAP_SYS_RESOURCE may set."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    for tool, package in (("debootstrap", "debootstrap"), ("runc", "runc")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install {package})")
    if os.geteuid() != 0:
        pytest.skip("debootstrap and a rootful podman need root")
    work = tmp_path_factory.mktemp("image")
    # podman refuses a runroot path longer than 50 characters.
    with contextlib.ExitStack() as stack:
        runroot = Path(stack.enter_context(_short_dir()))
        made = Engine(work / "storage", runroot)
        try:
            yield made
        finally:
            # Unmounts and removes every container, image and layer of this storage.
            subprocess.run(
                [require("podman"), *made.storage, "system", "reset", "--force"],
                capture_output=True,
                timeout=120,
                check=False,
            )


@contextlib.contextmanager
def _short_dir() -> Iterator[str]:
    path = Path("/tmp") / f"dockyard-image-{secrets.token_hex(4)}"
    path.mkdir()
    try:
        yield str(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("build")
    rootfs = work / "rootfs"
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv",
            _suite(),
            str(rootfs),
            _mirror(),
        ],
        timeout=BUILD_TIMEOUT,
    )
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        podman = [require("podman"), *engine.storage]
        _run([*podman, "import", "-", BASE], timeout=300, stdin=tar.stdout)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        assert tar.wait(timeout=60) == 0
    shutil.rmtree(rootfs)
    lines, paths = _pip_settings()
    pip_conf = work / "pip.conf"
    pip_conf.write_text("\n".join(["[global]", *lines, ""]))
    mounts = [f"-v={pip_conf}:/etc/pip.conf:ro"]
    mounts += [f"-v={path}:{path}:ro" for path in sorted(paths)]
    engine.buildah(
        "bud",
        "--isolation",
        "chroot",
        "--pull-never",
        "--ignorefile",
        str(DEPLOY / "Containerfile.dockerignore"),
        "--build-arg",
        f"BASE={BASE}",
        *mounts,
        "-f",
        str(DEPLOY / "Containerfile"),
        "-t",
        IMAGE,
        str(ROOT),
    )
    return IMAGE


def _wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"{url} not ready in {timeout:g} s"
        time.sleep(0.2)


def test_the_image_serves_like_registry2(engine: Engine, image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, DATA_OWNER, DATA_OWNER)  # as the Containerfile says of a host directory
    port = _free_port()
    name = f"dockyard-e2e-{secrets.token_hex(4)}"
    engine.podman(
        "run",
        "-d",
        "--name",
        name,
        *_ulimits(),
        "-p",
        f"127.0.0.1:{port}:5000",
        "-v",
        f"{data}:/var/lib/registry",
        "-e",
        "REGISTRY_STORAGE_DELETE_ENABLED=true",
        image,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/v2/")
        pushed = build_image([{"hello.txt": b"from the dockyard image\n"}])
        layout = write_layout(tmp_path / "in", {"v1": pushed})
        skopeo = Skopeo(f"127.0.0.1:{port}", tmp_path / "skopeo")
        skopeo.copy(f"oci:{layout}:v1", skopeo.ref("library/hello", "v1"))
        skopeo.copy(skopeo.ref("library/hello", "v1"), f"oci:{tmp_path / 'out'}:v1")
        out = Layout(tmp_path / "out")
        assert out.descriptor("v1")["digest"] == pushed.digest
        assert out.digests() == {pushed.digest, *pushed.blobs}
        # The REGISTRY_* override reached the image's config: deletes are on.
        deleted = httpx.delete(f"{base}/v2/library/hello/manifests/{pushed.digest}")
        assert deleted.status_code == 202, deleted.text
        # Blobs and the SQLite metadata live in the volume, written by the image's user.
        for path in (data / "dockyard.db", data / "blobs"):
            assert path.exists(), sorted(p.name for p in data.iterdir())
            assert path.stat().st_uid == DATA_OWNER
    finally:
        logs = engine.podman("logs", name)
        engine.podman("stop", "--time", "30", name, timeout=60)
    # SIGTERM (the image's STOPSIGNAL) ended it cleanly, not the SIGKILL after the grace.
    assert engine.podman("inspect", "--format", "{{.State.ExitCode}}", name).strip() == "0"
    assert "Traceback" not in logs, logs


def test_the_image_checks_its_config(engine: Engine, image: str) -> None:
    check = [image, "check-config", "/etc/dockyard/config.yml"]
    assert engine.podman("run", "--rm", *_ulimits(), *check).strip() == "ok"
    bad = ["run", "--rm", *_ulimits(), "-e", "REGISTRY_HTTP_ADDR=:99999", *check]
    refused = engine.podman(*bad, check=False)
    assert refused.startswith("exit 2\n"), refused
    assert "http.addr" in refused, refused
    assert "REGISTRY_HTTP_ADDR" in refused, refused
