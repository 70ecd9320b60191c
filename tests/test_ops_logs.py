"""`OMC_LOG_FORMAT=json`: one JSON object a line with level, logger, bound ids and extras,
every secret redacted (known values, URL passwords, `key=value` pairs, tracebacks)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from omc.core.config import Settings
from omc.core.jsonlog import JsonFormatter, log_context
from omc.core.masking import register_secrets

ROOT = Path(__file__).parents[1]

SCRIPT = """
import logging
from omc.cli import context
context.setup_logging()
log = logging.getLogger("omc.probe")
log.info("connecting to %s", "postgresql://omc:pa55w0rd-xyz@db:5432/omc")
try:
    raise RuntimeError("token=abcdef123456 refused")
except RuntimeError:
    log.exception("job failed", extra={"job_id": "j-7"})
"""


def test_json_logs_from_the_cli_setup_are_redacted(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMC_")}
    env.update(PYTHONPATH=str(ROOT), OMC_LOG_FORMAT="json", OMC_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert [(r["level"], r["logger"]) for r in lines] == [
        ("INFO", "omc.probe"),
        ("ERROR", "omc.probe"),
    ]
    assert lines[0]["message"] == "connecting to postgresql://omc:***@db:5432/omc"
    assert lines[1]["job_id"] == "j-7" and "RuntimeError" in lines[1]["exc"]
    assert "pa55w0rd" not in done.stderr and "abcdef123456" not in done.stderr
    assert lines[0]["ts"].endswith("+00:00")


def test_known_secrets_and_bound_ids(caplog: pytest.LogCaptureFixture) -> None:
    register_secrets("s3cret-value-for-the-test")
    record = logging.LogRecord(
        "omc.api", logging.WARNING, __file__, 1, "key is %s", ("s3cret-value-for-the-test",), None
    )
    record.account = "p1"
    with log_context(request_id="r-1"), log_context(job_id="j-2"):
        line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "key is ***"
    assert (line["request_id"], line["job_id"], line["account"]) == ("r-1", "j-2", "p1")
    after = json.loads(JsonFormatter().format(record))
    assert "request_id" not in after  # the context ended with the block


def test_log_format_is_validated() -> None:
    assert Settings(log_format=" JSON ").log_format == "json"
    with pytest.raises(ValidationError, match="unknown log format"):
        Settings(log_format="xml")
