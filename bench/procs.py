"""Memory and CPU of a server's whole process tree, read from /proc."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

__all__ = [
    "RssSampler",
    "cpu_seconds",
    "machine_busy_seconds",
    "parent_pid",
    "pids_titled",
    "tree_cpu_seconds",
    "tree_pids",
    "tree_pss",
    "tree_rss",
]

_TICKS = os.sysconf("SC_CLK_TCK")


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    pids: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                stack.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return pids


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> int:
    """Sum of VmRSS over the tree, in bytes (shared pages count once per process)."""
    return sum(_rss(pid) for pid in tree_pids(root))


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pss(root: int) -> int:
    """Sum of the proportional set size over the tree, in bytes (shared pages split)."""
    return sum(_pss(pid) for pid in tree_pids(root))


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (man 5 proc, from field 3)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def _cpu_ticks(pid: int, reaped_children: bool) -> int:
    fields = _stat_fields(pid)
    if fields is None:
        return 0
    # fields[11:15] are utime, stime, cutime, cstime (man 5 proc, fields 14-17).
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of the live tree, plus what the root's reaped children used."""
    return sum(_cpu_ticks(pid, pid == root) for pid in tree_pids(root)) / _TICKS


def cpu_seconds(pid: int, reaped_children: bool = False) -> float:
    """User + system CPU of one process (all its threads), and with ``reaped_children`` that
    of the children it has waited for; 0 if it is gone."""
    return _cpu_ticks(pid, reaped_children) / _TICKS


def pids_titled(pattern: re.Pattern[str]) -> list[int]:
    """Processes whose command line (or the title they set on it) matches ``pattern``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern.search(title):
            pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (iowait counts as idle)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


class RssSampler:
    """Samples the tree's RSS every ``interval`` seconds on a thread, under named phases."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root = root
        self.interval = interval
        self.samples: dict[str, list[int]] = {}
        self._phase = "idle"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def phase(self, name: str) -> None:
        self._phase = name
        self.samples.setdefault(name, []).append(tree_rss(self.root))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.setdefault(self._phase, []).append(tree_rss(self.root))

    def __enter__(self) -> RssSampler:
        self.samples.setdefault(self._phase, []).append(tree_rss(self.root))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
