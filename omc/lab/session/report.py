"""A session's report: `report.json` (everything, plain JSON) and `report.html` rendered from
it — one self-contained page (charts are inline base64 PNGs, nothing is fetched; it opens
offline): the goal, the plan and its assumptions, data coverage, the checks, the features
(and those the leakage check refused), the verdict and its reasons, out-of-sample metrics
against the baselines, per-fold metrics, OOS equity against buy-and-hold, feature importance,
calibration and confusion charts, the sealed holdout (flagged when it was opened before), the
table of every trial, and the artifact's hashes.

Every number shown is out of sample (walk-forward test folds) or from the sealed holdout;
nothing in-sample is reported as a result.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from omc.core.htmlpage import Markup, fmt, html_table, page
from omc.core.time import utcnow
from omc.lab.plan import ResearchPlan
from omc.lab.session.charts import (
    calibration_chart,
    confusion_chart,
    equity_chart,
    importance_chart,
)

METRICS = (
    ("auc", "ROC AUC", "{:.3f}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("balanced_accuracy", "balanced accuracy", "{:.3f}"),
    ("f1", "F1", "{:.3f}"),
    ("log_loss", "log loss", "{:.4f}"),
    ("brier", "Brier score", "{:.4f}"),
    ("sharpe", "Sharpe (traded, fees)", "{:.2f}"),
    ("total_return", "total return (traded, fees)", "{:+.2%}"),
)
STATUS_CSS = {"pass": "ok", "warn": "warn"}
FOLD_METRICS = ("roc_auc", "accuracy", "balanced_accuracy", "f1", "log_loss", "brier")


def check_json(check: Any) -> dict[str, Any]:
    if hasattr(check, "model_dump"):
        out: dict[str, Any] = check.model_dump(mode="json")
    elif dataclasses.is_dataclass(check) and not isinstance(check, type):
        out = dataclasses.asdict(check)
    else:
        out = dict(check)
    return json.loads(json.dumps(out, default=str))


def coverage(inputs: Any) -> list[dict[str, Any]]:
    """Rows and known-at span of every input the study read (bars first)."""
    frames: dict[str, pd.DataFrame] = {"bars": inputs.bars, **inputs.ledgers}
    out = []
    for name, frame in frames.items():
        known = frame["known_at"] if "known_at" in frame.columns and len(frame) else None
        out.append(
            {
                "input": name,
                "rows": len(frame),
                "first_known": None if known is None else pd.Timestamp(known.min()).isoformat(),
                "last_known": None if known is None else pd.Timestamp(known.max()).isoformat(),
            }
        )
    return out


def build_report(
    *,
    session_id: str,
    plan: ResearchPlan,
    inputs: Any,
    checks: Sequence[Any],
    features: list[str],
    refused: list[str],
    evaluation: dict[str, Any],
    manifest: dict[str, Any],
    llm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report document (what `report.json` holds and `report.html` shows). `llm`: the
    LLM section of an agentic study (`omc.lab.agents.session.LlmStudy.report_section`)."""
    extra = {"llm": llm} if llm is not None else {}
    return {
        "session": session_id,
        "generated_at": utcnow().isoformat(),
        "goal": plan.goal,
        "plan": plan.model_dump(mode="json"),
        "assumptions": list(plan.assumptions),
        "data": {"window": manifest.get("data", {}), "coverage": coverage(inputs)},
        "checks": [check_json(c) for c in checks],
        "features": {
            "used": features,
            "refused": refused,
            "spec_hash": manifest.get("feature_spec", {}).get("hash"),
        },
        **{
            key: evaluation.get(key)
            for key in (
                "verdict",
                "oos",
                "baseline",
                "folds",
                "trading",
                "holdout",
                "feature_importance",
                "calibration",
                "confusion",
                "search",
                "trials",
            )
        },
        "artifact": {
            key: manifest.get(key)
            for key in ("content_hash", "model_sha256", "model_file", "code_version")
        },
        **extra,
    }


# ---------------------------------------------------------------------------- page


def _metric_rows(columns: dict[str, dict[str, Any]]) -> list[list[Any]]:
    return [
        [label, *(fmt((col or {}).get(key), pattern) for col in columns.values())]
        for key, label, pattern in METRICS
    ]


def _verdict_section(doc: dict[str, Any]) -> str:
    verdict = doc.get("verdict") or {}
    edge = verdict.get("verdict") == "edge"
    css = "ok" if edge else "bad"
    word = "EDGE" if edge else "NO EDGE"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.get("reasons", []))
    return (
        f"<h2>Verdict: <span class='{css}'>{word}</span></h2><ul>{reasons}</ul>"
        "<p class='muted'>Every number in this report is out of sample (purged, embargoed "
        "walk-forward test folds) or from the sealed holdout scored once after selection.</p>"
    )


