"""Medians, paired ratios and the Markdown report."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scaling import LISTINGS, PageTime, ScalingResult
from workloads import Measurement, Outcome, Sizes

__all__ = ["Metric", "Row", "metrics", "render", "render_scaling", "summarize"]

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


def _pulls(sizes: Sizes, suffix: str, how: str) -> list[Metric]:
    blob = _size(sizes.blob)
    return [
        Metric(f"pull_1{suffix}", f"Blob pull {blob}, 1 client{how}", "MiB/s", True),
        Metric(
            f"pull_n{suffix}",
            f"Blob pull {blob}, {sizes.pull_clients} clients (aggregate){how}",
            "MiB/s",
            True,
        ),
    ]


def metrics(sizes: Sizes, s3: bool = False) -> list[Metric]:
    """The rows of the report; ``s3`` adds the pulls with redirects off."""
    blob, chunk, large = _size(sizes.blob), _size(sizes.chunk), _size(sizes.rss_blob)
    c = sizes.rps_connections
    if s3:
        pulls = _pulls(sizes, "", ", redirects on (307 followed to S3)")
        pulls += _pulls(sizes, "_direct", ", redirects off (bytes through the registry)")
        pulls.append(
            Metric(
                "pull_n_distinct_direct",
                f"Blob pull {blob}, {sizes.pull_clients} clients, each its own blob "
                "(aggregate), redirects off",
                "MiB/s",
                True,
            )
        )
    else:
        pulls = _pulls(sizes, "", "")
    head_note = " (redirects followed)" if s3 else ""
    get_note = " (the 307 to S3, not followed)" if s3 else f" ({sizes.layer_size} bytes)"
    return [
        Metric("push_monolithic", f"Blob push {blob}, monolithic (POST + one PUT)", "MiB/s", True),
        Metric("push_chunked", f"Blob push {blob}, chunked ({chunk} PATCHes)", "MiB/s", True),
        *pulls,
        Metric("rps_manifest_get", f"Manifest GET by tag, {c} connections", "req/s", True),
        Metric("rps_manifest_head", f"Manifest HEAD by tag, {c} connections", "req/s", True),
        Metric("rps_blob_head", f"Blob HEAD, {c} connections{head_note}", "req/s", True),
        Metric("rps_blob_get", f"Blob GET, {c} connections{get_note}", "req/s", True),
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


def _work_per_cpu(m: Measurement) -> float | None:
    """Work done per CPU-second of the server and of the stores it drove (none on a local
    filesystem)."""
    cpu = m.server_cpu + m.store_cpu
    return m.value * m.wall / cpu if cpu > 0 and m.wall > 0 else None


def efficiency_ratio(row: Row) -> float | None:
    """Median paired ratio of work done per CPU-second of the server and its stores (> 1:
    Dockyard better)."""
    ratios = []
    for dy, dist in row.pairs:
        mine, theirs = _work_per_cpu(dy), _work_per_cpu(dist)
        if mine is not None and theirs:
            ratios.append(mine / theirs)
    return _median(ratios)


def detail_table(rows: Sequence[Row], cores: int, stores: bool = False) -> str:
    """``stores``: add the CPU of the S3 server and database backends each server drove."""
    per = "server + store" if stores else "server"
    lines = [
        f"| Metric | Ratio per round | Ratio per {per} CPU-second | Load tool "
        "| Client CPU (Dy / Dist run) | Server CPU (Dy / Dist) "
        + ("| Store CPU (Dy / Dist) " if stores else "")
        + "| Other load (Dy / Dist run) |",
        "| --- | --- | ---: | --- | --- | --- | " + ("--- | " if stores else "") + "--- |",
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
            + (
                f"| {_cpu_share(dy, 'store', cores)} / {_cpu_share(dist, 'store', cores)} "
                if stores
                else ""
            )
            + f"| {_cpu_share(dy, 'other', cores)} / {_cpu_share(dist, 'other', cores)} |"
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


def render(
    rows: Sequence[Row], header: Sequence[str], cores: int, stores: bool = False, title: str = ""
) -> str:
    """The report; ``stores`` adds the store CPU column (S3 server, database backends)."""
    heading = "# Dockyard vs CNCF Distribution" + (f": {title}" if title else "")
    parts = [heading, "", *header, "", table(rows), ""]
    parts += [flat_verdict(rows), ""]
    store_note = (
        " Store CPU is what the S3 server and the PostgreSQL backends of Dockyard's database "
        "used meanwhile, on behalf of that server (the S3 server serves the bytes of a "
        "redirected pull); it counts in the ratio per CPU-second. Backends that exited "
        "meanwhile (connections opened and closed under load) are counted through the "
        "PostgreSQL server's time for reaped children, which on a shared server also holds "
        "other databases' short connections: that part errs against Dockyard."
        if stores
        else ""
    )
    parts += [
        "CPU columns: median share of the whole machine "
        f"({cores} cores = 100%) over each timed part; the client is this harness plus its "
        "load generator; other load is every other process on the machine plus kernel work "
        "charged to no process (loopback network softirq, disk writeback). The ratio per "
        "server CPU-second compares work done per CPU-second the server used (> 1.0: Dockyard "
        "does more with the same CPU); it matters when other load decides how much CPU each "
        f"server gets.{store_note}",
        "",
        detail_table(rows, cores, stores),
    ]
    errors = [f"- {r.metric.key}: {e}" for r in rows for e in r.errors]
    if errors:
        parts += ["", "Errors:", *errors]
    return "\n".join(parts) + "\n"


# -- listing scaling ----------------------------------------------------------------------------

_LISTING_LABELS = {
    "catalog_first": "`_catalog?n={n}`, first page",
    "catalog_last": "`_catalog?n={n}&last=`, last page",
    "tags_first": "`tags/list?n={n}`, first page",
    "tags_last": "`tags/list?n={n}&last=`, last page",
}


def _page(outcome: PageTime | str | None) -> PageTime | None:
    return outcome if isinstance(outcome, PageTime) else None


def _ms(page: PageTime | None) -> str:
    if page is None:
        return "error"
    return f"{page.ms:.1f} ms" if page.ms >= 10 else f"{page.ms:.2f} ms"


def _other(page: PageTime | None, cores: int) -> str:
    if page is None or page.measurement.wall <= 0:
        return "-"
    return f"{page.measurement.other_cpu / page.measurement.wall / cores * 100:.0f}%"


def _count(count: int) -> str:
    return f"{count // 1000}k" if count % 1000 == 0 else f"{count:,}"


def scaling_table(result: ScalingResult, cores: int) -> str:
    n = result.sizes.page
    lines = [
        "| Listing | Size | Dockyard | Distribution | Ratio (> 1.0: Dockyard better) "
        "| Names returned (Dy / Dist) | Other load (Dy / Dist) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for listing in LISTINGS:
        what = "repositories" if listing.startswith("catalog") else "tags"
        for count in result.sizes.counts:
            dy = _page(result.pages.get(DOCKYARD, {}).get(count, {}).get(listing))
            dist = _page(result.pages.get(DISTRIBUTION, {}).get(count, {}).get(listing))
            ratio = f"{dist.ms / dy.ms:.2f}" if dy and dist and dy.ms > 0 else "n/a"
            names = " / ".join(f"{p.names:,}" if p else "-" for p in (dy, dist))
            lines.append(
                f"| {_LISTING_LABELS[listing].format(n=n)} | {count:,} {what} | {_ms(dy)} "
                f"| {_ms(dist)} | {ratio} | {names} | {_other(dy, cores)} / {_other(dist, cores)} |"
            )
    return "\n".join(lines)


def growth_table(result: ScalingResult) -> str:
    counts = result.sizes.counts
    first = counts[0]
    columns = [(server, count) for server in (DOCKYARD, DISTRIBUTION) for count in counts[1:]]
    lines = [
        "| Listing | "
        + " | ".join(f"{server}: {_count(c)} / {_count(first)}" for server, c in columns)
        + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for listing in LISTINGS:
        cells = []
        for server, count in columns:
            by_count = result.pages.get(server, {})
            base = _page(by_count.get(first, {}).get(listing))
            later = _page(by_count.get(count, {}).get(listing))
            cells.append(f"{later.ms / base.ms:.1f}x" if base and later and base.ms > 0 else "n/a")
        label = _LISTING_LABELS[listing].format(n=result.sizes.page)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fill_table(result: ScalingResult, database: str = "SQLite") -> str:
    lines = [
        f"| Filled to | Dockyard (MetadataStore API, {database}) | Distribution (layout files) |",
        "| ---: | ---: | ---: |",
    ]
    for count in result.sizes.counts:
        cells = []
        for server in (DOCKYARD, DISTRIBUTION):
            seconds = result.fill_seconds.get(server, {}).get(count)
            cells.append(f"{seconds:.1f} s" if isinstance(seconds, float) else "error")
        lines.append(f"| {count:,} repositories + {count:,} tags | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ignored_n(result: ScalingResult) -> list[str]:
    notes = []
    for server, by_count in result.pages.items():
        listings = sorted(
            {
                listing
                for by_listing in by_count.values()
                for listing, outcome in by_listing.items()
                if isinstance(outcome, PageTime) and outcome.names > result.sizes.page
            }
        )
        if listings:
            notes.append(
                f"- {server} answered {', '.join(listings)} with more than n={result.sizes.page} "
                "names: it ignores `n` (and `last`) there and returns every name, so its page "
                "time is the time to list them all."
            )
    return notes


def render_scaling(
    result: ScalingResult, header: Sequence[str], cores: int, database: str = "SQLite"
) -> str:
    """``database``: where Dockyard kept its metadata (SQLite, its default, or PostgreSQL)."""
    sizes = result.sizes
    parts = [
        "# Dockyard vs CNCF Distribution: listing pages as the registry grows",
        "",
        *header,
        "- Both registries on filesystem storage (Dockyard with its metadata in "
        f"{'its default SQLite' if database == 'SQLite' else database}), "
        "filled step by step to each size by direct writes: Dockyard's rows through its "
        "MetadataStore API, Distribution's link files in its storage layout. Every filled "
        "repository links one real layer and every filled tag one real manifest, both pushed "
        "through the API first.",
        "- Repositories are named `bench/repo-NNNNNN` (plus `bench/tags`, which holds the "
        "tags `t-NNNNNN`). The last page is asked with `last=` the name just before that page.",
        "- Each answer is checked against the names written (and the newest tag and repository "
        "are read back) before timing; the value is the median of requests timed one after "
        f"another on one connection: at least {sizes.min_samples} and {sizes.min_seconds:g} s "
        f"of them, but none started after {sizes.budget:g} s (a slow page gets fewer, at "
        "least one).",
        "- Ratio: Distribution's time / Dockyard's, so > 1.0 means Dockyard is faster.",
        "",
        scaling_table(result, cores),
        "",
        *_ignored_n(result),
        "",
        "How page time grows with the registry (page time at each size / at the smallest):",
        "",
        growth_table(result),
        "",
        "Time to fill (the records added at each step):",
        "",
        fill_table(result, database),
        "",
        f"Other load: the CPU share of all {cores} cores that went neither to the server nor "
        "to this harness over the timed requests (other processes, kernel work).",
    ]
    errors = result.errors()
    if errors:
        parts += ["", "Errors:", *(f"- {e}" for e in errors)]
    return "\n".join(parts) + "\n"
