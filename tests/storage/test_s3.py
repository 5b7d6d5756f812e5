"""The s3 driver against a real S3-compatible server: the storage contract, plus what only
multipart uploads, prefixes and presigned URLs can show."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import socket
import sys
import tracemalloc
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from contracts.storage_suite import MiB, StorageDriverContract, walk_all
from dockyard.config.storage import S3Config
from dockyard.mediatypes import OCTET_STREAM
from dockyard.storage.base import InvalidOffset, PathNotFound, StorageDriver, StorageError
from dockyard.storage.s3 import REDIRECT_SECONDS, S3Driver, S3Error
from dockyard.storage.s3.client import ATTEMPTS, endpoint_url, make_client
from storage.s3server import S3Server

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def make_driver(client: S3Client, bucket: str, rootdirectory: str = "") -> S3Driver:
    """Parts as small as S3 allows, so that tests stay small; moves above 8 MiB copy in parts."""
    return S3Driver(
        client,
        bucket,
        rootdirectory=rootdirectory,
        chunksize=5 * MiB,
        copy_chunksize=5 * MiB,
        copy_threshold=8 * MiB,
    )


class TestS3Contract(StorageDriverContract):
    """The contract, with every key under a root prefix."""

    @pytest.fixture
    def driver(self, client: S3Client, bucket: str) -> StorageDriver:
        return make_driver(client, bucket, rootdirectory="/dockyard/root/")


# -- helpers ------------------------------------------------------------------------------


def data_of(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def open_uploads(client: S3Client, bucket: str) -> list[str]:
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def keys_in(client: S3Client, bucket: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def tail_size(client: S3Client, bucket: str, key: str) -> int:
    return client.head_object(Bucket=bucket, Key=f"{key}~tail")["ContentLength"]


def part_sizes(client: S3Client, bucket: str, key: str) -> list[int]:
    (upload,) = client.list_multipart_uploads(Bucket=bucket, Prefix=key)["Uploads"]
    parts = client.list_parts(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
    return [part["Size"] for part in parts.get("Parts", [])]


async def append(driver: S3Driver, path: str, offset: int, *pieces: bytes) -> int:
    """One request's worth: continue at ``offset``, write, close; the new size."""
    writer = await driver.writer(path, offset)
    for piece in pieces:
        await writer.write(piece)
    await writer.close()
    return writer.size


async def finish(driver: S3Driver, path: str, offset: int, *pieces: bytes) -> None:
    writer = await driver.writer(path, offset)
    for piece in pieces:
        await writer.write(piece)
    await writer.commit()


async def sha256_of(driver: S3Driver, path: str) -> str:
    digest = hashlib.sha256()
    async for chunk in driver.reader(path):
        digest.update(chunk)
    return digest.hexdigest()


# A writer in another process: continue an object from a config section, then close.
_CHILD_WRITER = """
import asyncio, json, random, sys
from dockyard.config.storage import S3Config
from dockyard.mediatypes import OCTET_STREAM
from dockyard.storage.s3 import S3Driver

async def main(section, path, seed, total, start, end, step):
    data = random.Random(seed).randbytes(total)
    driver = S3Driver.from_config(S3Config.model_validate(section))
    writer = await driver.writer(path, start)
    for n in range(start, end, step):
        await writer.write(data[n : min(n + step, end)])
    await writer.close()
    driver.close()
    print(writer.size)

section, path, *numbers = sys.argv[1:]
asyncio.run(main(json.loads(section), path, *map(int, numbers)))
"""


