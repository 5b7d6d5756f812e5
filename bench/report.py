"""Medians, paired ratios and the Markdown report."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from workloads import Measurement, Outcome, Sizes

__all__ = ["Metric", "Row", "metrics", "render", "summarize"]

DOCKYARD = "Dockyard"
DISTRIBUTION = "Distribution"
FLAT_LIMIT_MIB = 64.0
# A growth of (nearly) nothing would make the growth ratio explode; count at least 1 MiB.
_GROWTH_FLOOR_MIB = 1.0


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool


def _size(n: int) -> str:
    mib = n / (1 << 20)
    return f"{mib / 1024:g} GiB" if mib >= 1024 else f"{mib:g} MiB"


def metrics(sizes: Sizes) -> list[Metric]:
    blob, chunk, large = _size(sizes.blob), _size(sizes.chunk), _size(sizes.rss_blob)
    c = sizes.rps_connections
    return [
        Metric("push_monolithic", f"Blob push {blob}, monolithic (POST + one PUT)", "MiB/s", True),
        Metric("push_chunked", f"Blob push {blob}, chunked ({chunk} PATCHes)", "MiB/s", True),
        Metric("pull_1", f"Blob pull {blob}, 1 client", "MiB/s", True),
        Metric(
            "pull_n", f"Blob pull {blob}, {sizes.pull_clients} clients (aggregate)", "MiB/s", True
        ),
        Metric("rps_manifest_get", f"Manifest GET by tag, {c} connections", "req/s", True),
        Metric("rps_manifest_head", f"Manifest HEAD by tag, {c} connections", "req/s", True),
        Metric("rps_blob_head", f"Blob HEAD, {c} connections", "req/s", True),
        Metric("rps_tags_list", f"Tags list (10 tags), {c} connections", "req/s", True),
        Metric(
            "small_pushes",
            f"Small image pushes (3 layers + config + manifest), "
            f"{sizes.small_push_clients} clients",
            "pushes/s",
            True,
        ),
        Metric("rss_baseline", "Server RSS at idle, fresh start", "MiB", False),
        Metric("rss_peak", f"Server RSS peak, {large} blob pushed then pulled", "MiB", False),
        Metric("rss_growth", f"Server RSS growth (peak - idle), {large} blob", "MiB", False),
        Metric("pss_baseline", "Server PSS at idle (shared pages split)", "MiB", False),
    ]


@dataclass(frozen=True, slots=True)
class Row:
    metric: Metric
    dockyard: float | None  # median over the rounds that produced a value
    distribution: float | None
    ratio: float | None  # median of the paired per-round ratios; > 1 means Dockyard is better
    ratios: list[float]
    errors: list[str]
    details: dict[str, list[Measurement]]
    pairs: list[tuple[Measurement, Measurement]]  # (Dockyard, Distribution) of each full round


def paired_ratio(metric: Metric, dockyard: float, distribution: float) -> float | None:
    if metric.key == "rss_growth":
        dockyard = max(dockyard, _GROWTH_FLOOR_MIB)
        distribution = max(distribution, _GROWTH_FLOOR_MIB)
    if metric.higher_is_better:
        return dockyard / distribution if distribution > 0 else None
    return distribution / dockyard if dockyard > 0 else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(
    metric_list: Sequence[Metric], rounds: Sequence[Mapping[str, Mapping[str, Outcome]]]
) -> list[Row]:
    rows = []
    for metric in metric_list:
        values: dict[str, list[Measurement]] = {DOCKYARD: [], DISTRIBUTION: []}
        ratios: list[float] = []
        pairs: list[tuple[Measurement, Measurement]] = []
        errors: list[str] = []
        for number, results in enumerate(rounds, 1):
            pair: dict[str, Measurement] = {}
            for server in (DOCKYARD, DISTRIBUTION):
                outcome = results.get(server, {}).get(metric.key, "not run")
                if isinstance(outcome, Measurement):
                    values[server].append(outcome)
                    pair[server] = outcome
                else:
                    errors.append(f"round {number}, {server}: {outcome}")
            if len(pair) == 2:
                pairs.append((pair[DOCKYARD], pair[DISTRIBUTION]))
                ratio = paired_ratio(metric, pair[DOCKYARD].value, pair[DISTRIBUTION].value)
                if ratio is not None:
                    ratios.append(ratio)

        rows.append(
            Row(
                metric,
                _median([m.value for m in values[DOCKYARD]]),
                _median([m.value for m in values[DISTRIBUTION]]),
                statistics.median(ratios) if ratios else None,
                ratios,
                errors,
                values,
                pairs,
            )
        )
    return rows


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "error"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.1f} {unit}" if abs(value) >= 10 else f"{value:.2f} {unit}"


def _cpu_share(measurements: list[Measurement], side: str, cores: int) -> str:
    shares = [getattr(m, f"{side}_cpu") / m.wall / cores * 100 for m in measurements if m.wall > 0]
    return f"{statistics.median(shares):.0f}%" if shares else "-"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| Metric | Dockyard | Distribution | Ratio (> 1.0: Dockyard better) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        m = row.metric
        ratio = "n/a" if row.ratio is None else f"{row.ratio:.2f}"
        if not m.higher_is_better:
            ratio += " (inverted)"
        lines.append(
            f"| {m.label} ({m.unit}) | {_number(row.dockyard, m.unit)} "
            f"| {_number(row.distribution, m.unit)} | {ratio} |"
        )
    return "\n".join(lines)


def efficiency_ratio(row: Row) -> float | None:
    """Median paired ratio of work done per CPU-second of the server (> 1: Dockyard better)."""
    ratios = []
    for dy, dist in row.pairs:
        if min(dy.server_cpu, dist.server_cpu, dy.wall, dist.wall) > 0:
            ratios.append(
                (dy.value * dy.wall / dy.server_cpu) / (dist.value * dist.wall / dist.server_cpu)
            )
    return _median(ratios)


def detail_table(rows: Sequence[Row], cores: int) -> str:
    lines = [
        "| Metric | Ratio per round | Ratio per server CPU-second | Load tool "
        "| Client CPU (Dy / Dist run) | Server CPU (Dy / Dist) | Other load (Dy / Dist run) |",
        "| --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for row in rows:
        timed = [m for ms in row.details.values() for m in ms if m.wall > 0]
        if not timed:
            continue
        dy, dist = row.details[DOCKYARD], row.details[DISTRIBUTION]
        tools = ", ".join(sorted({m.tool or "bench client" for m in timed}))
        efficiency = efficiency_ratio(row)
        lines.append(
            f"| {row.metric.key} | {', '.join(f'{r:.2f}' for r in row.ratios) or '-'} "
            f"| {'n/a' if efficiency is None else f'{efficiency:.2f}'} | {tools} "
            f"| {_cpu_share(dy, 'client', cores)} / {_cpu_share(dist, 'client', cores)} "
            f"| {_cpu_share(dy, 'server', cores)} / {_cpu_share(dist, 'server', cores)} "
            f"| {_cpu_share(dy, 'other', cores)} / {_cpu_share(dist, 'other', cores)} |"
        )
    return "\n".join(lines)


def flat_verdict(rows: Sequence[Row]) -> str:
    growth = next((r for r in rows if r.metric.key == "rss_growth"), None)
    if growth is None or not growth.details[DOCKYARD]:
        return "Dockyard memory flatness: not measured."
    worst = max(m.value for m in growth.details[DOCKYARD])
    flat = worst < FLAT_LIMIT_MIB
    return (
        f"Dockyard memory stays flat: {'yes' if flat else 'NO'} (largest growth over the rounds "
        f"{worst:.1f} MiB; limit {FLAT_LIMIT_MIB:.0f} MiB)."
    )


def render(rows: Sequence[Row], header: Sequence[str], cores: int) -> str:
    parts = ["# Dockyard vs CNCF Distribution", "", *header, "", table(rows), ""]
    parts += [flat_verdict(rows), ""]
    parts += [
        "CPU columns: median share of the whole machine "
        f"({cores} cores = 100%) over each timed part; the client is this harness plus its "
        "load generator; other load is every other process on the machine plus kernel work "
        "charged to no process (loopback network softirq, disk writeback). The ratio per "
        "server CPU-second compares work done per CPU-second the server used (> 1.0: Dockyard "
        "does more with the same CPU); it matters when other load decides how much CPU each "
        "server gets.",
        "",
        detail_table(rows, cores),
    ]
    errors = [f"- {r.metric.key}: {e}" for r in rows for e in r.errors]
    if errors:
        parts += ["", "Errors:", *errors]
    return "\n".join(parts) + "\n"
