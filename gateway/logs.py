"""Logging: JSON lines by default (`LOG_FORMAT=text` for people), one configuration for the app
and gunicorn alike.

What must never reach a log, at any level: API keys, `Authorization` headers, and prompt or output
text (only with `LOG_BODIES=1`). The database library logs every statement with its parameters at
DEBUG (prompts, outputs, the reasoning key), so its logger never goes below INFO.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_BODIES = False
# peewee: SQL parameters at DEBUG. urllib3: a warning per connect retry, which gateway.upstream
# already reports once per failure.
_QUIET_LOGGERS = {"peewee": logging.INFO, "urllib3": logging.ERROR}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with the record's `fields` appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return line


def formatter_class(log_format: str) -> str:
    return f"gateway.logs.{'JSONFormatter' if log_format == 'json' else 'TextFormatter'}"


def _floor(name: str, level: str) -> int:
    return max(_QUIET_LOGGERS[name], logging.getLevelName(level))


def dict_config(level: str, log_format: str, gunicorn_access: bool = False) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the root logger and gunicorn's own loggers. gunicorn's
    access lines are off unless asked for: the gateway writes its own (gateway.access)."""
    handler = {"class": "logging.StreamHandler", "formatter": "gateway", "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"gateway": {"()": formatter_class(log_format)}},
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {"gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
                    "gunicorn.access": {"level": "INFO" if gunicorn_access else "CRITICAL",
                                        "handlers": ["stderr"], "propagate": False},
                    **{name: {"level": _floor(name, level)} for name in _QUIET_LOGGERS}},
    }


def configure_logging(level: str, log_format: str = "json", log_bodies: bool = False) -> None:
    """For the app in any server: one stderr handler on the root logger (kept if already there)."""
    global _BODIES
    _BODIES = log_bodies
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    formatter = JSONFormatter() if log_format == "json" else TextFormatter()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setFormatter(formatter)
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(_floor(name, level))


def bodies_allowed() -> bool:
    """Whether prompt and output text may be logged (`LOG_BODIES=1`)."""
    return _BODIES


def redacted(text: str) -> str:
    """Upstream text that may echo a prompt: logged only with LOG_BODIES=1."""
    return text if _BODIES else f"<{len(text)} characters; LOG_BODIES=1 shows them>"