async def append_in_child(
    section: dict[str, Any], path: str, seed: int, total: int, start: int, end: int, step: int
) -> int:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD_WRITER,
        json.dumps(section),
        path,
        *(str(n) for n in (seed, total, start, end, step)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, err.decode(errors="replace")
    return int(out)


# -- writers across processes ---------------------------------------------------------------


async def test_object_written_by_three_writers(s3: S3Server, client: S3Client, bucket: str) -> None:
    """30 MiB in 7 MiB writes, continued by three writers: two processes, three clients."""
    total, step, path = 30 * MiB, 7 * MiB, "uploads/u1/data"
    data = data_of(1, total)
    first = S3Driver.from_config(s3.config(bucket))  # default chunksize: 10 MiB
    assert (
        await append(first, path, 0, data[:step], data[step : 2 * step], data[2 * step : 21 * MiB])
        == 21 * MiB
    )
    # Closed, not committed: one part of 14 MiB, the other 7 MiB wait in the tail.
    assert open_uploads(client, bucket) == [path]
    assert part_sizes(client, bucket, path) == [14 * MiB]
    assert tail_size(client, bucket, path) == 7 * MiB
    with pytest.raises(PathNotFound):
        await first.stat(path)
    first.close()

    section = s3.section(bucket)
    assert await append_in_child(section, path, 1, total, 21 * MiB, 28 * MiB, step) == 28 * MiB
    assert part_sizes(client, bucket, path) == [14 * MiB, 14 * MiB]
    assert tail_size(client, bucket, path) == 0

    third = S3Driver.from_config(s3.config(bucket))
    await finish(third, path, 28 * MiB, data[28 * MiB :])
    assert await sha256_of(third, path) == hashlib.sha256(data).hexdigest()
    assert (await third.stat(path)).size == total
    # Nothing unfinished is left behind.
    assert open_uploads(client, bucket) == []
    assert keys_in(client, bucket) == [path]
    third.close()


@pytest.fixture
def s3d(client: S3Client, bucket: str) -> S3Driver:
    return make_driver(client, bucket)


@pytest.fixture
def other(client: S3Client, bucket: str) -> S3Driver:
    """A second driver on the same bucket: what another replica sees."""
    return make_driver(client, bucket)


async def test_tail_under_the_part_minimum_survives_close(
    s3d: S3Driver, other: S3Driver, client: S3Client, bucket: str
) -> None:
    data = data_of(2, 9 * MiB)
    path = "uploads/u2/data"
    assert await append(s3d, path, 0, data[: 3 * MiB]) == 3 * MiB
    # Too small for a part: all of it is in the tail, and no upload is open yet.
    assert tail_size(client, bucket, path) == 3 * MiB
    assert open_uploads(client, bucket) == []
    assert await append(other, path, 3 * MiB, data[3 * MiB : 4 * MiB]) == 4 * MiB
    assert tail_size(client, bucket, path) == 4 * MiB
    # The tail and the next write make the first part.
    assert await append(s3d, path, 4 * MiB, data[4 * MiB : 7 * MiB]) == 7 * MiB
    assert part_sizes(client, bucket, path) == [7 * MiB]
    assert tail_size(client, bucket, path) == 0
    assert await append(other, path, 7 * MiB, data[7 * MiB :]) == 9 * MiB
    assert tail_size(client, bucket, path) == 2 * MiB
    await finish(s3d, path, 9 * MiB)
    assert await s3d.get_content(path) == data
    assert keys_in(client, bucket) == [path]


async def test_small_object_resumed_and_committed(
    s3d: S3Driver, other: S3Driver, client: S3Client, bucket: str
) -> None:
    assert await append(s3d, "w", 0, b"hello ") == 6
    await finish(other, "w", 6, b"world")
    assert await s3d.get_content("w") == b"hello world"
    assert open_uploads(client, bucket) == []
    assert keys_in(client, bucket) == ["w"]


async def test_writer_that_died_after_a_part_leaves_a_stale_tail(
    s3d: S3Driver, other: S3Driver, client: S3Client, bucket: str
) -> None:
    data = data_of(3, 9 * MiB)
    path = "uploads/u3/data"
    await append(s3d, path, 0, data[: 3 * MiB])
    # The next request uploads the tail's bytes in a part, then dies without closing: the
    # tail still holds 3 MiB that now sit at the start of the part.
    dying = await other.writer(path, 3 * MiB)
    await dying.write(data[3 * MiB : 7 * MiB])
    assert part_sizes(client, bucket, path) == [7 * MiB]
    assert tail_size(client, bucket, path) == 3 * MiB
    # Continuing where the part ends ignores the stale tail.
    assert await append(s3d, path, 7 * MiB, data[7 * MiB : 8 * MiB]) == 8 * MiB
    # Continuing where the last request ended (it never reported more) cuts the part back.
    await finish(other, path, 3 * MiB, data[3 * MiB :])
    assert await sha256_of(s3d, path) == hashlib.sha256(data).hexdigest()
    assert open_uploads(client, bucket) == []
    assert keys_in(client, bucket) == [path]


@pytest.mark.parametrize("offset", [7 * MiB, 12 * MiB + 5])
async def test_resume_cuts_back_inside_uploaded_parts(
    s3d: S3Driver, other: S3Driver, client: S3Client, bucket: str, offset: int
) -> None:
    first = data_of(4, 12 * MiB + 100)
    assert await append(s3d, "w", 0, first[: 6 * MiB], first[6 * MiB :]) == len(first)
    assert part_sizes(client, bucket, "w") == [6 * MiB, 6 * MiB + 100]
    rest = data_of(5, 2 * MiB)
    await finish(other, "w", offset, rest)
    assert await s3d.get_content("w") == first[:offset] + rest
    assert open_uploads(client, bucket) == []
    assert keys_in(client, bucket) == ["w"]


async def test_continuing_a_committed_object_copies_it_server_side(
    s3d: S3Driver, other: S3Driver, client: S3Client, bucket: str
) -> None:
    data = data_of(6, 11 * MiB)
    await finish(s3d, "w", 0, data)
    assert await append(other, "w", 11 * MiB) == 11 * MiB
    # The kept 11 MiB became parts by UploadPartCopy; nothing went through the writer.
    assert part_sizes(client, bucket, "w") == [5 * MiB, 6 * MiB]
    assert tail_size(client, bucket, "w") == 0
    # Until the commit, readers see the committed object.
    assert await s3d.get_content("w") == data
    await finish(s3d, "w", 11 * MiB, b"more")
    assert await s3d.get_content("w") == data + b"more"


async def test_writer_at_zero_drops_unfinished_state(
    s3d: S3Driver, client: S3Client, bucket: str
) -> None:
    await append(s3d, "w", 0, data_of(7, 6 * MiB), b"tail")
    assert open_uploads(client, bucket) == ["w"]
    await finish(s3d, "w", 0, b"new")
    assert await s3d.get_content("w") == b"new"
    assert open_uploads(client, bucket) == []
    assert keys_in(client, bucket) == ["w"]


async def test_writer_beyond_unfinished_content(s3d: S3Driver) -> None:
    await append(s3d, "w", 0, b"12345")
    with pytest.raises(InvalidOffset):
        await s3d.writer("w", 6)
    await finish(s3d, "w", 5, b"6")
    assert await s3d.get_content("w") == b"123456"


# -- namespace ------------------------------------------------------------------------------


async def test_listings_hide_unfinished_objects(
    s3d: S3Driver, client: S3Client, bucket: str
) -> None:
    await s3d.put_content("d/done", b"x")
    await append(s3d, "d/open", 0, b"partial")
    await append(s3d, "e/open", 0, b"partial")
    assert await s3d.list("d") == ["d/done"]
    # A directory holding only unfinished objects shows, empty, so upload purging finds it.
    assert await s3d.list("") == ["d", "e"]
    assert await s3d.list("e") == []
    assert [(i.path, i.is_dir) for i in await walk_all(s3d, "")] == [
        ("d", True),
        ("d/done", False),
        ("e", True),
    ]
    assert (await s3d.stat("e")).is_dir
    with pytest.raises(PathNotFound):
        await s3d.stat("d/open")
    assert keys_in(client, bucket) == ["d/done", "d/open~tail", "e/open~tail"]


async def test_delete_directory_aborts_unfinished_uploads(
    s3d: S3Driver, client: S3Client, bucket: str
) -> None:
    await append(s3d, "uploads/a/data", 0, data_of(8, 6 * MiB), b"tail")
    await append(s3d, "uploads/b/data", 0, b"tail only")
    await s3d.put_content("uploads/c/data", b"done")
    await append(s3d, "uploads-kept/data", 0, data_of(9, 6 * MiB))
    await s3d.delete("uploads")
    assert open_uploads(client, bucket) == ["uploads-kept/data"]
    assert keys_in(client, bucket) == ["uploads-kept/data~tail"]
    with pytest.raises(PathNotFound):
        await s3d.delete("uploads")


async def test_delete_an_unfinished_object(s3d: S3Driver, client: S3Client, bucket: str) -> None:
    await append(s3d, "u/data", 0, data_of(10, 6 * MiB), b"tail")
    await s3d.delete("u/data")
    assert open_uploads(client, bucket) == []
    assert keys_in(client, bucket) == []


async def test_move_above_the_threshold_copies_in_parts(
    s3d: S3Driver, client: S3Client, bucket: str
) -> None:
    data = data_of(11, 13 * MiB)
    await finish(s3d, "uploads/u/data", 0, data)
    await s3d.move("uploads/u/data", "blobs/b/data")
    assert await sha256_of(s3d, "blobs/b/data") == hashlib.sha256(data).hexdigest()
    # A multipart object's ETag ends with its part count: 13 MiB in 5 MiB copies is 2 parts.
    assert client.head_object(Bucket=bucket, Key="blobs/b/data")["ETag"].endswith('-2"')
    assert keys_in(client, bucket) == ["blobs/b/data"]
    assert open_uploads(client, bucket) == []


async def test_move_below_the_threshold_copies_whole(
    s3d: S3Driver, client: S3Client, bucket: str
) -> None:
    data = data_of(12, 8 * MiB)
    await s3d.put_content("src", data)
    await s3d.move("src", "dst")
    assert await s3d.get_content("dst") == data
    assert "-" not in client.head_object(Bucket=bucket, Key="dst")["ETag"]
    assert keys_in(client, bucket) == ["dst"]


async def test_every_object_is_typed_as_the_registry_serves_a_blob(
    s3d: S3Driver, client: S3Client, bucket: str
) -> None:
    # A pull redirected to the store gets the object's own type: it must match a streamed one.
    await s3d.put_content("put", b"p")
    await finish(s3d, "small", 0, b"small")
    await finish(s3d, "parts", 0, data_of(15, 9 * MiB))
    await s3d.move("parts", "moved-in-parts")  # above the threshold: copied in parts
    assert "-" in client.head_object(Bucket=bucket, Key="moved-in-parts")["ETag"]
    await s3d.put_content("whole", b"w")
    await s3d.move("whole", "moved-whole")
    keys = ["put", "small", "moved-in-parts", "moved-whole"]
    assert keys_in(client, bucket) == sorted(keys)
    types = {key: client.head_object(Bucket=bucket, Key=key)["ContentType"] for key in keys}
    assert types == dict.fromkeys(keys, OCTET_STREAM)


async def test_rootdirectory_is_a_key_prefix(s3d: S3Driver, client: S3Client, bucket: str) -> None:
    rooted = make_driver(client, bucket, rootdirectory="/registry/v2/")
    assert rooted.root == "registry/v2"
    await s3d.put_content("outside", b"o")
    await rooted.put_content("blobs/data", b"b")
    await append(rooted, "uploads/u/data", 0, data_of(13, 6 * MiB), b"tail")
    assert keys_in(client, bucket) == ["outside", "registry/v2/blobs/data",
                                       "registry/v2/uploads/u/data~tail"]  # fmt: skip
    assert open_uploads(client, bucket) == ["registry/v2/uploads/u/data"]
    assert await rooted.list("") == ["blobs", "uploads"]
    assert await s3d.get_content("registry/v2/blobs/data") == b"b"
    with pytest.raises(PathNotFound):
        await rooted.get_content("outside")
    await rooted.delete("uploads")
    await rooted.delete("blobs")
    assert await rooted.list("") == []
    assert keys_in(client, bucket) == ["outside"]
    assert open_uploads(client, bucket) == []


# -- direct access --------------------------------------------------------------------------


async def test_presigned_urls_serve_the_object(s3d: S3Driver) -> None:
    data = data_of(14, 3 * MiB)
    await s3d.put_content("blobs/data", data)
    url = await s3d.redirect_url("blobs/data")
    assert url is not None
    assert f"X-Amz-Expires={REDIRECT_SECONDS}" in url
    async with httpx.AsyncClient() as http:
        got = await http.get(url)
        assert (got.status_code, got.content) == (200, data)
        head_url = await s3d.redirect_url("blobs/data", "HEAD")
        assert head_url is not None
        head = await http.head(head_url)
        assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))
    assert await s3d.redirect_url("blobs/data", "PUT") is None
    assert s3d.local_path("blobs/data") is None


