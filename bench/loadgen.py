"""Requests per second from external load generators.

``wrk`` drives GET requests. It cannot do HEAD (it waits for a body that never comes), so HEAD
requests are driven by ``hey``, which costs the machine more CPU per request; each endpoint is
measured with the same tool on both registries.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["LoadgenError", "LoadgenResult", "missing_tools", "run_load"]


class LoadgenError(Exception):
    """The load generator saw errors or non-2xx answers, or could not run."""


@dataclass(frozen=True, slots=True)
class LoadgenResult:
    requests_per_second: float
    tool: str


def missing_tools() -> list[str]:
    return [tool for tool in ("wrk", "hey") if shutil.which(tool) is None]


def _wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> LoadgenResult:
    threads = min(os.cpu_count() or 1, connections)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = _run([*argv, url], seconds)
    for problem in (r"Non-2xx or 3xx responses: \d+", r"Socket errors: .*"):
        found = re.search(problem, out)
        if found:
            raise LoadgenError(f"wrk on {url}: {found[0]}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise LoadgenError(f"wrk printed no rate:\n{out}")
    return LoadgenResult(float(rate[1]), "wrk")


def _hey(
    url: str, method: str, headers: dict[str, str], seconds: int, connections: int
) -> LoadgenResult:
    argv = ["hey", "-z", f"{seconds}s", "-c", str(connections), "-m", method]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = _run([*argv, url], seconds)
    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    if "Error distribution" in out or any(code >= 300 for code in statuses):
        raise LoadgenError(f"hey on {url}: statuses {statuses}\n{out[-600:]}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None or not statuses:
        raise LoadgenError(f"hey printed no rate:\n{out}")
    return LoadgenResult(float(rate[1]), "hey")


def _run(argv: list[str], seconds: int) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LoadgenError(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise LoadgenError(f"{argv[0]} exited {done.returncode}: {done.stderr[-600:]}")
    return done.stdout


def run_load(
    url: str, method: str, headers: dict[str, str], seconds: int, connections: int
) -> LoadgenResult:
    if method == "GET":
        return _wrk(url, headers, seconds, connections)
    return _hey(url, method, headers, seconds, connections)
