"""Listing pages as the registry grows: how long one page of ``_catalog`` and of
``tags/list`` takes with 1k, 10k and 100k repositories (and tags in one repository).

Both registries run side by side on filesystem storage (Dockyard with its default SQLite
metadata, or with ``--database postgres`` in a PostgreSQL database) and are filled step by step
to each size with direct writes (see ``fill.py``). At each size four listings are timed on
each: the first page (``n=100``) and the last page (``last=`` the name just before that page) of
the catalog and of one repository's tags. The first answer to each is checked against the names
written (and is not timed); then requests are timed one after another, for a second or so,
and their median kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from fill import DistributionFiller, DockyardFiller, Filler, Seed, push_seed
from httpclient import Response
from registry import RegistryError
from servers import RunningServer, ServerSpec
from workloads import Measurement, Meter

__all__ = [
    "LISTINGS",
    "QUICK_SCALING",
    "SCALING",
    "PageTime",
    "ScalingResult",
    "ScalingSizes",
    "run_scaling",
]

REPOSITORY_PREFIX = "bench/repo-"
TAGGED = "bench/tags"  # sorts after every bench/repo-*
TAG_PREFIX = "t-"
LISTINGS = ("catalog_first", "catalog_last", "tags_first", "tags_last")


@dataclass(frozen=True, slots=True)
class ScalingSizes:
    counts: tuple[int, ...]  # repositories, and tags in one repository, at each step
    page: int  # n
    # Timed requests go on until both minimums are reached, but none starts after the budget
    # is spent (a slow page gets fewer samples, at least one).
    min_samples: int
    min_seconds: float
    budget: float


SCALING = ScalingSizes((1_000, 10_000, 100_000), 100, 5, 1.0, 4.0)
QUICK_SCALING = ScalingSizes((150, 300), 100, 5, 0.2, 0.5)


@dataclass(frozen=True, slots=True)
class PageTime:
    ms: float  # median over the timed requests
    samples: int
    names: int  # names in the answer
    measurement: Measurement  # wall time and CPU over the timed requests


PageOutcome = PageTime | str  # or why there is none


@dataclass(slots=True)
class ScalingResult:
    sizes: ScalingSizes
    # server -> count -> listing -> outcome
    pages: dict[str, dict[int, dict[str, PageOutcome]]] = field(default_factory=dict)
    # server -> count -> seconds spent writing the records added at that step (or an error)
    fill_seconds: dict[str, dict[int, float | str]] = field(default_factory=dict)

    def errors(self) -> list[str]:
        found = [
            f"{server}, {count:,}, {listing}: {outcome}"
            for server, by_count in self.pages.items()
            for count, by_listing in by_count.items()
            for listing, outcome in by_listing.items()
            if isinstance(outcome, str)
        ]
        found += [
            f"{server}, fill to {count:,}: {outcome}"
            for server, by_count in self.fill_seconds.items()
            for count, outcome in by_count.items()
            if isinstance(outcome, str)
        ]
        return found

    def to_json(self) -> dict[str, object]:
        return {
            "sizes": asdict(self.sizes),
            "fill_seconds": self.fill_seconds,
            "pages": {
                server: {
                    str(count): {
                        listing: asdict(o) if isinstance(o, PageTime) else {"error": o}
                        for listing, o in by_listing.items()
                    }
                    for count, by_listing in by_count.items()
                }
                for server, by_count in self.pages.items()
            },
        }


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def repository_names(start: int, stop: int) -> list[str]:
    return [f"{REPOSITORY_PREFIX}{i:06d}" for i in range(start, stop)]


def tag_names(start: int, stop: int) -> list[str]:
    return [f"{TAG_PREFIX}{i:06d}" for i in range(start, stop)]


# -- checks ---------------------------------------------------------------------------------

Check = Callable[[Response], int]  # raises unless the answer is right; the names it holds


def _names(response: Response, key: str) -> list[str]:
    if response.status != 200:
        detail = response.body[:200].decode("utf-8", "replace")
        raise RegistryError(f"HTTP {response.status}: {detail}")
    names = json.loads(response.body).get(key) or []
    return [str(name) for name in names]


def _catalog_check(expected: list[str]) -> Check:
    def check(response: Response) -> int:
        got = _names(response, "repositories")
        if got != expected:
            raise RegistryError(
                f"catalog page has {len(got)} names ({got[:2]}...), wanted {len(expected)} "
                f"({expected[:2]}...)"
            )
        return len(got)

    return check


def _tags_check(expected: list[str], every: list[str]) -> Check:
    """The page; or, from a registry that ignores ``n`` and ``last``, every tag (any order)."""

    def check(response: Response) -> int:
        got = _names(response, "tags")
        if got != expected and sorted(got) != every:
            raise RegistryError(
                f"tag page has {len(got)} names ({got[:2]}...), wanted {len(expected)} "
                f"({expected[:2]}...) or all {len(every)}"
            )
        return len(got)

    return check


def _check_content(server: RunningServer, seed: Seed, count: int) -> None:
    """The newest filled tag serves the seed manifest; the newest repository its layer."""
    with server.client() as client:
        tag = tag_names(count - 1, count)[0]
        if client.get_manifest(TAGGED, tag).body != seed.manifest:
            raise RegistryError(f"{TAGGED}:{tag} serves other bytes")
        repo = repository_names(count - 1, count)[0]
        head = client.head(f"/v2/{repo}/blobs/{seed.layer}")
        if head.header("content-length") != str(seed.layer_size):
            raise RegistryError(f"{repo} blob HEAD: Content-Length {head.header('content-length')}")


# -- timing ---------------------------------------------------------------------------------


def _more(times: list[float], elapsed: float, sizes: ScalingSizes) -> bool:
    """Whether to time another request."""
    if not times:
        return True
    if elapsed >= sizes.budget:
        return False
    return len(times) < sizes.min_samples or elapsed < sizes.min_seconds


def _time_page(server: RunningServer, path: str, check: Check, sizes: ScalingSizes) -> PageTime:
    with server.client() as client:
        first = client.conn.request("GET", path)
        names = check(first)  # untimed: also the warm-up
        times: list[float] = []
        with Meter(server) as meter:
            began = time.perf_counter()
            while _more(times, time.perf_counter() - began, sizes):
                start = time.perf_counter()
                response = client.conn.request("GET", path)
                times.append(time.perf_counter() - start)
                if response.status != 200 or response.length != first.length:
                    raise RegistryError(f"GET {path} answered differently the second time")
    median = statistics.median(times) * 1000
    return PageTime(median, len(times), names, meter.measurement(median))


def _listings(count: int, page: int) -> dict[str, tuple[str, Check]]:
    repositories = [*repository_names(0, count), TAGGED]
    tags = tag_names(0, count)
    n = {"n": page}
    catalog_last = urlencode({**n, "last": repositories[-page - 1]})
    tags_last = urlencode({**n, "last": tags[-page - 1]})
    return {
        "catalog_first": (f"/v2/_catalog?{urlencode(n)}", _catalog_check(repositories[:page])),
        "catalog_last": (f"/v2/_catalog?{catalog_last}", _catalog_check(repositories[-page:])),
        "tags_first": (f"/v2/{TAGGED}/tags/list?{urlencode(n)}", _tags_check(tags[:page], tags)),
        "tags_last": (f"/v2/{TAGGED}/tags/list?{tags_last}", _tags_check(tags[-page:], tags)),
    }


# -- the run --------------------------------------------------------------------------------


def _filler(server: RunningServer, seed: Seed) -> Filler:
    if server.spec.name == "Dockyard":
        # The database it was given, else its default one beside its blobs.
        url = server.spec.database or f"sqlite:///{server.root / 'dockyard.db'}"
        return DockyardFiller(url, seed)
    return DistributionFiller(server.root, seed)


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


@dataclass(slots=True)
class _Side:
    """One registry during the run: its server and filler, or why it is out."""

    server: RunningServer | None = None
    filler: Filler | None = None
    broken: str = ""


def _start(spec: ServerSpec, stack: contextlib.ExitStack, work: Path, logs: Path | None) -> _Side:
    side = _Side()
    try:
        side.server = stack.enter_context(
            RunningServer(spec, work, logs and logs / f"scaling-{spec.name}.log")
        )
        with side.server.client() as client:
            seed = push_seed(client, TAGGED)
        side.filler = _filler(side.server, seed)
        stack.callback(side.filler.close)
    except Exception as exc:
        side.broken = _error(exc)
        _log(f"  {spec.name}: {side.broken}")
    return side


def _fill(side: _Side, start: int, stop: int) -> float | str:
    """Seconds spent adding repositories and tags ``start`` to ``stop``, or the error."""
    if side.broken or side.filler is None:
        return side.broken
    began = time.monotonic()
    try:
        side.filler.add_repositories(repository_names(start, stop))
        side.filler.add_tags(tag_names(start, stop))
    except Exception as exc:
        side.broken = _error(exc)
        return side.broken
    return time.monotonic() - began


def _measure(
    side: _Side, listing: str, path: str, check: Check, count: int, sizes: ScalingSizes
) -> PageOutcome:
    if side.broken or side.server is None or side.filler is None:
        return side.broken
    try:
        side.server.check_alive()
        if listing == LISTINGS[0]:  # once per size
            _check_content(side.server, side.filler.seed, count)
        return _time_page(side.server, path, check, sizes)
    except Exception as exc:
        return _error(exc)


def run_scaling(
    sizes: ScalingSizes, specs: list[ServerSpec], work: Path, logs: Path | None = None
) -> ScalingResult:
    """Start both registries, then fill them to each size in turn and time the listings."""
    if min(sizes.counts) <= sizes.page:
        raise ValueError("every size must exceed the page size")
    result = ScalingResult(sizes)
    with contextlib.ExitStack() as stack:
        sides = {spec.name: _start(spec, stack, work, logs) for spec in specs}
        filled = 0
        for count in sizes.counts:
            _log(f"filling to {count:,} repositories and {count:,} tags")
            for name, side in sides.items():
                outcome = result.fill_seconds.setdefault(name, {})[count] = _fill(
                    side, filled, count
                )
                _log(f"  {name}: {outcome if isinstance(outcome, str) else f'{outcome:.1f} s'}")
            filled = count
            os.sync()  # no writeback of the fill while pages are timed
            for listing, (path, check) in _listings(count, sizes.page).items():
                for name, side in sides.items():
                    page = _measure(side, listing, path, check, count, sizes)
                    result.pages.setdefault(name, {}).setdefault(count, {})[listing] = page
                    _log(f"  {name} {listing} at {count:,}: {_show(page)}")
    return result


def _show(outcome: PageOutcome) -> str:
    if isinstance(outcome, PageTime):
        return f"{outcome.ms:.2f} ms ({outcome.names} names, {outcome.samples} timed)"
    return f"ERROR {outcome}"
