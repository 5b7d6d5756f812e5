"""Log lines as ``log`` configures them: the three formatters, the static fields, request ids,
and the stream each logger writes to."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap

import pytest

from dockyard.observability.logging import (
    REQUEST_ID,
    JsonFormatter,
    LogstashFormatter,
    RequestIdFilter,
    TextFormatter,
    make_formatter,
)


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("dockyard.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_text_line_carries_level_logger_message_and_fields() -> None:
    line = TextFormatter({"service": "registry"}).format(
        record("hello %s", "world", fields={"repository": "a/b", "note": "two words"})
    )
    assert line.endswith(
        '[WARNING] dockyard.test: hello world service=registry repository=a/b note="two words"'
    )
    assert line[:4].isdigit()  # an ISO 8601 timestamp first


def test_json_and_logstash_documents() -> None:
    made = record(fields={"status": 201}, request_id="r-1")
    document = json.loads(JsonFormatter({"service": "registry"}).format(made))
    assert document == {
        "time": document["time"],
        "level": "warning",
        "logger": "dockyard.test",
        "msg": "hello %s",
        "service": "registry",
        "request_id": "r-1",
        "status": 201,
    }
    stash = json.loads(LogstashFormatter({"service": "registry"}).format(made))
    assert stash["@version"] == "1"
    assert stash["message"] == "hello %s"
    assert stash["logger_name"] == "dockyard.test"
    assert stash["service"] == "registry"
    assert stash["@timestamp"] == document["time"]


def test_an_exception_goes_with_its_line() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: broken" in json.loads(JsonFormatter().format(made))["error"]
    assert "ValueError: broken" in TextFormatter().format(made)


def test_request_id_filter_stamps_the_current_request() -> None:
    stamp = RequestIdFilter()
    outside = record()
    stamp.filter(outside)
    assert vars(outside)["request_id"] is None
    token = REQUEST_ID.set("abc")
    try:
        inside = record()
        stamp.filter(inside)
    finally:
        REQUEST_ID.reset(token)
    assert vars(inside)["request_id"] == "abc"
    assert "request_id=abc" in TextFormatter().format(inside)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("text", TextFormatter), ("json", JsonFormatter), ("logstash", LogstashFormatter)],
)
def test_make_formatter_by_name(name: str, kind: type[logging.Formatter]) -> None:
    assert type(make_formatter(name)) is kind


def _run(log_section: str) -> subprocess.CompletedProcess[str]:
    program = textwrap.dedent(
        f"""
        import logging
        from dockyard.config import LogConfig
        from dockyard.observability.logging import configure_logging
        configure_logging(LogConfig.model_validate({log_section}))
        logging.getLogger("dockyard.x").info("an info line")
        logging.getLogger("dockyard.x").error("an error line")
        logging.getLogger("dockyard.access").info("an access line")
        """
    )
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )


def test_levels_streams_and_the_access_switch() -> None:
    done = _run('{"level": "error", "fields": {"service": "registry"}}')
    assert "an info line" not in done.stderr
    assert "[ERROR] dockyard.x: an error line service=registry" in done.stderr
    # The access log goes to standard output whatever the level.
    assert done.stdout.startswith("an access line service=registry")
    quiet = _run('{"accesslog": {"disabled": True}}')
    assert "an info line" in quiet.stderr
    assert quiet.stdout == ""
    as_json = _run('{"formatter": "json"}')
    assert json.loads(as_json.stdout)["msg"] == "an access line"
    assert [json.loads(line)["level"] for line in as_json.stderr.splitlines()] == [
        "info",
        "error",
    ]


def test_report_caller_adds_the_function_and_file() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter(caller=True))
    logger = logging.getLogger("dockyard.test.caller")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("here")
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "here func=test_report_caller_adds_the_function_and_file file=" in line
    assert f"file={__file__}:" in line
