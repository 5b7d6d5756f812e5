"""Large S3 reads streamed on the event loop's own sockets (``storage/s3/ranges.py``): against
the S3-compatible server, and against a small HTTP server of the test's own that answers the
way a failing store would."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from certificates import self_signed
from dockyard.storage.base import InvalidOffset, PathNotFound
from dockyard.storage.s3 import S3Driver, S3Error
from dockyard.storage.s3.bucket import Changed, Missing, S3Unavailable
from dockyard.storage.s3.client import ATTEMPTS
from dockyard.storage.s3.driver import _READ_CHUNK
from dockyard.storage.s3.ranges import SocketRanges, ssl_context

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

MiB = 1 << 20


@contextlib.contextmanager
def counting(client: S3Client, *operations: str) -> Iterator[list[str]]:
    """The calls of ``operations`` boto3 makes while the block runs (a presigned URL is no
    call)."""
    calls: list[str] = []
    hooks = []
    for operation in operations:

        def count(operation: str = operation, **_: Any) -> None:
            calls.append(operation)

        client.meta.events.register(f"before-call.s3.{operation}", count)
        hooks.append((operation, count))
    try:
        yield calls
    finally:
        for operation, count in hooks:
            client.meta.events.unregister(f"before-call.s3.{operation}", count)


def data_of(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def read_all(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


# -- against the S3-compatible server ---------------------------------------------------------


async def test_large_ranges_stream_without_boto3(client: S3Client, bucket: str) -> None:
    data = data_of(1, 21 * MiB + 11)
    driver = S3Driver(client, bucket)
    await driver.put_content("big", data)
    with counting(client, "GetObject") as gets:
        whole = await read_all(driver.reader("big"))
        part = await read_all(driver.reader("big", MiB + 7, 13 * MiB + 5))
    assert b"".join(whole) == data
    assert b"".join(part) == data[MiB + 7 : 14 * MiB + 12]
    assert gets == []  # the bytes came over the driver's own sockets
    # Each chunk the bytes of one recv, at most the size the driver asks for (how close to it
    # depends on how fast the bytes are taken: see the tests of chunk sizes below).
    assert max(len(chunk) for chunk in whole) <= _READ_CHUNK


async def test_large_ranges_of_known_length_need_no_head(client: S3Client, bucket: str) -> None:
    data = data_of(7, 70 * MiB)
    driver = S3Driver(client, bucket)
    await driver.put_content("big", data)
    with counting(client, "HeadObject", "GetObject") as calls:
        # One GET over the driver's own socket; its answer says the range exists.
        got = await read_all(driver.reader("big", 3, 70 * MiB - 3))
    assert b"".join(got) == data[3:]
    assert calls == []
    with counting(client, "HeadObject") as calls:
        await read_all(driver.reader("big", 0, MiB))
        await read_all(driver.reader("big"))
    assert calls == ["HeadObject", "HeadObject"]


async def test_large_ranges_beyond_the_end_or_of_nothing(client: S3Client, bucket: str) -> None:
    driver = S3Driver(client, bucket)
    await driver.put_content("obj", data_of(8, 5 * MiB))
    for offset, length in [(MiB, 5 * MiB), (5 * MiB, 3 * MiB), (6 * MiB, 3 * MiB)]:
        with pytest.raises(InvalidOffset):
            await read_all(driver.reader("obj", offset, length))
    with pytest.raises(PathNotFound):
        await read_all(driver.reader("nothing", 0, 3 * MiB))


async def test_small_ranges_and_proxies_read_through_boto3(
    client: S3Client, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = data_of(2, 9 * MiB)
    driver = S3Driver(client, bucket)
    await driver.put_content("obj", data)
    with counting(client, "GetObject") as gets:
        small = await read_all(driver.reader("obj", 5, 2 * MiB))
    assert (small, gets) == ([data[5 : 2 * MiB + 5]], ["GetObject"])

    # A driver made while a proxy is set for the endpoint leaves large reads to boto3 too.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    proxied = S3Driver(client, bucket)
    monkeypatch.delenv("HTTP_PROXY")
    with counting(client, "GetObject") as gets:
        got = await read_all(proxied.reader("obj"))
    assert (b"".join(got), gets) == (data, ["GetObject"])


async def test_socket_reads_refuse_changed_and_missing_objects(
    client: S3Client, bucket: str
) -> None:
    data = data_of(3, 3 * MiB)
    client.put_object(Bucket=bucket, Key="k", Body=data)
    etag = client.head_object(Bucket=bucket, Key="k")["ETag"]

    async def presign(key: str) -> str:
        return client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60
        )

    ranges = SocketRanges(presign, None)
    stream = await ranges.open("k", 1, 3 * MiB, etag)
    assert b"".join(await read_all(aiter(stream))) == data[1 : 3 * MiB]
    with pytest.raises(Changed, match="PreconditionFailed"):
        await ranges.open("k", 0, 10, '"0123456789abcdef0123456789abcdef"')
    with pytest.raises(Missing, match="NoSuchKey"):
        await ranges.open("gone", 0, 10, etag)


async def test_many_concurrent_reads_agree(client: S3Client, bucket: str) -> None:
    data = data_of(5, 12 * MiB)
    driver = S3Driver(client, bucket)
    await driver.put_content("shared", data)
    expected = hashlib.sha256(data).hexdigest()

    async def digest() -> str:
        hasher = hashlib.sha256()
        async for chunk in driver.reader("shared"):
            hasher.update(chunk)
            await asyncio.sleep(0)
        return hasher.hexdigest()

    assert await asyncio.gather(*(digest() for _ in range(8))) == [expected] * 8


# -- against a store of the test's own ------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server that reads each request and lets ``handler`` answer it (with the request's
    number), over TLS with ``tls``; yields its port and the requests it saw."""
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            requests.append(await reader.readuntil(b"\r\n\r\n"))
            await handler(reader, writer, len(requests))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    async with server:
        yield server.sockets[0].getsockname()[1], requests


