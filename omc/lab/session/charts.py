"""The Lab report's charts: matplotlib (Agg) figures as inline base64 PNG <img> tags — OOS
equity against buy-and-hold, feature importance, calibration, the confusion matrix. Each
takes the report document's plain JSON and returns "" when there is nothing to draw."""

from __future__ import annotations

from typing import Any

import pandas as pd

from omc.core.htmlpage import figure_to_img


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def equity_chart(trading: dict[str, Any]) -> str:
    curves = trading.get("equity") or {}
    if not curves:
        return ""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    styles = {"model": ("#1f5fbf", 1.6), "buy_and_hold": ("#888888", 1.2)}
    for name, c in curves.items():
        color, width = styles.get(name, (None, 0.9))
        ax.plot(pd.to_datetime(c["ts"]), c["values"], label=name, color=color, lw=width)
    ax.set_title("Out-of-sample equity (walk-forward test folds, fees included)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return figure_to_img(fig, "out-of-sample equity")


def importance_chart(importance: dict[str, float]) -> str:
    if not importance:
        return ""
    plt = _plt()
    top = sorted(importance.items(), key=lambda kv: kv[1])[-20:]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1))
    ax.barh([k for k, _ in top], [v for _, v in top], color="#1f5fbf")
    ax.set_title("Feature importance (selected model)")
    return figure_to_img(fig, "feature importance")


def calibration_chart(bins: list[dict[str, Any]]) -> str:
    if not bins:
        return ""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1)
    ax.plot(
        [b["mean_predicted"] for b in bins], [b["observed"] for b in bins], "o-", color="#1f5fbf"
    )
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("Calibration (out of sample)")
    return figure_to_img(fig, "calibration")


def confusion_chart(confusion: dict[str, Any]) -> str:
    matrix = confusion.get("matrix") if confusion else None
    if not matrix:
        return ""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:,}", ha="center", va="center")
    ax.set_xticks([0, 1], ["down", "up"])
    ax.set_yticks([0, 1], ["down", "up"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("Confusion (out of sample)")
    return figure_to_img(fig, "confusion matrix")
