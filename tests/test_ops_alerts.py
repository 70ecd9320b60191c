"""The Prometheus alert rules (deploy/prometheus/alerts.yml): `promtool check rules` and
`promtool test rules` pass (skipped visibly without promtool, failed under CI=true), every
metric they use is one `omc.ops.metrics` exports, and the runbook covers every alert."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import IN_CI

ROOT = Path(__file__).parents[1]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
METRICS_SOURCES = (
    ROOT / "omc" / "ops" / "metrics.py",
    ROOT / "omc" / "ops" / "queue" / "metrics.py",
)


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not installed (Debian: apt-get install prometheus)"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return found


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_unit_tests_fire_every_alert() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    assert tested == {rule["alert"] for rule in rules()}


def test_every_rule_is_complete_and_uses_exported_metrics() -> None:
    source = "".join(path.read_text(encoding="utf-8") for path in METRICS_SOURCES)
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        for name in set(re.findall(r"\bomc_\w+", rule["expr"])):
            base = name.removesuffix("_total")
            short = base.removeprefix("omc_account_")
            assert f'"{base}"' in source or f'"{short}"' in source, (rule["alert"], name)


def test_the_runbook_covers_every_alert() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [rule["alert"] for rule in rules() if f"`{rule['alert']}`" not in runbook]
    assert not missing, f"docs/operations.md says nothing about {missing}"
