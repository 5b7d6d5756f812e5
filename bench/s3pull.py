"""Paired blob pulls from S3 storage with redirects off (or on), repeated: a quicker, steadier
look at one row pair of ``run.py --storage s3`` while working on the read path.

    python bench/s3pull.py [--rounds 5] [--size-mib 64] [--clients 8] [--repeats 3] [--hold]
                           [--distinct] [--only one|many] [--redirect]
                           [--baseline-cmd "env PYTHONPATH=/tmp/old/src python -m dockyard serve"]

Both registries start once over one moto server (Dockyard on PostgreSQL) with
``storage.redirect.disable: true`` (``false`` with ``--redirect``); one blob is pushed to each.
Each round then pulls it with one client and with ``--clients`` clients at once, each client
``--repeats`` times in a row, on each registry in turn, alternating which goes first. It prints
each pair, its ratio (Dockyard / Distribution) and the CPU seconds spent per GiB by each server
and by moto, then the median ratios. All clients pull the same blob, whose concurrent reads
Dockyard shares; with ``--distinct`` each client pulls a blob of its own (pushed at the start),
so that nothing is shared. ``--baseline-cmd`` adds a third server, another Dockyard (say, the
code before a change) over the same bucket and database, measured in the same rounds and paired
with Distribution the same way. ``--hold`` keeps the servers running after the push and prints
their pids and blob URLs (with ``--distinct``, one per client; for a profiler and a load of
one's own), until Enter is pressed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

from backends import DEFAULT_POSTGRES, MotoServer, Postgres, StoreCpu, round_stores
from registry import make_blob_file
from servers import RunningServer, distribution, dockyard
from workloads import (
    Measurement,
    pull_many,
    pull_one,
    pull_together,
    push_file,
    push_monolithic,
)

MiB = 1 << 20
BASELINE = "Dockyard-before"


def _line(name: str, m: Measurement, gib: float) -> str:
    return (
        f"{name:15} {m.value:8.1f} MiB/s  server {m.server_cpu / gib:5.2f} s/GiB  "
        f"moto {m.store_cpu / gib:5.2f} s/GiB  client {m.client_cpu / gib:5.2f} s/GiB  "
        f"other {m.other_cpu / gib:5.2f} s/GiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--hold", action="store_true", help="keep the servers up for profiling")
    parser.add_argument("--only", choices=("one", "many"), help="run one of the two pulls")
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="in the pull by many clients, each pulls a blob of its own (nothing shared)",
    )
    parser.add_argument(
        "--redirect",
        action="store_true",
        help="redirects on: each pull is the 307 and the client's GET of the presigned URL",
    )
    parser.add_argument("--dockyard-cmd", help="command that serves Dockyard")
    parser.add_argument("--baseline-cmd", help="command that serves a second Dockyard")
    args = parser.parse_args(argv)
    ratios: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-s3pull-") as tmp, contextlib.ExitStack() as st:
        work = Path(tmp)
        blob = make_blob_file(work / "blob", args.size_mib * MiB)
        distinct = [
            make_blob_file(work / f"blob-{index}", args.size_mib * MiB)
            for index in range(args.clients if args.distinct else 0)
        ]
        postgres = Postgres(args.postgres)
        postgres.check()
        moto = st.enter_context(MotoServer(work / "moto.log"))
        storages = st.enter_context(round_stores(moto, postgres, 1))
        postmaster = postgres.postmaster()
        servers = []
        specs = [(dockyard(args.dockyard_cmd), storages[0]), (distribution(), storages[1])]
        if args.baseline_cmd:
            baseline = dataclasses.replace(dockyard(args.baseline_cmd), name=BASELINE)
            specs.append((baseline, storages[0]))
        for spec, storage in specs:
            spec = dataclasses.replace(
                spec,
                s3=dataclasses.replace(storage, redirect=args.redirect),
                stores=StoreCpu(moto.pid, storage.database, postmaster),
            )
            server = st.enter_context(RunningServer(spec, work))
            push_monolithic(server, blob)
            for each in distinct:
                push_file(server, "bench/distinct", each)
            servers.append(server)
        if args.hold:
            print(f"moto {moto.pid}; " + "; ".join(f"{s.spec.name} {s.pid}" for s in servers))
            for s in servers:
                print(f"  {s.spec.name}: {s.url('/v2/bench/mono/blobs/' + blob.digest)}")
                for each in distinct:
                    print(f"    {s.url('/v2/bench/distinct/blobs/' + each.digest)}")
            input("press Enter to stop ")
            return 0
        kinds = ["one", "many"] if args.only is None else [args.only]
        for number in range(args.rounds):
            order = servers if number % 2 == 0 else servers[::-1]
            for kind in kinds:
                got: dict[str, Measurement] = {}
                for server in order:
                    if kind == "one":
                        got[server.spec.name] = pull_one(server, blob, args.repeats, args.redirect)
                        gib = args.repeats * blob.size / (1 << 30)
                    elif distinct:
                        got[server.spec.name] = pull_together(
                            server, "bench/distinct", distinct, args.redirect, args.repeats
                        )
                        gib = args.repeats * sum(each.size for each in distinct) / (1 << 30)
                    else:
                        got[server.spec.name] = pull_many(
                            server, blob, args.clients, args.redirect, args.repeats
                        )
                        gib = args.repeats * args.clients * blob.size / (1 << 30)
                base = got["Distribution"].value
                mine = [name for name in got if name != "Distribution"]
                for name in mine:
                    ratios.setdefault((kind, name), []).append(got[name].value / base)
                shown = ", ".join(f"{name} {got[name].value / base:.2f}" for name in mine)
                print(f"round {number + 1} pull_{kind}: ratio to Distribution: {shown}")
                for name, m in got.items():
                    print("  " + _line(name, m, gib))
                sys.stdout.flush()
    for (kind, name), values in ratios.items():
        print(
            f"pull_{kind} {name}: median ratio {statistics.median(values):.2f} "
            f"({', '.join(f'{v:.2f}' for v in values)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
