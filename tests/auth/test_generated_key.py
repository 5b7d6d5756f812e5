"""``auth.builtin`` without ``signingkeys``: one ES256 key generated in the data directory,
private to its owner, and the same key for every start, worker and racing process."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dockyard.auth.builtin import GENERATED_KEY, BuiltinSettings
from dockyard.auth.factory import access_controller
from dockyard.auth.options import AuthConfigError
from dockyard.auth.signing import SigningKey

from .builtin_setup import write_key


def test_generated_once_and_reused(tmp_path: Path) -> None:
    first = BuiltinSettings.from_options({}, str(tmp_path))
    path = tmp_path / GENERATED_KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.keys.signer.algorithm == "ES256"
    again = BuiltinSettings.from_options({}, str(tmp_path))
    assert again.keys.signer.kid == first.keys.signer.kid
    # Nothing else is left behind in the directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == [GENERATED_KEY]


def test_configured_keys_win(tmp_path: Path) -> None:
    key = write_key(tmp_path / "configured.pem")
    data = tmp_path / "data"
    data.mkdir()
    settings = BuiltinSettings.from_options({"signingkeys": [str(key)]}, str(data))
    assert settings.keys.signer.kid == SigningKey.load(key).kid
    assert not (data / GENERATED_KEY).exists()


def test_factory_passes_the_data_directory(tmp_path: Path) -> None:
    controller = access_controller({"builtin": {}}, data_directory=str(tmp_path))
    assert (tmp_path / GENERATED_KEY).exists()
    assert controller is not None


def test_threads_racing_end_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / GENERATED_KEY
    with ThreadPoolExecutor(8) as pool:
        kids = set(pool.map(lambda _: SigningKey.load_or_create(path).kid, range(32)))
    assert kids == {SigningKey.load(path).kid}
    assert sorted(p.name for p in tmp_path.iterdir()) == [GENERATED_KEY]


def test_processes_racing_end_with_one_key(tmp_path: Path) -> None:
    # Processes started together, each generating and linking its key (as workers do).
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from dockyard.auth.signing import SigningKey
        start = float(sys.argv[1])
        while time.time() < start:
            pass
        print(SigningKey.load_or_create(Path({str(tmp_path / GENERATED_KEY)!r})).kid)
        """
    )
    start = str(time.time() + 1.5)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, start], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
        outputs.append(out.decode().strip())
    assert len(set(outputs)) == 1
    assert outputs[0] == SigningKey.load(tmp_path / GENERATED_KEY).kid


def test_an_unusable_key_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / GENERATED_KEY).write_text("not a key")
    with pytest.raises(AuthConfigError, match=r"auth\.builtin\.signingkeys: .*PEM private"):
        BuiltinSettings.from_options({}, str(tmp_path))


def test_a_data_directory_that_cannot_hold_the_key_stops_the_start(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(AuthConfigError, match="cannot create a signing key"):
        BuiltinSettings.from_options({}, str(not_a_directory))
