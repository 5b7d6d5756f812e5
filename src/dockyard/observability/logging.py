"""Log lines as ``log`` configures them: ``level``, ``formatter`` (text, json, logstash) and
``fields``, the same in the Granian parent and in every worker.

Everything goes to standard error except the access log (``dockyard.access``), which goes to
standard output at every ``level``, as Distribution does. Granian's own loggers go through the
same formatter. A line logged while a request is served carries that request's id.

    text       2025-01-02T03:04:05.678+00:00 [INFO] dockyard.server: message key=value
    json       {"time": ..., "level": "info", "logger": ..., "msg": ..., key: value}
    logstash   {"@timestamp": ..., "@version": "1", "level": ..., "message": ..., key: value}
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import logging.config
import re
from collections.abc import Mapping
from typing import Any

from dockyard.config import LogConfig

__all__ = [
    "ACCESS_LOGGER",
    "REQUEST_ID",
    "JsonFormatter",
    "LogstashFormatter",
    "RequestIdFilter",
    "TextFormatter",
    "configure_logging",
    "logging_config",
    "make_formatter",
]

ACCESS_LOGGER = "dockyard.access"

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "dockyard_request_id", default=None
)
"""The id of the request being served by the current task, if any."""

FIELDS_ATTRIBUTE = "fields"
"""``logger.info(msg, extra={"fields": {...}})`` adds structured fields to one line."""

_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "error": "ERROR"}
_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request it was logged for (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds")


def _level(record: logging.LogRecord) -> str:
    return _NAMES.get(record.levelno, record.levelname.lower())


class _Formatter(logging.Formatter):
    def __init__(self, fields: Mapping[str, Any] | None = None, caller: bool = False) -> None:
        super().__init__()
        self.static = dict(fields or {})
        self.caller = caller

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The static ``log.fields``, then the request id, then the line's own fields."""
        merged = dict(self.static)
        if self.caller:  # log.reportcaller
            merged["func"] = record.funcName
            merged["file"] = f"{record.pathname}:{record.lineno}"
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            merged["request_id"] = request_id
        own = getattr(record, FIELDS_ATTRIBUTE, None)
        if isinstance(own, Mapping):
            merged.update(own)
        return merged

    def problem(self, record: logging.LogRecord) -> str | None:
        if record.exc_info:
            return self.formatException(record.exc_info)
        if record.stack_info:
            return self.formatStack(record.stack_info)
        return None


_PLAIN = re.compile(r"[\w.:/@+-]+", re.ASCII)


def _text_value(value: Any) -> str:
    """``value`` as is when it is a plain token or number, else quoted as JSON."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


class TextFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} [{record.levelname}] {record.name}: {record.getMessage()}"
        pairs = " ".join(f"{k}={_text_value(v)}" for k, v in self.fields(record).items())
        if pairs:
            line = f"{line} {pairs}"
        problem = self.problem(record)
        return f"{line}\n{problem}" if problem else line


class AccessTextFormatter(TextFormatter):
    """The access line as it is (Combined Log Format), then its fields."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{k}={_text_value(v)}" for k, v in self.fields(record).items())
        message = record.getMessage()
        return f"{message} {pairs}" if pairs else message


class JsonFormatter(_Formatter):
    def document(self, record: logging.LogRecord) -> dict[str, Any]:
        return {
            "time": _timestamp(record),
            "level": _level(record),
            "logger": record.name,
            "msg": record.getMessage(),
        }

    def format(self, record: logging.LogRecord) -> str:
        document = self.document(record)
        for key, value in self.fields(record).items():
            document.setdefault(key, value)
        problem = self.problem(record)
        if problem:
            document["error"] = problem
        return json.dumps(document, default=str, ensure_ascii=False)


class LogstashFormatter(JsonFormatter):
    def document(self, record: logging.LogRecord) -> dict[str, Any]:
        return {
            "@timestamp": _timestamp(record),
            "@version": "1",
            "level": _level(record),
            "logger_name": record.name,
            "message": record.getMessage(),
        }


def make_formatter(
    formatter: str = "text",
    fields: Mapping[str, Any] | None = None,
    access: bool = False,
    caller: bool = False,
) -> logging.Formatter:
    """A formatter by ``log.formatter`` name; the factory ``logging_config`` names."""
    if formatter == "json":
        return JsonFormatter(fields, caller)
    if formatter == "logstash":
        return LogstashFormatter(fields, caller)
    return AccessTextFormatter(fields) if access else TextFormatter(fields, caller)


def logging_config(log: LogConfig) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for ``log``; Granian applies it in its parent and
    in every worker (it is plain data, so it crosses to spawned processes)."""
    level = _LEVELS[log.level]
    fields = {str(k): v for k, v in log.fields.items()}
    factory = f"{__name__}.make_formatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {
            "dockyard": {
                "()": factory,
                "formatter": log.formatter,
                "fields": fields,
                "caller": log.reportcaller,
            },
            "access": {
                "()": factory,
                "formatter": log.formatter,
                "fields": fields,
                "access": True,
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "dockyard",
                "filters": ["request"],
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            # Granian's access log is never on (ours replaces it); keep it quiet regardless.
            "granian.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            # One line per Alembic plugin at every start: noise.
            "alembic.runtime.plugins": {"level": "WARNING"},
            ACCESS_LOGGER: {
                "handlers": ["access"],
                # Every request, at any log.level; log.accesslog.disabled turns it off.
                "level": "CRITICAL" if log.accesslog.disabled else "INFO",
                "propagate": False,
            },
        },
        "root": {"handlers": ["console"], "level": level},
    }


def configure_logging(log: LogConfig) -> None:
    """Apply ``log`` to this process."""
    logging.config.dictConfig(logging_config(log))