def _plan_section(doc: dict[str, Any]) -> str:
    plan = doc.get("plan") or {}
    target = plan.get("target", {})
    ev = plan.get("evaluation", {})
    rows = [
        ("goal", doc.get("goal")),
        ("symbol", ", ".join(plan.get("symbols", []))),
        ("exchange / timeframe", f"{plan.get('exchange')} / {plan.get('timeframe')}"),
        ("data file", plan.get("data_file") or "–"),
        ("target", f"{target.get('kind')} over {target.get('horizon_bars')} bar(s)"),
        ("ledgers", ", ".join(plan.get("ledgers", []))),
        ("feature families", ", ".join(plan.get("features", []))),
        ("models", ", ".join(plan.get("models", []))),
        (
            "evaluation",
            f"{ev.get('scheme')} walk-forward, {ev.get('folds')} folds, embargo >= horizon, "
            f"holdout {fmt(ev.get('holdout_fraction'), '{:.0%}')}, fee {ev.get('fee_bps')} bps",
        ),
        ("trial budget", plan.get("trials")),
        ("as of", plan.get("as_of")),
        ("seed", plan.get("seed")),
    ]
    assumptions = "".join(f"<li>{html.escape(a)}</li>" for a in doc.get("assumptions", []))
    return (
        "<h2>Goal and plan</h2>"
        + html_table(["", "value"], rows)
        + (f"<h3>Assumptions</h3><ul>{assumptions}</ul>" if assumptions else "")
    )


def _data_section(doc: dict[str, Any]) -> str:
    data = doc.get("data") or {}
    window = data.get("window") or {}
    rows = [(k, window.get(k)) for k in ("source", "symbol", "timeframe", "first_bar")]
    rows += [(k, window.get(k)) for k in ("last_bar", "bars", "as_of")]
    span = window.get("holdout")
    rows.append(("sealed holdout", " → ".join(span) if span else "–"))
    cov = [
        (c["input"], f"{c['rows']:,}", c.get("first_known") or "–", c.get("last_known") or "–")
        for c in data.get("coverage", [])
    ]
    checks = [
        (
            c.get("name"),
            Markup(
                f"<span class='{STATUS_CSS.get(str(c.get('status')), 'bad')}'>"
                f"{html.escape(str(c.get('status')))}</span>"
            ),
            c.get("detail"),
        )
        for c in doc.get("checks", [])
    ]
    return (
        "<h2>Data (point in time)</h2>"
        + html_table(["", "value"], rows)
        + "<h3>Coverage (known-at times)</h3>"
        + html_table(["input", "rows", "first known", "last known"], cov, numeric=(1,))
        + "<h2>Data checks</h2>"
        + html_table(["check", "status", "detail"], checks)
    )


def _features_section(doc: dict[str, Any]) -> str:
    feats = doc.get("features") or {}
    refused = feats.get("refused") or []
    importance = doc.get("feature_importance") or {}
    rows = sorted(importance.items(), key=lambda kv: -kv[1])
    return (
        "<h2>Features</h2>"
        f"<p>{len(feats.get('used', []))} feature(s): "
        f"<code>{html.escape(', '.join(feats.get('used', [])))}</code></p>"
        + (
            "<p class='bad'>Refused by the leakage check (their past values changed when "
            f"future data was added): <code>{html.escape(', '.join(refused))}</code></p>"
            if refused
            else "<p>The leakage check refused no feature.</p>"
        )
        + importance_chart(importance)
        + html_table(["feature", "importance"], [(k, f"{v:.3f}") for k, v in rows], numeric=(1,))
    )


