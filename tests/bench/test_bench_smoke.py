"""End to end: the side-by-side benchmark runs on tiny sizes against both real registries."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"

# One distinctive piece of each metric's row label.
METRICS = [
    "monolithic",
    "chunked",
    "1 client",
    "8 clients (aggregate)",
    "Manifest GET by tag",
    "Manifest HEAD by tag",
    "Blob HEAD",
    "Tags list",
    "Small image pushes",
    "RSS at idle",
    "RSS peak",
    "RSS growth",
    "PSS at idle",
]
_NUMBER = re.compile(r"^(-?[\d,]+(?:\.\d+)?)(?: |$)")


def _number(cell: str) -> float:
    match = _NUMBER.match(cell.strip())
    assert match, f"not a number: {cell!r}"
    return float(match[1].replace(",", ""))


def _table_rows(report: str) -> list[list[str]]:
    """Cells of the first Markdown table's body rows."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Metric | Dockyard |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("docker-registry", "wrk", "hey")),
    reason="needs docker-registry, wrk and hey installed (see bench/README.md)",
)
def test_quick_run_reports_every_metric_for_both_registries(tmp_path: Path) -> None:
    output = tmp_path / "table.md"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = output.read_text()
    assert report in done.stdout
    rows = _table_rows(report)
    assert len(rows) == len(METRICS)
    for name in METRICS:
        row = next((r for r in rows if name in r[0]), None)
        assert row is not None, f"no row for {name!r} in:\n{report}"
        label, dockyard, distribution, ratio = row
        assert _number(dockyard) > 0, label
        assert _number(distribution) > 0, label
        assert _number(ratio) > 0, label
