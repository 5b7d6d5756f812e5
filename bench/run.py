"""Side-by-side benchmark of Dockyard and CNCF Distribution on this machine.

    python bench/run.py [--rounds N] [--quick] [--output FILE] [--json FILE]

Each round starts both registries afresh, each in a fresh temp dir, and runs every workload on
Dockyard and then at once on Distribution, so that each pair of numbers is taken under the same
conditions; the memory workload then gets one more freshly started server each. The table
gives each registry's median over the rounds and the median of the paired per-round ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from loadgen import missing_tools
from registry import make_blob_file
from report import DISTRIBUTION, DOCKYARD, metrics, render, summarize
from servers import RunningServer, ServerSpec, distribution, dockyard
from workloads import DEFAULT, QUICK, Blobs, Measurement, Outcome, Sizes, attempt, rss_step, steps


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


def run(
    sizes: Sizes, rounds: int, specs: list[ServerSpec], work: Path, logs: Path | None = None
) -> list[dict[str, dict[str, Outcome]]]:
    """Each round starts both servers afresh and runs each workload on one, then the other."""
    _log(f"writing random blobs ({sizes.blob >> 20} MiB x2, {sizes.rss_blob >> 20} MiB) ...")
    blobs = Blobs(
        make_blob_file(work / "blob-monolithic", sizes.blob),
        make_blob_file(work / "blob-chunked", sizes.blob),
        make_blob_file(work / "blob-large", sizes.rss_blob),
    )
    results = []
    for number in range(1, rounds + 1):
        _log(f"round {number}/{rounds}")
        by_server: dict[str, dict[str, Outcome]] = {spec.name: {} for spec in specs}
        with contextlib.ExitStack() as stack:
            servers = {
                spec.name: _start(spec, work, stack, logs and logs / f"{number}-{spec.name}.log")
                for spec in specs
            }
            for step in steps(sizes, blobs):
                for spec in specs:
                    server = servers[spec.name]
                    done = by_server[spec.name]
                    if isinstance(server, str):
                        outcome: dict[str, Outcome] = dict.fromkeys(step.keys, server)
                    else:
                        outcome = attempt(server, step, done)
                    _record(done, spec.name, outcome)
        memory = rss_step(blobs)
        for spec in specs:
            with contextlib.ExitStack() as stack:
                log = logs and logs / f"{number}-{spec.name}-memory.log"
                server = _start(spec, work, stack, log)
                if isinstance(server, str):
                    outcome = dict.fromkeys(memory.keys, server)
                else:
                    outcome = attempt(server, memory, {})
                _record(by_server[spec.name], spec.name, outcome)
        results.append(by_server)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
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

    missing = missing_tools()
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

    sizes = QUICK if args.quick else DEFAULT
    rounds = args.rounds or (1 if args.quick else 3)
    specs = [dockyard(args.dockyard_cmd), distribution(args.distribution_cmd)]
    assert [s.name for s in specs] == [DOCKYARD, DISTRIBUTION]

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.workdir) as work:
        results = run(sizes, rounds, specs, Path(work), args.logs)
    elapsed = time.monotonic() - started

    cores = os.cpu_count() or 1
    rows = summarize(metrics(sizes), results)
    header = [
        f"- Run: {datetime.datetime.now().isoformat(timespec='seconds')}, "
        f"{rounds} round(s){' (--quick sizes)' if args.quick else ''}, {elapsed:.0f} s.",
        f"- Dockyard {_dockyard_version()} (default workers); Distribution: "
        f"{_version(['docker-registry', '--version'])}.",
        f"- Machine: {cores} cores, shared by the server under test and the clients "
        "(this harness, wrk, hey), so the clients' CPU is taken from the server: request rates "
        "are lower than on a dedicated machine and differences between servers are compressed.",
        "- Each round starts both registries afresh in fresh temp dirs (filesystem storage, "
        "delete enabled) and runs each workload on Dockyard, then at once on Distribution; "
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
    text = render(rows, header, cores)
    print(text)
    if args.output:
        args.output.write_text(text)
    if args.json:
        raw = [
            {
                server: {
                    k: dataclasses.asdict(v) if isinstance(v, Measurement) else {"error": v}
                    for k, v in by_metric.items()
                }
                for server, by_metric in round_results.items()
            }
            for round_results in results
        ]
        args.json.write_text(
            json.dumps({"sizes": dataclasses.asdict(sizes), "rounds": raw}, indent=2)
        )
    failed = any(row.errors for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
