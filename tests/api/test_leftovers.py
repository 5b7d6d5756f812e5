"""Requests that outlive their connections are ended at shutdown, so that their cleanup runs
and no AnyIO worker thread is left waiting (the interpreter would wait for it at exit)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import anyio.to_thread
import pytest
import yaml
from starlette.types import Message, Receive, Scope, Send

from dockyard.api.leftovers import RequestTasks, TrackRequests
from dockyard.app import create_app
from dockyard.config import Config, load_config
from dockyard.metadata.migrate import upgrade

_HTTP: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}


async def _nothing_more() -> Message:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _refuse(message: Message) -> None:
    raise AssertionError("nothing is sent")


def _anyio_workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "AnyIO worker thread"}


def test_a_worker_thread_rooted_at_a_left_request_stops_when_the_request_ends() -> None:
    """The hang on SIGTERM: on a loop driven by ``run_forever`` with no main task (as in the
    moment between Granian's main task ending and the loop stopping), AnyIO roots a new worker
    thread at the request's own task, and stops it only when that task finishes."""
    tasks = RequestTasks()
    blocked = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.to_thread.run_sync(lambda: None)
        blocked.set()
        await asyncio.Event().wait()  # its client is gone, and it never learns

    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    before = _anyio_workers()
    runner.start()
    try:
        request = asyncio.run_coroutine_threadsafe(
            TrackRequests(app, tasks)(_HTTP, _nothing_more, _refuse), loop
        )
        assert blocked.wait(10)
        started = _anyio_workers() - before
        assert len(started) == 1
        assert len(tasks) == 1
        ended = asyncio.run_coroutine_threadsafe(tasks.end_leftovers(), loop).result(10)
        assert ended == 1
        assert request.cancelled()
        (worker,) = started
        worker.join(10)
        assert not worker.is_alive()
        assert len(tasks) == 0
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()


async def test_requests_that_finished_are_not_counted() -> None:
    tasks = RequestTasks()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await TrackRequests(app, tasks)(_HTTP, _nothing_more, send)
    assert len(sent) == 2
    assert len(tasks) == 0
    assert await tasks.end_leftovers() == 0


async def test_a_request_that_ignores_cancellation_is_given_up_after_the_grace() -> None:
    tasks = RequestTasks()
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # a request stuck in cleanup

    request = asyncio.create_task(TrackRequests(app, tasks)(_HTTP, _nothing_more, _refuse))
    await asyncio.sleep(0)
    assert await tasks.end_leftovers(grace=0.1) == 1
    assert not request.done()
    release.set()
    await request


@pytest.fixture
async def config(tmp_path: Path) -> Config:
    root = tmp_path / "data"
    root.mkdir()
    path = tmp_path / "config.yml"
    path.write_text(
        yaml.safe_dump({"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(root)}}})
    )
    loaded = load_config(str(path), {})
    await upgrade(loaded.database_url)
    return loaded


async def test_the_app_ends_requests_left_at_shutdown(config: Config) -> None:
    """A request whose response can no longer be sent (its connection is gone, and the server
    never takes the bytes) is cancelled before the app's shutdown finishes."""
    app = create_app(config)
    sending = asyncio.Event()

    async def stuck(message: Message) -> None:
        sending.set()
        await asyncio.Event().wait()

    async def request_once() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v2/",
        "raw_path": b"/v2/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"registry")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 5000),
    }
    async with app.router.lifespan_context(app):
        request = asyncio.create_task(app(scope, request_once, stuck))
        await asyncio.wait_for(sending.wait(), 10)
        assert not request.done()
    assert request.cancelled()