# -- configuration --------------------------------------------------------------------------


def test_endpoint_without_a_scheme() -> None:
    assert endpoint_url("minio:9000", secure=False) == "http://minio:9000"
    assert endpoint_url("minio:9000", secure=True) == "https://minio:9000"
    assert endpoint_url("http://minio:9000", secure=True) == "http://minio:9000"
    assert endpoint_url(None, secure=True) is None


def test_client_timeouts_and_attempts_follow_the_config() -> None:
    config = S3Config(bucket="b", region="r", dialtimeout=1.5, readtimeout=120)
    client = make_client(config)
    capped = make_client(config, at_most=10)
    try:
        settings = client.meta.config
        assert (settings.connect_timeout, settings.read_timeout) == (1.5, 120)
        assert settings.retries == {"mode": "standard", "total_max_attempts": ATTEMPTS}
        assert (capped.meta.config.connect_timeout, capped.meta.config.read_timeout) == (1.5, 10)
    finally:
        client.close()
        capped.close()


def test_clients_share_the_parsed_s3_model() -> None:
    # Parsed once per process: `dockyard serve` parses it before forking, and its workers
    # share those pages instead of each parsing a copy of its own.
    first = make_client(S3Config(bucket="a", region="r"))
    second = make_client(S3Config(bucket="b", region="s", forcepathstyle=True))
    try:
        model, other = first.meta.service_model, second.meta.service_model
        assert model.service_name == other.service_name == "s3"
        assert model.metadata is other.metadata
    finally:
        first.close()
        second.close()


