"""End to end: the side-by-side benchmark runs on tiny sizes against both real registries."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"
POSTGRES = os.environ.get("DOCKYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

# One distinctive piece of each metric's row label.
METRICS = [
    "monolithic",
    "chunked",
    "1 client",
    "8 clients (aggregate)",
    "Manifest GET by tag",
    "Manifest HEAD by tag",
    "Blob HEAD",
    "Blob GET",
    "Tags list",
    "Small image pushes",
    "RSS at idle",
    "RSS peak",
    "RSS growth",
    "PSS at idle",
]
S3_METRICS = [
    "monolithic",
    "chunked",
    "1 client, redirects on",
    "8 clients (aggregate), redirects on",
    "1 client, redirects off",
    "8 clients (aggregate), redirects off",
    "8 clients, each its own blob (aggregate), redirects off",
    *METRICS[4:],
]
LISTINGS = ["`_catalog?n=100`, first", "`_catalog?n=100&last=`, last", "`tags/list?n=100`, first"]
LISTINGS.append("`tags/list?n=100&last=`, last")
_NUMBER = re.compile(r"^(-?[\d,]+(?:\.\d+)?)(?: |$)")

needs_tools = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("docker-registry", "wrk", "hey")),
    reason="needs docker-registry, wrk and hey installed (see bench/README.md)",
)


def _postgres_listening() -> bool:
    url = urlsplit(POSTGRES)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), 2):
            return True
    except OSError:
        return False


def _number(cell: str) -> float:
    match = _NUMBER.match(cell.strip())
    assert match, f"not a number: {cell!r}"
    return float(match[1].replace(",", ""))


def _table_rows(report: str, first_header: str) -> list[list[str]]:
    """Cells of the body rows of the first Markdown table whose header starts so."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _run(tmp_path: Path, *args: str) -> str:
    output = tmp_path / "table.md"
    done = subprocess.run(
        [sys.executable, str(BENCH), *args, "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = output.read_text()
    assert report in done.stdout
    return report


def _assert_every_metric(report: str, names: list[str]) -> None:
    rows = _table_rows(report, "| Metric | Dockyard |")
    assert len(rows) == len(names)
    for name in names:
        row = next((r for r in rows if name in r[0]), None)
        assert row is not None, f"no row for {name!r} in:\n{report}"
        label, dockyard, distribution, ratio = row
        assert _number(dockyard) > 0, label
        assert _number(distribution) > 0, label
        assert _number(ratio) > 0, label


@needs_tools
def test_quick_run_reports_every_metric_for_both_registries(tmp_path: Path) -> None:
    report = _run(tmp_path, "--quick")
    _assert_every_metric(report, METRICS)


@needs_tools
@pytest.mark.skipif(
    importlib.util.find_spec("moto") is None or not _postgres_listening(),
    reason=f"needs moto[server] and PostgreSQL at {POSTGRES}",
)
def test_quick_s3_run_reports_redirected_and_direct_pulls(tmp_path: Path) -> None:
    report = _run(tmp_path, "--quick", "--storage", "s3", "--postgres", POSTGRES)

    assert report.startswith("# Dockyard vs CNCF Distribution: S3 storage")
    _assert_every_metric(report, S3_METRICS)
    details = _table_rows(report, "| Metric | Ratio per round |")
    assert {"pull_1_direct", "pull_n_direct", "pull_n_distinct_direct"} <= {
        row[0] for row in details
    }
    header = next(line for line in report.splitlines() if "| Ratio per round |" in line)
    assert "| Store CPU (Dy / Dist) |" in header


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_quick_scaling_times_each_listing_at_each_size(tmp_path: Path, database: str) -> None:
    if shutil.which("docker-registry") is None:
        pytest.skip("needs docker-registry installed (see bench/README.md)")
    if database == "postgres" and not _postgres_listening():
        pytest.skip(f"needs PostgreSQL at {POSTGRES} (Debian postgresql)")
    raw = tmp_path / "raw.json"
    report = _run(
        tmp_path,
        "--scaling",
        "--quick",
        "--database",
        database,
        "--postgres",
        POSTGRES,
        "--json",
        str(raw),
    )
    store = "PostgreSQL" if database == "postgres" else "SQLite"
    assert f"| Dockyard (MetadataStore API, {store}) |" in report

    rows = _table_rows(report, "| Listing | Size |")
    sizes = json.loads(raw.read_text())["sizes"]["counts"]
    assert len(rows) == len(LISTINGS) * len(sizes)
    for listing in LISTINGS:
        for size in sizes:
            row = next(r for r in rows if r[0].startswith(listing) and r[1].startswith(f"{size} "))
            _, _, dockyard, distribution, ratio, names, _ = row
            assert _number(dockyard) > 0, row
            assert _number(distribution) > 0, row
            assert _number(ratio) > 0, row
            dockyard_names, distribution_names = (_number(n) for n in names.split(" / "))
            assert dockyard_names == 100, row
            # Distribution 2.8.2 ignores n in tag lists and answers with every tag.
            assert distribution_names in ((100,) if "_catalog" in listing else (100, size)), row
    growth = _table_rows(report, "| Listing | Dockyard:")
    assert len(growth) == len(LISTINGS)
    assert all(cell.endswith("x") for row in growth for cell in row[1:]), growth
