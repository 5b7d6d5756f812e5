"""Side-by-side benchmark of Dockyard and CNCF Distribution on this machine.

    python bench/run.py [--rounds N] [--quick] [--storage {filesystem,s3}] [--output FILE]
                        [--json FILE]
    python bench/run.py --scaling [--quick] [--output FILE] [--json FILE]
    python bench/run.py --gc [--quick] [--output FILE] [--json FILE]

Each round starts both registries afresh, each in a fresh temp dir, and runs every workload on
one and then at once on the other (which goes first alternates from round to round), so that
each pair of numbers is taken under the same conditions; the memory workload then gets one
more freshly started server each. The table gives each registry's median over the rounds and
the median of the paired per-round ratios.
With ``--storage s3`` both keep their blobs on one S3-compatible server (and Dockyard its
metadata in PostgreSQL), and the blob pulls run again with redirects off. ``--scaling`` times
listing pages as both registries grow (see ``scaling.py``); ``--gc`` times garbage collection
on registries of 10k and 100k manifests (see ``gcbench.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from backends import DEFAULT_POSTGRES, BackendError, MotoServer, Postgres, StoreCpu, round_stores
from loadgen import missing_tools
from registry import make_blob_file
from report import DISTRIBUTION, DOCKYARD, metrics, render, render_scaling, summarize
from scaling import QUICK_SCALING, SCALING, run_scaling
from servers import RunningServer, ServerSpec, distribution, dockyard
from workloads import (
    DEFAULT,
    QUICK,
    S3_DEFAULT,
    S3_QUICK,
    Blobs,
    Measurement,
    Outcome,
    Sizes,
    Step,
    attempt,
    direct_pull_steps,
    rss_step,
    steps,
)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def _dockyard_version() -> str:
    try:
        return metadata.version("dockyard")
    except metadata.PackageNotFoundError:
        return "unknown"


def _show(outcome: Outcome) -> str:
    if isinstance(outcome, Measurement):
        return f"{outcome.value:,.1f}"
    return f"ERROR {outcome}"


def _start(
    spec: ServerSpec, work: Path, stack: contextlib.ExitStack, log: Path | None
) -> RunningServer | str:
    try:
        return stack.enter_context(RunningServer(spec, work, log))
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".strip()
        _log(f"  {spec.name}: {error}")
        return error.splitlines()[0][:300]


def _record(results: dict[str, Outcome], name: str, outcome: dict[str, Outcome]) -> None:
    for metric, value in outcome.items():
        results[metric] = value
        _log(f"  {name} {metric}: {_show(value)}")


Results = dict[str, dict[str, Outcome]]  # server -> metric -> outcome, for one round


def _together(
    specs: list[ServerSpec],
    step_list: list[Step],
    by_server: Results,
    work: Path,
    logs: Path | None,
    label: str,
) -> None:
    """Start every server, then run each step on one server after the other, in the order of
    ``specs``."""
    with contextlib.ExitStack() as stack:
        servers = {
            spec.name: _start(spec, work, stack, logs and logs / f"{label}-{spec.name}.log")
            for spec in specs
        }
        for step in step_list:
            for spec in specs:
                server = servers[spec.name]
                done = by_server[spec.name]
                if isinstance(server, str):
                    outcome: dict[str, Outcome] = dict.fromkeys(step.keys, server)
                else:
                    outcome = attempt(server, step, done)
                _record(done, spec.name, outcome)


def _alone(
    specs: list[ServerSpec],
    step: Step,
    by_server: Results,
    work: Path,
    logs: Path | None,
    label: str,
) -> None:
    """Run ``step`` on one freshly started server of each kind, one at a time."""
    for spec in specs:
        with contextlib.ExitStack() as stack:
            server = _start(spec, work, stack, logs and logs / f"{label}-{spec.name}.log")
            if isinstance(server, str):
                outcome: dict[str, Outcome] = dict.fromkeys(step.keys, server)
            else:
                outcome = attempt(server, step, {})
            _record(by_server[spec.name], spec.name, outcome)


@dataclasses.dataclass(frozen=True, slots=True)
class S3Setup:
    moto: MotoServer
    postgres: Postgres
    postmaster: int | None  # to count database backends that exit


def run(
    sizes: Sizes,
    rounds: int,
    specs: list[ServerSpec],
    work: Path,
    logs: Path | None = None,
    s3: S3Setup | None = None,
) -> list[Results]:
    """Each round starts both servers afresh and runs each workload on one, then the other.
    With ``s3``, each round gets fresh buckets and a fresh database, and the pulls run once
    more on both servers restarted with redirects off."""
    extra = f" and {sizes.pull_clients} x1 to pull apart" if s3 is not None else ""
    _log(f"writing random blobs ({sizes.blob >> 20} MiB x2{extra}, {sizes.rss_blob >> 20} MiB) ...")
    blobs = Blobs(
        make_blob_file(work / "blob-monolithic", sizes.blob),
        make_blob_file(work / "blob-chunked", sizes.blob),
        make_blob_file(work / "blob-large", sizes.rss_blob),
        tuple(
            make_blob_file(work / f"blob-distinct-{index}", sizes.blob)
            for index in range(sizes.pull_clients if s3 is not None else 0)
        ),
    )
    results = []
    for number in range(1, rounds + 1):
        _log(f"round {number}/{rounds}")
        by_server: Results = {spec.name: {} for spec in specs}
        # Whoever goes second finds the machine (page cache, the S3 server's heap) as the
        # first left it: alternate, so that neither always has that place.
        ordered = specs if number % 2 else specs[::-1]
        with contextlib.ExitStack() as stores:
            if s3 is None:
                _together(ordered, steps(sizes, blobs), by_server, work, logs, f"{number}")
                _alone(specs, rss_step(blobs), by_server, work, logs, f"{number}-memory")
                results.append(by_server)
                continue
            made = stores.enter_context(round_stores(s3.moto, s3.postgres, number))
            # round_stores gives Dockyard's storage first, as ``specs`` lists the servers.
            storages = {spec.name: storage for spec, storage in zip(specs, made, strict=True)}
            on = [
                dataclasses.replace(
                    spec,
                    s3=storages[spec.name],
                    stores=StoreCpu(s3.moto.pid, storages[spec.name].database, s3.postmaster),
                )
                for spec in ordered
            ]
            off = [
                dataclasses.replace(spec, s3=dataclasses.replace(spec.s3, redirect=False))
                for spec in on
                if spec.s3 is not None
            ]
            _together(on, steps(sizes, blobs, redirect=True), by_server, work, logs, f"{number}")
            _log("  restarting both with redirects off")
            pulls = direct_pull_steps(sizes, blobs)
            _together(off, pulls, by_server, work, logs, f"{number}-direct")
            _alone(on, rss_step(blobs), by_server, work, logs, f"{number}-memory")
        results.append(by_server)
    return results


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def _common_header(started_at: str, elapsed: float, load_start: str, what: str) -> list[str]:
    cores = os.cpu_count() or 1
    return [
        f"- Run: {started_at}, {what}, {elapsed:.0f} s.",
        f"- Dockyard {_dockyard_version()} (default workers); Distribution: "
        f"{_version(['docker-registry', '--version'])}.",
        f"- Machine: {cores} cores, shared with other work (see the other-load column); load "
        f"average at the start {load_start}, at the end {_load()}.",
    ]


def _write_json(path: Path, document: object) -> None:
    path.write_text(json.dumps(document, indent=2))


def _measurement_json(outcome: Outcome) -> object:
    return dataclasses.asdict(outcome) if isinstance(outcome, Measurement) else {"error": outcome}


def _benchmark(args: argparse.Namespace, specs: list[ServerSpec]) -> int:
    s3 = args.storage == "s3"
    sizes = {
        (False, False): DEFAULT,
        (False, True): QUICK,
        (True, False): S3_DEFAULT,
        (True, True): S3_QUICK,
    }[s3, args.quick]
    rounds = args.rounds or (1 if args.quick else 3)
    started_at = datetime.datetime.now().isoformat(timespec="seconds")
    load_start = _load()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.workdir) as work:
        if not s3:
            results = run(sizes, rounds, specs, Path(work), args.logs)
        else:
            postgres = Postgres(args.postgres)
            postgres.check()
            with MotoServer(Path(work) / "moto.log") as moto:
                setup = S3Setup(moto, postgres, postgres.postmaster())
                results = run(sizes, rounds, specs, Path(work), args.logs, setup)
    elapsed = time.monotonic() - started

    cores = os.cpu_count() or 1
    rows = summarize(metrics(sizes, s3), results)
    storage = (
        "blobs in one S3-compatible server (moto's standalone server, in memory, on this "
        "machine), a bucket each; Dockyard's metadata in a PostgreSQL database of its own"
        if s3
        else "filesystem storage"
    )
    header = _common_header(
        started_at,
        elapsed,
        load_start,
        f"{rounds} round(s){' (--quick sizes)' if args.quick else ''}",
    )
    header += [
        "- The machine's cores are shared by the server under test and the clients "
        "(this harness, wrk, hey), so the clients' CPU is taken from the server: request rates "
        "are lower than on a dedicated machine and differences between servers are compressed.",
        f"- Each round starts both registries afresh in fresh temp dirs ({storage}, "
        "delete enabled) and runs each workload on one, then at once on the other (Dockyard "
        "first in odd rounds, Distribution first in even ones); "
        "memory is measured on one more fresh server each. Values are medians over the rounds; "
        "the ratio is the median of the per-round (paired) ratios.",
        "- Ratio > 1.0 always means Dockyard is better: Dockyard / Distribution for throughput "
        "and rates; Distribution / Dockyard for memory, marked (inverted).",
        "- GET rates from wrk, HEAD rates from hey (wrk cannot do HEAD), each with "
        f"{sizes.rps_connections} connections for {sizes.rps_seconds} s after a "
        f"{sizes.rps_warmup} s warm-up.",
        "- RSS: sum of VmRSS over the server's process tree, sampled every 50 ms (pages shared "
        "between worker processes count once per process).",
    ]
    if s3:
        header += [
            "- S3 mode: each round gets fresh buckets and a fresh PostgreSQL database (dropped "
            "afterwards). Both registries run with their default redirects on (Distribution "
            "with `storage.redirect.disable: false`): a blob GET is answered with a 307 to a "
            "presigned URL, which the client follows, so the pulls marked 'redirects on' are "
            "end to end, redirect included, with the S3 server sending the bytes. Then both "
            "restart with `storage.redirect.disable: true` over the same buckets and database "
            "for the pulls marked 'redirects off'. Blob sizes are smaller than in filesystem "
            "mode: the S3 server, written in Python, takes uploads at tens of MiB/s, which "
            "bounds both registries' pushes.",
            "- Distribution also redirects blob HEAD requests to S3 (Dockyard answers them "
            "itself); hey follows the redirect, so Distribution's blob HEAD rate includes a "
            "HEAD to the S3 server.",
            "- The blob GET rate is the rate of the 307s themselves (wrk does not follow "
            "them): the registry's own part of a redirected pull.",
        ]
    text = render(rows, header, cores, stores=s3, title="S3 storage" if s3 else "")
    print(text)
    if args.output:
        args.output.write_text(text)
    if args.json:
        raw = [
            {
                server: {k: _measurement_json(v) for k, v in by_metric.items()}
                for server, by_metric in round_results.items()
            }
            for round_results in results
        ]
        _write_json(
            args.json,
            {"storage": args.storage, "sizes": dataclasses.asdict(sizes), "rounds": raw},
        )
    return 1 if any(row.errors for row in rows) else 0


def _scaling(args: argparse.Namespace, specs: list[ServerSpec]) -> int:
    sizes = QUICK_SCALING if args.quick else SCALING
    started_at = datetime.datetime.now().isoformat(timespec="seconds")
    load_start = _load()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        temp = tempfile.TemporaryDirectory(prefix="bench-", dir=args.workdir)
        work = Path(stack.enter_context(temp))
        if args.database == "postgres":
            postgres = Postgres(args.postgres)
            postgres.check()
            name = f"bench_scaling_{secrets.token_hex(4)}"
            url = postgres.create(name)
            stack.callback(postgres.drop, name)
            specs = [dataclasses.replace(specs[0], database=url), *specs[1:]]
        result = run_scaling(sizes, specs, work, args.logs)
    elapsed = time.monotonic() - started
    header = _common_header(
        started_at,
        elapsed,
        load_start,
        "listing scaling" + (" (--quick sizes)" if args.quick else ""),
    )
    database = "PostgreSQL" if args.database == "postgres" else "SQLite"
    text = render_scaling(result, header, os.cpu_count() or 1, database)
    print(text)
    if args.output:
        args.output.write_text(text)
    if args.json:
        _write_json(args.json, result.to_json())
    return 1 if result.errors() else 0


def _gc(args: argparse.Namespace) -> int:
    from gcbench import CASES, QUICK_CASES, header_lines, render, run_cases

    started_at = datetime.datetime.now().isoformat(timespec="seconds")
    load_start = _load()
    started = time.monotonic()
    command = args.distribution_cmd or "docker-registry"
    results = run_cases(QUICK_CASES if args.quick else CASES, args.workdir, command)
    what = "garbage collection" + (" (--quick sizes)" if args.quick else "")
    header = _common_header(started_at, time.monotonic() - started, load_start, what)
    text = render(results, header + header_lines(args.workdir))
    print(text)
    if args.output:
        args.output.write_text(text)
    if args.json:
        _write_json(args.json, [dataclasses.asdict(r) for r in results])
    return 1 if any(r.errors or r.distribution_error for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument(
        "--storage",
        choices=("filesystem", "s3"),
        default="filesystem",
        help="where both registries keep blobs (s3: one moto server; Dockyard on PostgreSQL)",
    )
    parser.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES,
        help="PostgreSQL server on which --storage s3 creates and drops Dockyard's database "
        f"(default {DEFAULT_POSTGRES})",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="time catalog and tag-list pages as both registries grow (filesystem storage)",
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="with --scaling: Dockyard's metadata in SQLite (its default) or in a database "
        "created (and dropped) on --postgres",
    )
    parser.add_argument(
        "--gc",
        action="store_true",
        help="time garbage collection on 10k and 100k manifests (filesystem storage)",
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write every per-round measurement here")
    parser.add_argument("--logs", type=Path, help="keep each server's log in this directory")
    parser.add_argument("--workdir", type=Path, help="parent of the temp dirs (default: TMPDIR)")
    parser.add_argument(
        "--dockyard-cmd", help="command that serves Dockyard (default: python -m dockyard serve)"
    )
    parser.add_argument(
        "--distribution-cmd",
        help="command that serves Distribution (default: docker-registry serve)",
    )
    args = parser.parse_args(argv)
    if args.scaling and (args.storage != "filesystem" or args.rounds):
        parser.error("--scaling runs once, on filesystem storage: no --storage s3, no --rounds")
    if args.database != "sqlite" and not args.scaling:
        parser.error("--database applies to --scaling (--storage s3 always uses PostgreSQL)")
    if args.gc and (args.storage != "filesystem" or args.rounds or args.scaling):
        parser.error("--gc runs once, on filesystem storage: no --storage s3, --rounds, --scaling")

    missing = [] if args.scaling or args.gc else missing_tools()
    if (
        shutil.which(
            args.distribution_cmd.split()[0] if args.distribution_cmd else "docker-registry"
        )
        is None
    ):
        missing.append("docker-registry")
    if missing:
        _log(f"missing tools: {', '.join(missing)} (see bench/README.md)")
        return 2

    specs = [dockyard(args.dockyard_cmd), distribution(args.distribution_cmd)]
    assert [s.name for s in specs] == [DOCKYARD, DISTRIBUTION]
    try:
        if args.gc:
            return _gc(args)
        if args.scaling:
            return _scaling(args, specs)
        return _benchmark(args, specs)
    except BackendError as exc:
        _log(f"cannot run: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
