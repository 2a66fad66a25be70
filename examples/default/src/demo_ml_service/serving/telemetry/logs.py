"""JSON logs: one object per line on stderr, with the trace, request and model of the request."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace

# Set by the telemetry middleware for the duration of a request.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
MODEL_VERSION: ContextVar[str | None] = ContextVar("model_version", default=None)

# Standard LogRecord attributes, and uvicorn's ANSI-coloured duplicate of its message.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace_id, span_id, trace_sampled,
    request_id, model_version, then any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        context = trace.get_current_span().get_span_context()
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": format(context.trace_id, "032x") if context.is_valid else None,
            "span_id": format(context.span_id, "016x") if context.is_valid else None,
            # Only a traced request has a trace (sampling is decided before any span work);
            # every request's lines carry its request_id.
            "trace_sampled": context.trace_flags.sampled if context.is_valid else None,
            "request_id": REQUEST_ID.get(),
            "model_version": MODEL_VERSION.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current sys.stderr (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr from the root logger (uvicorn's loggers propagate to it). Idempotent."""
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    # The JSON lines carry none of these, and collecting them is most of what a log call costs:
    # the caller's file and line (a stack walk), thread, process and asyncio task names.
    logging._srcfile = None  # the knob logging documents in its source for this
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if hasattr(logging, "logAsyncioTasks"):  # Python 3.12+
        logging.logAsyncioTasks = False
