"""Start and stop each registry with equivalent configs, each in a fresh temp dir on a free port.

Both get filesystem storage under their temp dir (or, with ``--storage s3``, a bucket of their
own on one shared S3-compatible server, and Dockyard a PostgreSQL database), delete enabled,
and quiet logs (so neither pays for writing an access log line per request). Distribution also
gets the in-memory blob descriptor cache that its packaged and container-image configs ship
with. Dockyard runs with its default number of workers.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from backends import S3Storage, StoreCpu
from registry import RegistryClient

__all__ = ["RunningServer", "ServerSpec", "distribution", "dockyard"]

HOST = "127.0.0.1"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0

# The filesystem root (also where Dockyard keeps its SQLite database by default), the listen
# address, and the S3 storage if any.
ConfigMaker = Callable[[Path, str, S3Storage | None], dict[str, Any]]


def _common_config(root: Path, addr: str, s3: S3Storage | None) -> dict[str, Any]:
    driver = {"filesystem": {"rootdirectory": str(root)}} if s3 is None else {"s3": s3.section()}
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {**driver, "delete": {"enabled": True}},
        "http": {"addr": addr},
    }


def _dockyard_config(root: Path, addr: str, s3: S3Storage | None) -> dict[str, Any]:
    config = _common_config(root, addr, s3)
    if s3 is not None:
        if not s3.redirect:  # redirects are Dockyard's default
            config["storage"]["redirect"] = {"disable": True}
        if s3.database is not None:
            config["database"] = {"url": s3.database}
    return config


def _distribution_config(root: Path, addr: str, s3: S3Storage | None) -> dict[str, Any]:
    config = _common_config(root, addr, s3)
    config["storage"]["cache"] = {"blobdescriptor": "inmemory"}
    if s3 is not None:
        config["storage"]["redirect"] = {"disable": not s3.redirect}
    return config


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    command: tuple[str, ...]  # the config file's path is appended
    config: ConfigMaker
    s3: S3Storage | None = None
    # CPU of the stores the server drives (S3 server, database backends).
    stores: StoreCpu | None = None
    # Dockyard's database.url with filesystem storage (with S3, the S3Storage names it).
    database: str | None = None


def dockyard(command: str | None = None) -> ServerSpec:
    argv = shlex.split(command) if command else [sys.executable, "-m", "dockyard", "serve"]
    return ServerSpec("Dockyard", tuple(argv), _dockyard_config)


def distribution(command: str | None = None) -> ServerSpec:
    argv = shlex.split(command) if command else ["docker-registry", "serve"]
    return ServerSpec("Distribution", tuple(argv), _distribution_config)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    # REGISTRY_* variables would override either server's config, and AWS_* ones its S3
    # client's (Distribution refuses to start with AWS_CA_BUNDLE set, for one).
    return {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "AWS_"))}


def remove_tree(path: Path) -> None:
    """Remove a directory tree, ignoring errors. ``rm -rf`` takes half the time of
    ``shutil.rmtree`` on a tree of a million small files (a registry filled for scaling)."""
    if shutil.which("rm") is not None:
        subprocess.run(["rm", "-rf", "--", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)  # whatever rm left, or all without rm


class ServerFailed(Exception):
    """The server did not start, or died."""


class RunningServer:
    """A registry process in its own temp dir and session; a context manager."""

    def __init__(
        self, spec: ServerSpec, parent: Path | None = None, keep_log: Path | None = None
    ) -> None:
        self.spec = spec
        self.keep_log = keep_log
        self.host = HOST
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{spec.name.lower()}-", dir=parent))
        self.log_path = self.dir / "server.log"
        self.root = self.dir / "storage"
        config = spec.config(self.root, f"{HOST}:{self.port}", spec.s3)
        if spec.database is not None:
            config["database"] = {"url": spec.database}
        self.config_path = self.dir / "config.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def client(self) -> RegistryClient:
        return RegistryClient(self.host, self.port)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise ServerFailed(
                f"{self.spec.name} exited with {self._proc.returncode}:\n{self.log_tail()}"
            )

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [*self.spec.command, str(self.config_path)],
                cwd=self.dir,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        with self.client() as client:
            while not client.ping():
                self.check_alive()
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    self.stop()
                    raise ServerFailed(f"{self.spec.name} did not answer GET /v2/ in time:\n{tail}")
                time.sleep(0.1)

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(_STOP_TIMEOUT)
        # Anything left in the server's own session (stray workers) goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def __enter__(self) -> RunningServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            remove_tree(self.dir)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.keep_log is not None:
            self.keep_log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, self.keep_log)
        remove_tree(self.dir)