def _results_section(doc: dict[str, Any]) -> str:
    oos = doc.get("oos") or {}
    baseline = doc.get("baseline") or {}
    columns = {"model": oos, **baseline}
    stats = [
        ("deflated Sharpe", fmt(oos.get("deflated_sharpe"), "{:.2f}")),
        ("deflated Sharpe probability", fmt(oos.get("deflated_sharpe_probability"), "{:.3f}")),
        ("probability of backtest overfitting (PBO)", fmt(oos.get("pbo"), "{:.3f}")),
        ("trials counted", fmt(oos.get("trials"), "{:,}")),
        ("out-of-sample rows", fmt(oos.get("rows"), "{:,}")),
    ]
    trading = doc.get("trading") or {}
    traded = [
        (
            name,
            fmt(trading[name].get("sharpe"), "{:.2f}"),
            fmt(trading[name].get("total_return"), "{:+.2%}"),
            fmt(trading[name].get("max_drawdown"), "{:.2%}"),
            fmt(trading[name].get("trades"), "{:,}"),
        )
        for name in trading
        if isinstance(trading[name], dict) and name != "equity"
    ]
    folds = [
        [
            f.get("fold"),
            f"{f.get('test_start', '')} → {f.get('test_end', '')}",
            fmt(f.get("train_rows"), "{:,}"),
            fmt(f.get("test_rows"), "{:,}"),
            *(fmt(f.get(k), "{:.3f}") for k in FOLD_METRICS),
        ]
        for f in doc.get("folds") or []
    ]
    return (
        "<h2>Out-of-sample results</h2>"
        + html_table(["", *columns], _metric_rows(columns), numeric=range(1, len(columns) + 1))
        + html_table(["", "value"], stats, numeric=(1,))
        + "<h3>Traded through the Floor's backtester (out-of-sample span)</h3>"
        + html_table(
            ["", "Sharpe", "total return", "max drawdown", "trades"], traded, numeric=(1, 2, 3, 4)
        )
        + equity_chart(trading)
        + "<h3>Per fold (walk-forward test rows)</h3>"
        + html_table(
            ["fold", "test span", "train rows", "test rows", *FOLD_METRICS],
            folds,
            numeric=range(2, 4 + len(FOLD_METRICS)),
        )
        + calibration_chart(doc.get("calibration") or [])
        + " "
        + confusion_chart(doc.get("confusion") or {})
    )


def _holdout_section(doc: dict[str, Any]) -> str:
    holdout = doc.get("holdout") or {}
    flagged = holdout.get("flagged")
    note = (
        f"<p class='bad'>FLAGGED: this sealed holdout was opened "
        f"{holdout.get('opened_before')} time(s) before by other sessions on the same data; "
        "its numbers are not from untouched data.</p>"
        if flagged
        else "<p>First look at this sealed holdout (opened once, after model selection).</p>"
    )
    metrics = holdout.get("metrics") or {}
    columns = {"model": metrics, **(holdout.get("baseline") or {})}
    return (
        "<h2>Sealed holdout</h2>"
        + note
        + f"<p>{fmt(holdout.get('rows'), '{:,}')} rows, "
        + html.escape(" → ".join(holdout.get("span") or []))
        + "</p>"
        + html_table(["", *columns], _metric_rows(columns), numeric=range(1, len(columns) + 1))
    )


def _trials_section(doc: dict[str, Any]) -> str:
    search = doc.get("search") or {}
    selected = search.get("selected")
    rows = [
        (
            t.get("number"),
            t.get("model"),
            json.dumps(t.get("params"), sort_keys=True),
            fmt(t.get("score"), "{:.4f}"),
            fmt(t.get("seconds"), "{:.2f}"),
            "selected" if t.get("number") == selected else "",
        )
        for t in doc.get("trials") or []
    ]
    return (
        f"<h2>Every trial ({len(rows)})</h2><p>Score: mean ROC AUC over the walk-forward test "
        "folds. All trials are counted in the deflated Sharpe and the PBO.</p>"
        + html_table(["#", "model", "parameters", "score", "seconds", ""], rows, numeric=(3, 4))
    )


def _artifact_section(doc: dict[str, Any]) -> str:
    art = doc.get("artifact") or {}
    rows = [(k, art.get(k)) for k in ("content_hash", "model_sha256", "code_version")]
    rows.append(("files", "plan.json, model.joblib, feature_spec.json, manifest.json"))
    session = doc.get("session")
    return (
        "<h2>Artifact</h2>"
        + html_table(["", "value"], rows)
        + f"<p>Decide: <code>omc lab approve {session}</code> or "
        f"<code>omc lab reject {session} --reason …</code></p>"
    )


def _llm_section(doc: dict[str, Any]) -> str:
    """The LLM that planned the study (`omc.lab.agents.narrative.llm_section_html`)."""
    if not doc.get("llm"):
        return ""
    from omc.lab.agents.narrative import llm_section_html

    return llm_section_html(doc["llm"])


def render(doc: dict[str, Any]) -> str:
    sections = [
        _verdict_section(doc),
        _llm_section(doc),
        _plan_section(doc),
        _data_section(doc),
        _features_section(doc),
        _results_section(doc),
        _holdout_section(doc),
        _trials_section(doc),
        _artifact_section(doc),
    ]
    banner = f"Lab session <code>{html.escape(str(doc.get('session')))}</code>"
    return page(f"Lab study: {doc.get('goal')}", sections, banner)


def write_report(folder: Path, doc: dict[str, Any]) -> Path:
    """`report.json` and `report.html` in `folder`; returns the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    path = folder / "report.html"
    path.write_text(render(doc), encoding="utf-8")
    return path
