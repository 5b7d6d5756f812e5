"""Real registry server processes for the end-to-end suite.

``DOCKYARD_E2E_IMPL=distribution`` runs the same tests against CNCF Distribution
(``docker-registry serve``) instead of ``dockyard serve``, to compare behaviour.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .registry import RegistryClient

IMPL = os.environ.get("DOCKYARD_E2E_IMPL", "dockyard")
if IMPL not in ("dockyard", "distribution"):
    raise pytest.UsageError(f"DOCKYARD_E2E_IMPL must be dockyard or distribution, not {IMPL!r}")
DISTRIBUTION = IMPL == "distribution"
START_TIMEOUT = 30.0
# Keys Distribution does not know; dropped from its config.
DOCKYARD_ONLY_KEYS = (("http", "workers"),)


def pytest_report_header() -> str:
    return f"e2e registry implementation: {IMPL}"


def merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base``; a ``None`` value removes the key."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _command(config_path: Path) -> list[str]:
    if DISTRIBUTION:
        binary = shutil.which("docker-registry")
        if binary is None:
            pytest.skip("docker-registry (CNCF Distribution) is not installed")
        return [binary, "serve", str(config_path)]
    return [sys.executable, "-m", "dockyard", "serve", str(config_path)]


class RegistryServer:
    """One registry process; ``url`` stays the same across restarts."""

    def __init__(self, workdir: Path, config: dict[str, Any], env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.config = config
        self.env = dict(env)
        self.config_path = workdir / "config.yml"
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        self.process: subprocess.Popen[bytes] | None = None
        addr = self.env.get("REGISTRY_HTTP_ADDR") or config["http"]["addr"]
        scheme = "https" if "tls" in config.get("http", {}) else "http"
        self.url = f"{scheme}://{addr}"
        rootdirectory = (
            self.env.get("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY")
            or config["storage"].get("filesystem", {}).get("rootdirectory")
            or str(workdir)
        )
        self.root = Path(rootdirectory)

    # Lifecycle ------------------------------------------------------------------------------
    def start(self, ready: tuple[int, ...] = (200, 401)) -> None:
        """Start the server and wait until ``GET /v2/`` answers one of ``ready``."""
        assert self.process is None, "already running"
        written = copy.deepcopy(self.config)
        if DISTRIBUTION:
            for section, key in DOCKYARD_ONLY_KEYS:
                written.get(section, {}).pop(key, None)
        self.config_path.write_text(yaml.safe_dump(written))
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env.update(self.env)
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                _command(self.config_path),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
                # Its own process group, so that a kill reaches every worker it forks.
                start_new_session=True,
            )
        self._wait_ready(ready)

    def _wait_ready(self, ready: tuple[int, ...]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(verify=False, timeout=2.0) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    self.process = None
                    pytest.fail(f"registry exited at start-up:\n{self.stderr()}")
                try:
                    if http.get(f"{self.url}/v2/").status_code in ready:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.kill()
        pytest.fail(f"registry did not answer GET /v2/ within {START_TIMEOUT}s:\n{self.stderr()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the process lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        self._kill_group()

    def kill(self) -> None:
        """SIGKILL the server and all its workers, with no chance to clean up."""
        if self.process is None:
            return
        self._kill_group()

    def _kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # Diagnostics ----------------------------------------------------------------------------
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-8000:]
        except FileNotFoundError:
            return ""

    def client(self, **kwargs: Any) -> RegistryClient:
        return RegistryClient(self.url, **kwargs)


def base_config(root: Path, port: int) -> dict[str, Any]:
    return {
        "version": 0.1,
        "storage": {
            "filesystem": {"rootdirectory": str(root)},
            "delete": {"enabled": True},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            # A fixed secret so that upload state survives a restart (Distribution signs it).
            "secret": secrets.token_hex(16),
            "workers": 2,
        },
    }


ServerFactory = Callable[..., RegistryServer]


def _factory(
    workdir_for: Callable[[], Path], port_for: Callable[[], int]
) -> Generator[ServerFactory, None, None]:
    servers: list[RegistryServer] = []

    def start(
        config: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        root: Path | None = None,
        replace: bool = False,
        run: bool = True,
    ) -> RegistryServer:
        """A new server; ``config`` is merged into the defaults (or replaces them)."""
        workdir = workdir_for()
        defaults = base_config(root or workdir / "data", port_for())
        full = copy.deepcopy(dict(config or {})) if replace else merge(defaults, config or {})
        server = RegistryServer(workdir, full, env or {})
        servers.append(server)
        if run:
            server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def registry_factory(
    tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[ServerFactory]:
    counter = iter(range(1000))

    def workdir() -> Path:
        path = tmp_path / f"server{next(counter)}"
        path.mkdir()
        return path

    yield from _factory(workdir, unused_tcp_port_factory)


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[RegistryServer]:
    """One default server shared by a module's tests (they use distinct repositories)."""
    factory = _factory(lambda: tmp_path_factory.mktemp("registry"), unused_tcp_port_factory)
    start = next(factory)
    yield start()
    factory.close()


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[RegistryClient]:
    with registry.client() as c:
        yield c


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name of this test's own, valid under the spec's grammar."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80].strip("-")
    return f"e2e/{name}-{secrets.token_hex(3)}"