@contextlib.asynccontextmanager
async def store(
    handler: Handler,
    tls: ssl.SSLContext | None = None,
    verify: bool | str | None = None,
) -> AsyncIterator[tuple[SocketRanges, list[bytes]]]:
    """Ranges that fetch from a :func:`serving` server (verifying its certificate as
    ``verify`` says), and the requests it saw."""
    scheme = "https" if tls else "http"
    async with serving(handler, tls) as (port, requests):

        async def presign(key: str) -> str:
            return f"{scheme}://127.0.0.1:{port}/bucket/{key}?X-Amz-Signature=abc"

        context = ssl_context(scheme, verify)
        yield SocketRanges(presign, context, chunk=MiB, queued=1, timeout=0.5), requests


def ok_head(length: int, start: int = 0) -> bytes:
    return (
        f"HTTP/1.1 206 Partial Content\r\nContent-Length: {length}\r\n"
        f"Content-Range: bytes {start}-{start + length - 1}/{start + length}\r\n\r\n"
    ).encode()


async def test_server_errors_are_retried_then_succeed() -> None:
    body = data_of(6, 3 * MiB)

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n < 3:
            error = b"<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>"
            writer.write(b"HTTP/1.1 503 Slow Down\r\nContent-Length: %d\r\n\r\n" % len(error))
            writer.write(error)
        else:
            writer.write(ok_head(len(body), 10) + body)
        await writer.drain()

    async with store(handler) as (ranges, requests):
        stream = await ranges.open("key", 10, 10 + len(body), '"etag"')
        assert b"".join(await read_all(aiter(stream))) == body
    assert len(requests) == 3
    first = requests[0].decode()
    assert first.startswith("GET /bucket/key?X-Amz-Signature=abc HTTP/1.1\r\n")
    assert f"Range: bytes=10-{10 + len(body) - 1}\r\n" in first
    assert 'If-Match: "etag"\r\n' in first


async def test_persistent_server_errors_give_up() -> None:
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with store(handler) as (ranges, requests):
        with pytest.raises(S3Error, match="S3 GetObject: 500"):
            await ranges.open("key", 0, 100, '"e"')
    assert len(requests) == ATTEMPTS


async def test_a_store_that_does_not_answer_times_out_on_every_attempt() -> None:
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await asyncio.sleep(5)

    async with store(handler) as (ranges, requests):
        started = time.monotonic()
        with pytest.raises(S3Unavailable, match=r"no response in 0\.5 s"):
            await ranges.open("key", 0, 100, '"e"')
    assert len(requests) == ATTEMPTS
    assert time.monotonic() - started < ATTEMPTS * 0.5 + 2


