"""Requests still running when the worker stops, ended before it exits.

Granian runs the app's shutdown once every connection has ended, but a request's task can
outlive its connection: a client that went away mid-download leaves the task reading until its
next send fails. The event loop then stops under it, the task never finishes, and neither do
its ``finally`` blocks. Worse, AnyIO stops a worker thread when the task it counted as the
thread's root finishes, and in the moment between Granian's main task ending and the loop
stopping, that root is the request's own task: such a thread waits for work forever, and the
interpreter, which joins every thread at exit, never exits (the server hangs on SIGTERM).
``RequestTasks`` knows each request's task, and at shutdown cancels those left and waits for
them, so that their cleanup runs and their threads are told to stop while the loop still runs.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RequestTasks", "TrackRequests"]

log = logging.getLogger("dockyard.server")

_GRACE = 10.0
"""Seconds cancelled requests get to finish their cleanup (a thread's disk or network call
ends first: AnyIO shields it from cancellation)."""


class RequestTasks:
    """The tasks of the requests in progress in this worker."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: asyncio.Task[object]) -> None:
        self._tasks.add(task)

    def discard(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)

    async def end_leftovers(self, grace: float = _GRACE) -> int:
        """Cancel the requests still running and wait for them, ``grace`` seconds at most;
        how many there were."""
        current = asyncio.current_task()
        left = [task for task in self._tasks if task is not current and not task.done()]
        if not left:
            return 0
        log.info("ending %d request(s) that outlived their connections", len(left))
        for task in left:
            task.cancel()
        _, pending = await asyncio.wait(left, timeout=grace)
        if pending:
            log.warning("%d request(s) did not end within %g s of shutdown", len(pending), grace)
        return len(left)


class TrackRequests:
    """Pure ASGI middleware: records each HTTP request's task in ``tasks`` while it runs."""

    def __init__(self, app: ASGIApp, tasks: RequestTasks) -> None:
        self.app = app
        self.tasks = tasks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task() if scope["type"] == "http" else None
        if task is None:
            await self.app(scope, receive, send)
            return
        self.tasks.add(task)
        try:
            await self.app(scope, receive, send)
        finally:
            self.tasks.discard(task)