async def test_from_config(s3: S3Server, client: S3Client, bucket: str) -> None:
    config = s3.config(
        bucket,
        regionendpoint=s3.endpoint.removeprefix("http://"),
        secure=False,
        rootdirectory="/root",
        chunksize=6 * MiB,
        encrypt=True,
        storageclass="reduced_redundancy",
        objectacl="public-read",
        useragent="dockyard-test/1",
    )
    driver = S3Driver.from_config(config)
    try:
        assert (driver.name, driver.bucket, driver.root) == ("s3", bucket, "root")
        await driver.put_content("small", b"x")
        await finish(driver, "big", 0, data_of(15, 7 * MiB), b"end")
        await driver.move("big", "moved")
        for key in ("root/small", "root/moved"):
            head = client.head_object(Bucket=bucket, Key=key)
            assert head["ServerSideEncryption"] == "AES256"
            assert head["StorageClass"] == "REDUCED_REDUNDANCY"
            grants = client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
            assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)
        # chunksize: one part of 7 MiB (at least 6) and the last of 3 bytes.
        assert client.head_object(Bucket=bucket, Key="root/moved")["ContentLength"] == 7 * MiB + 3
    finally:
        driver.close()


async def test_unreachable_store_raises_storage_errors(bucket: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        dead = S3Server(f"http://127.0.0.1:{probe.getsockname()[1]}")
        client = dead.client(retries={"max_attempts": 1})
        try:
            with pytest.raises(StorageError):
                await make_driver(client, bucket).get_content("x")
        finally:
            client.close()


async def test_missing_bucket_is_a_storage_error(client: S3Client) -> None:
    driver = make_driver(client, "no-such-bucket")
    with pytest.raises(S3Error, match="NoSuchBucket"):
        await driver.put_content("x", b"x")


# -- performance properties -----------------------------------------------------------------


async def test_streaming_memory_stays_flat(s3d: S3Driver) -> None:
    # Alternate two blocks, so a chunk written twice or out of place changes the digest.
    blocks = [os.urandom(MiB), os.urandom(MiB)]
    expected = hashlib.sha256()
    for n in range(100):
        expected.update(blocks[n % 2])
    tracemalloc.start()
    try:
        writer = await s3d.writer("big")
        for n in range(100):
            await writer.write(blocks[n % 2])
        await writer.commit()
        got = hashlib.sha256()
        async for chunk in s3d.reader("big"):
            got.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.hexdigest() == expected.hexdigest()
    assert writer.size == 100 * MiB
    # One 5 MiB part and the request sending it, against 100 MiB streamed each way.
    assert peak < 10 * MiB, peak


async def test_requests_leave_the_event_loop_free(s3d: S3Driver) -> None:
    task = asyncio.create_task(s3d.put_content("x", data_of(16, 8 * MiB)))
    ticks = 0
    while not task.done():
        ticks += 1
        await asyncio.sleep(0)
    await task
    # Done inline, the request would finish within the task's first step, before any tick.
    assert ticks > 1
