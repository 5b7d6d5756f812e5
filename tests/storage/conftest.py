"""Fixtures of the S3 driver tests: one S3-compatible server a module, a client of it, and a
fresh bucket a test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from storage.s3server import S3Server, s3_server

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def client(s3: S3Server) -> Iterator[S3Client]:
    made = s3.client()
    yield made
    made.close()


@pytest.fixture
def bucket(s3: S3Server, client: S3Client) -> Iterator[str]:
    """A fresh, empty bucket; the server forgets everything after the test."""
    name = f"dockyard-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    yield name
    s3.reset()
