"""Presigned URLs reused while most of their lifetime is left (``storage/s3/presigned.py``),
alone and through the S3 driver against the S3-compatible server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from dockyard.storage.s3 import S3Driver
from dockyard.storage.s3.presigned import PresignedUrls

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class Signer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    async def __call__(self, key: str, method: str, lifetime: int) -> str:
        self.calls.append((key, method, lifetime))
        return f"https://store/{key}?method={method}&n={len(self.calls)}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_url_is_reused_for_a_quarter_of_its_lifetime() -> None:
    signer, clock = Signer(), Clock()
    urls = PresignedUrls(signer, clock=clock)
    first = await urls.get("a", "GET", 1200)
    clock.now += 299
    assert await urls.get("a", "GET", 1200) == first
    clock.now += 1  # 300 s: three quarters of 1200 left, no more
    assert await urls.get("a", "GET", 1200) != first
    assert len(signer.calls) == 2


async def test_urls_are_kept_apart_by_key_method_and_lifetime() -> None:
    signer = Signer()
    urls = PresignedUrls(signer, clock=Clock())
    got = {
        await urls.get("a", "GET", 1200),
        await urls.get("a", "HEAD", 1200),
        await urls.get("b", "GET", 1200),
        await urls.get("a", "GET", 300),
    }
    assert len(got) == 4
    assert len(signer.calls) == 4


async def test_the_least_recently_handed_out_go_first() -> None:
    signer = Signer()
    urls = PresignedUrls(signer, capacity=2, clock=Clock())
    a = await urls.get("a", "GET", 1200)
    await urls.get("b", "GET", 1200)
    assert await urls.get("a", "GET", 1200) == a  # a is now the most recent
    await urls.get("c", "GET", 1200)  # b goes
    assert await urls.get("a", "GET", 1200) == a
    await urls.get("b", "GET", 1200)
    assert [key for key, _, _ in signer.calls] == ["a", "b", "c", "b"]


async def test_the_driver_signs_a_hot_blob_once(
    client: S3Client, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed: list[str] = []
    sign = client.generate_presigned_url

    def counting(operation: str, **kwargs: Any) -> str:
        signed.append(operation)
        return sign(operation, **kwargs)

    monkeypatch.setattr(client, "generate_presigned_url", counting)
    driver = S3Driver(client, bucket)
    await driver.put_content("blobs/hot", b"layer bytes")
    first = await driver.redirect_url("blobs/hot")
    assert first is not None
    for _ in range(20):
        assert await driver.redirect_url("blobs/hot") == first
    assert signed == ["get_object"]
    # Still a working URL, valid for the full lifetime it was signed for.
    assert parse_qs(urlsplit(first).query)["X-Amz-Expires"] == ["1200"]
    async with httpx.AsyncClient() as http:
        assert (await http.get(first)).content == b"layer bytes"
