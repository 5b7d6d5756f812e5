"""A stop signal that reaches a freshly forked worker before the worker has restored the
default handlers still stops it, and the parent keeps its own handlers
(``dockyard.server.hold_stop_signals_across_forks``).

Run in a process of its own: fork hooks cannot be unregistered."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

_SCRIPT = textwrap.dedent(
    """
    import os, signal, time
    from dockyard.server import hold_stop_signals_across_forks

    noted = []
    # The parent's handler, as Granian installs it before forking: it only notes the stop.
    signal.signal(signal.SIGTERM, lambda *_: noted.append("parent"))
    # A worker slow to start: fork hooks run in the order they were registered, so this one
    # holds the child before its signals are put right, and the stop arrives meanwhile.
    os.register_at_fork(after_in_child=lambda: time.sleep(0.5))
    hold_stop_signals_across_forks()
    pid = os.fork()
    if pid == 0:
        time.sleep(20)  # serving, had the stop been lost
        os._exit(0)
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    os.kill(os.getpid(), signal.SIGTERM)
    print(os.waitstatus_to_exitcode(status), noted)
    """
)


def test_a_stop_sent_while_the_worker_starts_ends_it() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    # The child died of SIGTERM; the parent's handler still notes a stop sent to it.
    assert done.stdout.split() == ["-15", "['parent']"]
    assert time.monotonic() - started < 15
