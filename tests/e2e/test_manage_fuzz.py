"""Schemathesis against the management API's own OpenAPI document, over real HTTP: whatever
it generates (valid and invalid bodies, paths, query parameters), no answer is a 5xx. The
number of examples is bounded to keep the run short."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import DISTRIBUTION, _factory
from .manage_site import ADMIN, Hub, hub_fixture

pytestmark = pytest.mark.skipif(DISTRIBUTION, reason="the management API is Dockyard's own")

# Examples per operation, as the site administrator (who reaches the most code). About 160
# requests: some 40 s on a busy 2-core machine.
EXAMPLES = 5
TIMEOUT = 120


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[Hub]:
    factory = _factory(lambda: tmp_path_factory.mktemp("fuzz"), unused_tcp_port_factory)
    yield from hub_fixture(factory, tmp_path_factory.mktemp("keys"))
    factory.close()


def _schemathesis() -> list[str]:
    binary = Path(sys.executable).parent / "schemathesis"
    if binary.exists():
        return [str(binary)]
    found = shutil.which("schemathesis")
    if found is None:
        pytest.skip("schemathesis is not installed: pip install -e '.[test]'")
    return [found]


def test_no_server_errors(hub: Hub, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *_schemathesis(),
            "run",
            f"{hub.url}/api/v1/openapi.json",
            # Fuzzing only: the coverage phase's systematic negative cases take minutes here,
            # and test_manage_api.py sends such bad input on purpose.
            "--phases",
            "fuzzing",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "1",
            "--workers",
            "2",
            "--no-color",
            "--header",
            f"Authorization: Bearer {hub.tokens[ADMIN]}",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    report = done.stdout
    assert "Server error" not in report, report[-3000:]
    # Every operation was exercised, not skipped for lack of time or examples.
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected is not None, report[-3000:]
    assert tested is not None, report[-3000:]
    assert int(tested.group(1)) == int(selected.group(2)) >= 30, report[-3000:]
