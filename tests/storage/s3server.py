"""An S3-compatible server for tests: moto's standalone server in a child process, listening
on a free port of 127.0.0.1. The server keeps everything in its memory; ``reset()`` drops it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from botocore.config import Config as BotoConfig

from dockyard.config.storage import S3Config

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = ["ACCESS_KEY", "REGION", "SECRET_KEY", "S3Server", "s3_server"]

ACCESS_KEY = "dockyard-test"
SECRET_KEY = "dockyard-test-secret"
REGION = "us-east-1"

_STARTUP_SECONDS = 30.0
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint: str

    def client(self, **settings: Any) -> S3Client:
        """A path-style client with the server's credentials; ``settings`` go to botocore's
        ``Config``."""
        config = BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            **settings,
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=config,
        )

    def section(self, bucket: str, **keys: Any) -> dict[str, Any]:
        """The raw ``storage.s3`` keys for this server; ``keys`` add to or override them."""
        return {
            "bucket": bucket,
            "regionendpoint": self.endpoint,
            "forcepathstyle": True,
            "accesskey": ACCESS_KEY,
            "secretkey": SECRET_KEY,
            **keys,
        }

    def config(self, bucket: str, **keys: Any) -> S3Config:
        return S3Config.model_validate(self.section(bucket, **keys))

    def reset(self) -> None:
        """Forget every bucket and object."""
        httpx.post(f"{self.endpoint}/moto-api/reset", timeout=30).raise_for_status()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_ready(process: subprocess.Popen[bytes], endpoint: str) -> bool:
    """True once the server answers; False if it exited (say, its port was taken)."""
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            httpx.get(endpoint, timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        return True
    raise TimeoutError(f"moto server at {endpoint} did not start in {_STARTUP_SECONDS} s")


@contextlib.contextmanager
def s3_server(env: Mapping[str, str] | None = None) -> Iterator[S3Server]:
    """Run a server for the duration of the block, with ``env`` added to its environment
    (moto's settings). A free port can be taken by someone else before the server binds it,
    so a server that exits at once is retried on another."""
    with tempfile.TemporaryFile() as log:
        for _ in range(_ATTEMPTS):
            port = _free_port()
            endpoint = f"http://127.0.0.1:{port}"
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,  # a file, not a pipe: the server logs every request
                env={**os.environ, **(env or {})},
            )
            try:
                ready = _wait_ready(process, endpoint)
                if ready:
                    yield S3Server(endpoint)
                    return
            finally:
                _stop(process)
        log.seek(0)
        output = log.read().decode(errors="replace")[-2000:]
        raise RuntimeError(f"moto server did not start:\n{output}")