@contextlib.contextmanager
def refusing_to_connect() -> Iterator[int]:
    """A port whose connects hang, as behind a firewall that drops them: a listener that
    accepts nothing, its backlog filled, so the kernel drops further SYNs."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_store_that_takes_no_connections_times_out() -> None:
    with refusing_to_connect() as port:

        async def presign(key: str) -> str:
            return f"http://127.0.0.1:{port}/bucket/{key}"

        ranges = SocketRanges(presign, None, dial=0.3, timeout=30)
        started = time.monotonic()
        with pytest.raises(S3Unavailable, match=r"no connection in 0\.3 s"):
            await ranges.open("key", 0, 100, '"e"')
        # The dial timeout, not the (long) read timeout, bounds each attempt.
        assert time.monotonic() - started < ATTEMPTS * 0.3 + 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (ok_head(99) + b"x" * 99, "the object has only 99 bytes"),
        (b"HTTP/1.1 206 OK\r\nContent-Length: 100\r\n\r\n", "Content-Range none"),
        (ok_head(100, 1) + b"x" * 100, "wanted 100 bytes from 0"),
        (b"HTTP/1.1 206 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "chunked"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP response"),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "S3 GetObject: 403"),
    ],
)
async def test_unusable_answers_are_storage_errors(answer: bytes, error: str) -> None:
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(answer)
        await writer.drain()

    async with store(handler) as (ranges, _):
        with pytest.raises(S3Error, match=error):
            await ranges.open("key", 0, 100, '"e"')


async def test_a_body_cut_short_fails_the_read() -> None:
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(ok_head(3 * MiB) + b"y" * MiB)
        await writer.drain()  # then the connection closes

    async with store(handler) as (ranges, _):
        stream = await ranges.open("key", 0, 3 * MiB, '"e"')
        with pytest.raises(S3Error, match=f"connection closed after {MiB} body bytes"):
            await read_all(aiter(stream))


async def test_a_stalled_body_times_out() -> None:
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(ok_head(2 * MiB) + b"z" * 1000)
        await writer.drain()
        await asyncio.sleep(5)

    async with store(handler) as (ranges, _):
        stream = await ranges.open("key", 0, 2 * MiB, '"e"')
        with pytest.raises(S3Error, match=r"no data for 0\.5 s"):
            await asyncio.wait_for(read_all(aiter(stream)), 3)


async def test_reading_pauses_while_the_consumer_does_not_take_chunks() -> None:
    size = 64 * MiB
    sent = 0
    finished = asyncio.Event()

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        nonlocal sent
        writer.write(ok_head(size))
        block = b"w" * MiB
        for _block in range(size // MiB):
            writer.write(block)
            await writer.drain()
            sent += MiB
        finished.set()

    async with store(handler) as (ranges, _):
        stream = await ranges.open("key", 0, size, '"e"')
        chunks = aiter(stream)
        first = await anext(chunks)
        await asyncio.sleep(0.5)
        # A chunk waits, the kernel buffers some more; the rest stays with the sender.
        assert not finished.is_set()
        assert sent < size // 2, sent
        total = len(first) + sum([len(chunk) async for chunk in chunks])
        assert total == size
        assert finished.is_set()


def _sender(size: int) -> Handler:
    """A handler that sends a body of ``size`` bytes as fast as the reader takes them."""

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(ok_head(size))
        block = b"s" * MiB
        for _block in range(size // MiB):
            writer.write(block)
            await writer.drain()

    return handler


async def test_chunks_grow_to_the_largest_for_a_consumer_that_keeps_up() -> None:
    size = 256 * MiB
    async with store(_sender(size)) as (ranges, _):
        stream = await ranges.open("key", 0, size, '"e"')
        sizes = [len(chunk) async for chunk in stream]
    assert sum(sizes) == size
    # The first chunks are small (the rate is not known yet); once it is, a consumer that
    # takes bytes as fast as they come gets chunks of the size asked for (1 MiB here), or
    # smaller ones where the kernel caps the low-water mark at half the receive buffer.
    assert sizes[0] <= 256 * 1024
    large = [n for n in sizes[len(sizes) // 2 :] if n > MiB // 4]
    assert len(large) > len(sizes[len(sizes) // 2 :]) * 0.9, sizes
    assert max(sizes) == MiB


async def test_chunks_shrink_for_a_consumer_that_takes_bytes_slowly() -> None:
    """A client slower than the store: it takes 2 MiB/s, so a chunk sized to a fiftieth of a
    second of it would be 41 KiB; the smallest chunk is 64 KiB."""
    size = 6 * MiB
    rate = 2 * MiB
    async with store(_sender(size)) as (ranges, _):
        stream = await ranges.open("key", 0, size, '"e"')
        started = time.monotonic()
        late: list[int] = []
        total = 0
        async for chunk in stream:
            total += len(chunk)
            if time.monotonic() - started > 1.0:
                late.append(len(chunk))
            await asyncio.sleep(len(chunk) / rate)
    assert total == size
    assert late, "the read ended within a second"
    assert max(late) <= 64 * 1024, late


async def test_closing_an_unfinished_stream_drops_the_connection() -> None:
    dropped = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(ok_head(32 * MiB) + b"v" * MiB)
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # returns (or fails, at a reset) when the client closes
        dropped.set()

    async with store(handler) as (ranges, _):
        stream = await ranges.open("key", 0, 32 * MiB, '"e"')
        chunks = aiter(stream)
        await anext(chunks)
        stream.close()
        await asyncio.wait_for(dropped.wait(), 3)


async def test_tls_stores_are_verified_as_boto3_would(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    body = data_of(9, 3 * MiB)

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(ok_head(len(body)) + body)
        await writer.drain()

    # A CA bundle that holds the certificate (the ``verify`` argument, or AWS_CA_BUNDLE), or
    # no verification (``skipverify``): the body arrives whole.
    for verify in (str(cert_file), False):
        async with store(handler, tls, verify) as (ranges, _):
            stream = await ranges.open("key", 0, len(body), None)
            assert b"".join(await read_all(aiter(stream))) == body
    # The default bundle does not know the certificate: refused at once, not retried.
    async with store(handler, tls) as (ranges, requests):
        with pytest.raises(S3Error, match="CERTIFICATE_VERIFY_FAILED"):
            await asyncio.wait_for(ranges.open("key", 0, len(body), None), 2)
    assert requests == []


# -- resuming a read the store cut short --------------------------------------------------------


@contextlib.asynccontextmanager
async def driver_on(handler: Handler) -> AsyncIterator[tuple[S3Driver, list[bytes]]]:
    """An ``S3Driver`` whose direct reads go to a server of the test's own (boto3 only presigns
    here: lengths above 2 MiB are read with no HEAD)."""
    import boto3
    from botocore.config import Config

    async with serving(handler) as (port, requests):
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(s3={"addressing_style": "path"}),
        )
        try:
            yield S3Driver(client, "bucket"), requests
        finally:
            client.close()


def versioned_head(start: int, length: int, total: int) -> bytes:
    return (
        f'HTTP/1.1 206 Partial Content\r\nETag: "v1"\r\nContent-Length: {length}\r\n'
        f"Content-Range: bytes {start}-{start + length - 1}/{total}\r\n\r\n"
    ).encode()


def requested_range(request: bytes) -> tuple[int, int]:
    text = request.decode()
    start, _, last = text.split("Range: bytes=", 1)[1].split("\r\n", 1)[0].partition("-")
    return int(start), int(last) + 1


async def test_a_read_cut_short_resumes_where_it_stopped() -> None:
    data = data_of(9, 5 * MiB + 3)

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        start, end = requested_range(requests[n - 1])
        writer.write(versioned_head(start, end - start, len(data)))
        # The first two answers stop part-way (a store dropping a long response).
        stop = start + MiB + 17 if n < 3 else end
        writer.write(data[start:stop])
        await writer.drain()

    async with driver_on(handler) as (driver, requests):
        got = b"".join(await read_all(driver.reader("blob", 0, len(data))))
    assert got == data
    assert [requested_range(r) for r in requests] == [
        (0, len(data)),
        (MiB + 17, len(data)),
        (2 * MiB + 34, len(data)),
    ]
    # The first GET takes any version; the rest must be the one it read.
    assert b"If-Match" not in requests[0]
    assert all(b'If-Match: "v1"\r\n' in r for r in requests[1:])


async def test_a_read_that_makes_no_progress_gives_up() -> None:
    data = data_of(10, 4 * MiB)

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        start, end = requested_range(requests[n - 1])
        writer.write(versioned_head(start, end - start, len(data)))
        if n == 1:
            writer.write(data[:MiB])  # then nothing more, from any answer
        await writer.drain()

    async with driver_on(handler) as (driver, requests):
        with pytest.raises(S3Error, match=f"connection closed after {MiB} body bytes|after 0 body"):
            await read_all(driver.reader("blob", 0, len(data)))
    assert len(requests) == 4  # the first, and three resumes at the same byte


async def test_a_read_resumed_on_a_changed_object_fails() -> None:
    data = data_of(11, 4 * MiB)

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        start, end = requested_range(requests[n - 1])
        if n == 1:
            writer.write(versioned_head(start, end - start, len(data)) + data[:MiB])
        else:
            error = b"<Error><Code>PreconditionFailed</Code><Message>No</Message></Error>"
            writer.write(
                b"HTTP/1.1 412 Precondition Failed\r\nContent-Length: %d\r\n\r\n" % len(error)
            )
            writer.write(error)
        await writer.drain()

    chunks: list[bytes] = []

    async def read(driver: S3Driver) -> None:
        async for chunk in driver.reader("blob", 0, len(data)):
            chunks.append(chunk)

    async with driver_on(handler) as (driver, requests):
        with pytest.raises(S3Error, match="blob changed while being read"):
            await read(driver)
    assert b"".join(chunks) == data[:MiB]
    assert len(requests) == 2
