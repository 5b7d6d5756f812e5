"""The real registry clients (skopeo, podman, buildah) run as subprocesses, and the server's
access log read back, so that a test can see which requests a client made.

Each wrapper passes the flags a plain-HTTP registry and an unprivileged, daemonless run need;
podman and buildah get storage of their own (``--root``/``--runroot`` under the test's
directory, the vfs driver), so that tests share nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pytest

__all__ = [
    "AccessLine",
    "Buildah",
    "CommandFailed",
    "Podman",
    "Skopeo",
    "access_log",
    "host_of",
    "require",
    "run",
    "wait_for_log",
]

TIMEOUT = 90.0
# The Debian package that provides each client.
PACKAGES = {"skopeo": "skopeo", "podman": "podman", "buildah": "buildah"}


def require(binary: str) -> str:
    """The path of ``binary``, or skip the test naming the Debian package that installs it."""
    path = shutil.which(binary)
    if path is None:
        package = PACKAGES.get(binary, binary)
        pytest.skip(f"{binary} is not installed (apt-get install {package})")
    return path


def host_of(url: str) -> str:
    """``127.0.0.1:PORT`` from ``http://127.0.0.1:PORT``: how the clients name a registry."""
    return url.split("://", 1)[1].rstrip("/")


class CommandFailed(AssertionError):
    def __init__(self, args: Sequence[str], completed: subprocess.CompletedProcess[bytes]) -> None:
        self.completed = completed
        super().__init__(
            f"{shlex.join(args)} exited with {completed.returncode}\n"
            f"stdout: {completed.stdout.decode(errors='replace')[-3000:]}\n"
            f"stderr: {completed.stderr.decode(errors='replace')[-3000:]}"
        )


def run(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    completed = subprocess.run(
        list(args),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )
    if check and completed.returncode != 0:
        raise CommandFailed(args, completed)
    return completed


def _client_env(workdir: Path) -> dict[str, str]:
    """The environment minus anything that would point a client at a developer's own
    credentials or configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "CONTAINERS_"))}
    # Read by the clients themselves (containers-auth.json), never by the server.
    auth = workdir / "auth.json"
    if not auth.exists():
        auth.write_text('{"auths": {}}')
    env["REGISTRY_AUTH_FILE"] = str(auth)
    env["TMPDIR"] = str(workdir / "tmp")
    (workdir / "tmp").mkdir(exist_ok=True)
    return env


class Skopeo:
    """``skopeo`` against one registry host (``127.0.0.1:PORT``) over plain HTTP."""

    def __init__(self, host: str, workdir: Path) -> None:
        self.binary = require("skopeo")
        self.host = host
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = _client_env(workdir)

    def ref(self, repo: str, reference: str) -> str:
        """``docker://HOST/REPO:TAG``, or ``...@sha256:...`` for a digest."""
        sep = "@" if ":" in reference else ":"
        return f"docker://{self.host}/{repo}{sep}{reference}"

    def __call__(self, *args: str) -> bytes:
        return run([self.binary, "--insecure-policy", *args], env=self.env).stdout

    def copy(self, source: str, dest: str, *flags: str) -> bytes:
        return self(
            "copy", "--src-tls-verify=false", "--dest-tls-verify=false", *flags, source, dest
        )

    def inspect(self, ref: str, *flags: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self("inspect", "--tls-verify=false", *flags, ref))
        return doc

    def inspect_raw(self, ref: str) -> bytes:
        return self("inspect", "--tls-verify=false", "--raw", ref)

    def list_tags(self, ref: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self("list-tags", "--tls-verify=false", ref))
        return doc

    def delete(self, ref: str) -> None:
        self("delete", "--tls-verify=false", ref)


class _Storage:
    """A containers-storage of the test's own, used through one CLI."""

    binary_name = ""

    def __init__(self, workdir: Path, runroot: Path | None = None) -> None:
        self.binary = require(self.binary_name)
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.root = workdir / "root"
        self.runroot = runroot or workdir / "run"
        self.env = _client_env(workdir)
        # Our own storage.conf, so that a machine's overlay options do not apply.
        conf = workdir / "storage.conf"
        conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.root}"\nrunroot = "{self.runroot}"\n'
        )
        self.env["CONTAINERS_STORAGE_CONF"] = str(conf)

    @classmethod
    @contextlib.contextmanager
    def session(cls, workdir: Path) -> Iterator[Self]:
        """One with a short runroot of its own, removed afterwards: podman refuses a runroot
        path longer than 50 characters, and ``tmp_path`` is often longer."""
        with tempfile.TemporaryDirectory(prefix="dockyard-e2e-") as runroot:
            yield cls(workdir, Path(runroot))

    def global_flags(self) -> list[str]:
        return ["--root", str(self.root), "--runroot", str(self.runroot), "--storage-driver", "vfs"]

    def __call__(self, *args: str, cwd: Path | None = None) -> bytes:
        return run([self.binary, *self.global_flags(), *args], env=self.env, cwd=cwd).stdout

    def text(self, *args: str) -> str:
        return self(*args).decode().strip()


class Podman(_Storage):
    """Daemonless podman; make one with :meth:`session` (its runroot must be short)."""

    binary_name = "podman"

    def global_flags(self) -> list[str]:
        return [
            *super().global_flags(),
            "--tmpdir",
            str(self.workdir / "libpod"),
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ]


class Buildah(_Storage):
    binary_name = "buildah"


@dataclass(frozen=True)
class AccessLine:
    method: str
    path: str
    status: int
    query: str = ""
    """The query string, where the server logs one (Granian's default format does not)."""


# Granian's default access log line: [time] addr - "METHOD PATH PROTOCOL" STATUS MS
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


def access_log(*paths: Path) -> list[AccessLine]:
    """Every request the server logged in ``paths`` (its stdout and stderr: where Granian
    writes the access log depends on its version)."""
    out = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            match = _ACCESS.search(line)
            if match:
                target, _, query = match["path"].partition("?")
                out.append(AccessLine(match["method"], target, int(match["status"]), query))
    return out


def wait_for_log(
    paths: Sequence[Path],
    ready: Callable[[list[AccessLine]], bool],
    *,
    timeout: float = 10.0,
    settle: float = 0.3,
) -> list[AccessLine]:
    """The access log once ``ready`` holds for it and no line has been added for ``settle``
    seconds: a worker writes its line just after the response, possibly after the client
    has moved on."""
    deadline = time.monotonic() + timeout
    lines = access_log(*paths)
    while time.monotonic() < deadline:
        if ready(lines):
            time.sleep(settle)
            again = access_log(*paths)
            if len(again) == len(lines):
                return lines
            lines = again
            continue
        time.sleep(0.05)
        lines = access_log(*paths)
    raise AssertionError(f"the access log did not reach the expected state: {lines[-40:]}")
