"""``notifications`` in the config: Distribution's keys, and ``dockyard check-config`` naming a
misconfigured endpoint's key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dockyard.cli import main
from dockyard.config import load_config
from dockyard.events.service import EventService
from dockyard.events.sink import NO_EVENTS, Events, Target
from dockyard.metadata.engine import open_database

GOOD = """\
version: 0.1
notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      url: https://listener.example.com/event
      headers:
        Authorization: [Bearer token]
      timeout: 500ms
      threshold: 5
      backoff: 1s
      ignoredmediatypes: [application/octet-stream]
      ignore:
        mediatypes: [text/plain]
        actions: [pull]
    - name: off
      url: http://127.0.0.1:9/
      disabled: true
"""


def _check(tmp_path: Path, text: str) -> tuple[int, str, str]:
    path = tmp_path / "config.yml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check-config", str(path)])
    return result.exit_code, result.stdout, result.stderr


def test_distribution_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(GOOD)
    notifications = load_config(str(path), {}).notifications
    assert notifications.events.includereferences
    first, second = notifications.endpoints
    assert (first.timeout, first.threshold, first.backoff) == (0.5, 5, 1.0)
    assert first.headers == {"Authorization": ["Bearer token"]}
    assert first.ignores("pull", "application/vnd.oci.image.manifest.v1+json")
    assert first.ignores("push", "application/octet-stream")
    assert first.ignores("push", "text/plain")
    assert not first.ignores("push", "application/vnd.oci.image.manifest.v1+json")
    assert not first.ignores("delete", None)
    assert notifications.active == [first]
    assert second.disabled
    assert _check(tmp_path, GOOD) == (0, "ok\n", "")


def test_zero_values_mean_distributions_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "notifications:\n  endpoints:\n"
        "    - {name: a, url: 'http://h/', timeout: 0, threshold: 0, backoff: 0}\n"
    )
    endpoint = load_config(str(path), {}).notifications.endpoints[0]
    assert (endpoint.timeout, endpoint.threshold, endpoint.backoff) == (1.0, 10, 1.0)


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("{name: a, url: 'ftp://host/x'}", "notifications.endpoints[0].url: "),
        ("{name: a, url: 'not a url'}", "notifications.endpoints[0].url: "),
        ("{name: a, url: 'http://host:99999999/'}", "notifications.endpoints[0].url: "),
        ("{name: a, url: 'http://h/', timeout: soon}", "notifications.endpoints[0].timeout: "),
        ("{name: a, url: 'http://h/', backoff: -1s}", "notifications.endpoints[0].backoff: "),
        ("{name: a, url: 'http://h/', threshold: -1}", "notifications.endpoints[0].threshold: "),
        ("{name: a, url: 'http://h/', retries: 3}", "notifications.endpoints[0].retries: "),
        ("{url: 'http://h/'}", "notifications.endpoints[0].name: "),
        ("{name: a, url: 'http://h/'}, {name: a, url: 'http://h/'}", "unique: a"),
    ],
)
def test_check_config_names_the_bad_key(tmp_path: Path, endpoint: str, message: str) -> None:
    code, out, err = _check(tmp_path, f"version: 0.1\nnotifications:\n  endpoints: [{endpoint}]\n")
    assert (code, out) == (2, "")
    assert message in err


def _service(tmp_path: Path, text: str) -> EventService:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return EventService(load_config(str(path), {}), open_database(_URL), None)


_URL = "sqlite:////nonexistent/never-opened.db"


def test_events_are_written_only_when_something_consumes_them(tmp_path: Path) -> None:
    assert _service(tmp_path, "version: 0.1\n").sink is NO_EVENTS
    disabled = "notifications:\n  endpoints: [{name: a, url: 'http://h/', disabled: true}]\n"
    assert _service(tmp_path, disabled).sink is NO_EVENTS
    enabled = disabled.replace("true", "false")
    sink = _service(tmp_path, enabled).sink
    assert isinstance(sink, Events)
    target = Target("blob", "repo", "sha256:" + "a" * 64, "application/octet-stream", 1)
    [event] = sink.changed("push", target)
    assert event.consumers == ("endpoint:a",)
    audited = _service(tmp_path, "auth:\n  builtin: {}\n").sink
    assert isinstance(audited, Events)
    assert audited.changed("delete", target)[0].consumers == ("audit",)
