"""End to end: the garbage collection benchmark runs on tiny sizes, against Dockyard and
Distribution, and its counts show the collector touching only the garbage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def test_quick_gc_bench_reports_costs_that_follow_the_garbage(tmp_path: Path) -> None:
    if shutil.which("docker-registry") is None:
        pytest.skip("needs docker-registry installed (see bench/README.md)")
    output, raw = tmp_path / "table.md", tmp_path / "raw.json"
    options = ["--gc", "--quick", "--output", str(output), "--json", str(raw)]
    done = subprocess.run(
        [sys.executable, str(BENCH), *options, "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = output.read_text()
    assert report.startswith("# Garbage collection: Dockyard (online) vs CNCF Distribution")
    small, large = json.loads(raw.read_text())
    assert small["case"]["manifests"] == large["case"]["manifests"]
    assert large["garbage_blobs"] > 3 * small["garbage_blobs"] > 0
    for case in (small, large):
        assert case["errors"] == []
        # The collector deleted each garbage blob's bytes and asked storage nothing else.
        assert case["storage_calls"] == {"delete": case["garbage_blobs"]}
        assert case["removed_blobs"] == case["garbage_blobs"]
        untagged = max(1, round(case["case"]["manifests"] * case["case"]["garbage"]))
        assert case["removed_manifests"] == untagged
        assert case["cli_seconds"] > 0
        assert case["collect_seconds"] > 0
        label = (
            f"| {case['case']['manifests']:,} manifests, {case['case']['garbage']:.1%} garbage |"
        )
        row = next(line for line in report.splitlines() if line.startswith(label))
        assert f"delete {case['garbage_blobs']}" in row
    # Same registry size, five times the garbage: about five times the database work.
    assert 3 < large["statements"] / small["statements"] < 8
    assert 3 < large["vm_steps"] / small["vm_steps"] < 8
    # Distribution ran on the first case: the same blobs go, and the manifests' own blobs.
    assert small["distribution_seconds"] > 0
    assert (
        small["distribution_removed_blobs"] == small["garbage_blobs"] + small["removed_manifests"]
    )
