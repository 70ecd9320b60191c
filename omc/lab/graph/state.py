"""The graph's state and the store of what does not belong in it.

`LabState` is plain JSON (LangGraph checkpoints it after every step): the goal, the options,
the answers and revision instructions, the plan, the outcome's numbers, and `refs` — for each
step whose result is a frame, a search or a model, the file it was stashed in and its
SHA-256. `stash(folder, name, value)` writes such a value with joblib to
`<lab_dir>/<ID>/work/<name>.joblib` (replacing it atomically, so a step re-run after a crash
rewrites it) and returns the ref; `unstash(ref)` reads it back after checking the hash (a
file changed on disk is an error, never silently used).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict

import joblib

from omc.lab.session.artifacts import sha256_file

WORK = "work"
STEPS = (
    "plan",
    "retrieve",
    "features",
    "check",
    "train",
    "evaluate",
    "report",
    "approval",
    "promote",
)
"""The graph's steps in order (a question loops `plan` -> `ask` -> `plan`; a revision goes
from `approval` back to `plan` and on from the first step its changes touch)."""


class Ref(TypedDict):
    file: str
    sha256: str


class LabState(TypedDict, total=False):
    session: str
    goal: str
    as_of: str  # ISO-8601 UTC, fixed when the session starts
    options: dict[str, Any]  # the CLI's explicit options (symbol, timeframe, data_file, ...)
    base_plan: dict[str, Any] | None  # a plan file run instead of planning
    answers: list[str]  # replies to the planner's questions, oldest first
    instructions: list[str]  # revision instructions, oldest first
    revision: int  # 0 for the first run; +1 per revision
    trial_offset: int  # trials stored by earlier revisions (kept; numbered after them)
    question: str | None
    plan: dict[str, Any] | None
    rerun_from: str | None  # after a revision: the first step to run again
    refs: dict[str, Ref]
    source: str | None
    result: dict[str, Any]  # verdict, reasons, oos, baseline, trials, report, holdout_flagged
    decision: dict[str, Any] | None  # approval, reason, force
    status: str
    error: str | None


def work_dir(lab_dir: Path, session_id: str) -> Path:
    return lab_dir / session_id / WORK


def stash(folder: Path, name: str, value: Any) -> Ref:
    """Write `value` to `folder/<name>.joblib` (atomically); its ref for the state."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.joblib"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    joblib.dump(value, tmp)
    os.replace(tmp, path)
    return {"file": str(path), "sha256": sha256_file(path)}


def unstash(ref: Ref) -> Any:
    path = Path(ref["file"])
    if not path.is_file():
        raise FileNotFoundError(f"{path}: a stored step result is missing")
    if sha256_file(path) != ref["sha256"]:
        raise ValueError(f"{path}: a stored step result changed on disk (hash mismatch)")
    return joblib.load(path)
