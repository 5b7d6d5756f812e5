"""glibc's thresholds, set for each worker: large buffers come from the heap, not mappings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

if not sys.platform.startswith("linux"):
    pytest.skip("glibc's malloc is Linux's", allow_module_level=True)

# Allocates a 4 MiB buffer after ``SETUP`` and prints how many chunks glibc mapped for it.
_PROBE = """
import ctypes, ctypes.util, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
SETUP
before = libc.mallinfo2().hblks
buffer = bytearray(4 << 20)
print(libc.mallinfo2().hblks - before)
"""


def _mapped(setup: str, env: dict[str, str] | None = None) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("SETUP", setup)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return int(done.stdout.split()[-1])


def test_untuned_glibc_maps_a_large_buffer() -> None:
    # The premise: without the thresholds, glibc maps the buffer (so the tests below can fail).
    assert _mapped("") == 1


def test_tuned_the_buffer_comes_from_the_heap() -> None:
    setup = "from dockyard.malloc import tune_malloc\nassert tune_malloc()"
    assert _mapped(setup) == 0


def test_every_worker_is_tuned(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"database:\n  url: sqlite:///{tmp_path / 'registry.db'}\n"
    )
    setup = "from dockyard.app import from_environment\nfrom_environment()"
    assert _mapped(setup, {"DOCKYARD_CONFIG": str(config)}) == 0


def test_an_operators_settings_win() -> None:
    setup = "from dockyard.malloc import tune_malloc\nassert not tune_malloc()"
    # glibc read the operator's threshold at start-up: 1 MiB, below the buffer.
    assert _mapped(setup, {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}) == 1
    tunables = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1048576"}
    assert _mapped(setup, tunables) == 1
