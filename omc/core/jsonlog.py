"""Structured logs: one JSON object a line (`OMC_LOG_FORMAT=json`), secrets redacted.

`JsonFormatter` writes `ts` (ISO UTC), `level`, `logger`, `message`, the ids bound to the
current context (`log_context(request_id=…, job_id=…)`, e.g. by an API middleware or a
worker around a job), any `extra={…}` fields of the call, and `exc` for a traceback. Every
string goes through the process-wide redactor of `omc.core.masking` (known secret values,
credentials in URLs, `key=value` pairs), so a JSON log line never carries a secret the text
logs would have hidden.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from omc.core.masking import PROCESS_REDACTOR

_IDS: ContextVar[dict[str, str]] = ContextVar("omc_log_ids", default={})  # noqa: B039 - never mutated
# attributes every LogRecord has: anything else on a record came from `extra=`
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@contextmanager
def log_context(**ids: str) -> Iterator[None]:
    """Add these ids (request_id, job_id, account, …) to every log line inside the block."""
    token = _IDS.set({**_IDS.get(), **{k: str(v) for k, v in ids.items()}})
    try:
        yield
    finally:
        _IDS.reset(token)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return PROCESS_REDACTOR.text(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return PROCESS_REDACTOR.text(str(value))


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON, every string redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _clean(record.getMessage()),
        }
        out.update({k: _clean(v) for k, v in _IDS.get().items()})
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = _clean(value)
        if record.exc_info:
            out["exc"] = _clean(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)
