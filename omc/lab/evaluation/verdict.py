"""The verdict: `edge` or `no_edge`, with every reason, from the plan's thresholds.

`edge` needs all three:

1. out-of-sample skill — the selected model's walk-forward OOS ROC AUC is at least the best
   classification baseline's (majority class, last direction, on the same folds and rows) plus
   `Evaluation.min_auc_lift` (the price-only logistic regression is the trading baseline,
   reported beside them: a signal in past returns alone is an edge too);
2. a deflated Sharpe probability (the OOS strategy's Sharpe deflated for every trial the
   search ran) of at least `Evaluation.min_deflated_sharpe_probability`;
3. the sealed holdout, scored once after selection, confirms it: the refitted model's
   holdout AUC is above the best classification baseline's holdout AUC.

A holdout opened before this evaluation (`opened_before > 0`) is flagged in the reasons: its
numbers are no longer untouched data.
"""

from __future__ import annotations

from typing import Any

from omc.lab.plan import Evaluation


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def decide(
    *,
    oos_auc: float | None,
    baseline_auc: float | None,
    baseline_name: str,
    deflated_sharpe_probability: float | None,
    n_trials: int,
    holdout_auc: float | None,
    holdout_baseline_auc: float | None,
    opened_before: int,
    thresholds: Evaluation,
) -> dict[str, Any]:
    """{"verdict": "edge" | "no_edge", "reasons": [...], "checks": {name: passed}}."""
    lift = thresholds.min_auc_lift
    need_p = thresholds.min_deflated_sharpe_probability
    base = baseline_auc if baseline_auc is not None else 0.5
    skill = oos_auc is not None and oos_auc >= base + lift
    dsr_ok = deflated_sharpe_probability is not None and deflated_sharpe_probability >= need_p
    hb = holdout_baseline_auc if holdout_baseline_auc is not None else 0.5
    hold_ok = holdout_auc is not None and holdout_auc > hb
    reasons = [
        (
            f"out-of-sample AUC {_fmt(oos_auc)} {'>=' if skill else '<'} best baseline "
            f"({baseline_name}) {_fmt(base)} + {lift:.3f}"
        ),
        (
            f"deflated Sharpe probability {_fmt(deflated_sharpe_probability)} "
            f"{'>=' if dsr_ok else '<'} {need_p:.2f} after {n_trials} trial(s)"
        ),
        (
            f"sealed holdout AUC {_fmt(holdout_auc)} {'>' if hold_ok else '<='} best baseline "
            f"holdout AUC {_fmt(hb)}"
        ),
    ]
    if opened_before > 0:
        reasons.append(
            f"FLAGGED: the holdout was opened {opened_before} time(s) before this evaluation; "
            "its numbers are not from untouched data"
        )
    edge = skill and dsr_ok and hold_ok
    return {
        "verdict": "edge" if edge else "no_edge",
        "reasons": reasons,
        "checks": {"oos_skill": skill, "deflated_sharpe": dsr_ok, "holdout": hold_ok},
    }
