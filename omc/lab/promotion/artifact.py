"""A promoted model's artifact: the approved session's model, plan and feature spec read from
`<data_dir>/lab/<ID>/`, every hash checked; anything else refused with one line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from sqlalchemy import Engine

from omc.lab.features import library
from omc.lab.features.spec import FeatureSpec
from omc.lab.plan import ResearchPlan
from omc.lab.session import store
from omc.lab.session.artifacts import MODEL_FILE, canonical_json, load_manifest, plan_sha256

PREFIX = "model"
THRESHOLD = 0.5  # the study's rule: long while p > 0.5 (evaluation.trading.positions)


class PromotionError(ValueError):
    """A model that cannot be promoted (unknown, not approved, tampered): one clear line."""


@dataclass(frozen=True)
class Promoted:
    """An approved session's model with everything that decides what it sees."""

    session: str
    folder: Path
    model: Any
    plan: ResearchPlan
    spec: FeatureSpec
    columns: list[str]  # the model's inputs, in order
    manifest: dict[str, Any]

    @property
    def symbol(self) -> str:
        return str(self.manifest.get("data", {}).get("symbol") or self.plan.symbols[0])

    @property
    def bar_seconds(self) -> float | None:
        """The study's mean bar spacing (its data window), None when it cannot tell."""
        data = self.manifest.get("data", {})
        try:
            first, last = pd.Timestamp(data["first_bar"]), pd.Timestamp(data["last_bar"])
            n = int(data["bars"])
        except (KeyError, TypeError, ValueError):
            return None
        return (last - first).total_seconds() / (n - 1) if n > 1 else None


def refuse(session_id: str, why: str) -> PromotionError:
    return PromotionError(f"{PREFIX}:{session_id}: {why}")


def load_promoted(engine: Engine, session_id: str, lab_dir: Path | None = None) -> Promoted:
    """The approved session's model, its plan and feature spec, every hash checked (module
    doc); `lab_dir` is where artifacts live when the store has no folder for the session."""
    try:
        record = store.get_session(engine, session_id)
    except store.UnknownSession:
        raise refuse(session_id, "no such Lab session (see `omc lab sessions`)") from None
    if record.approval == "rejected":
        why = f" ({record.decision_reason})" if record.decision_reason else ""
        raise refuse(session_id, f"the model was rejected{why}; only an approved one trades")
    if record.approval != "approved":
        raise refuse(session_id, f"not approved (run `omc lab approve {session_id}` first)")
    folder = Path(record.artifact_dir) if record.artifact_dir else None
    if folder is None and lab_dir is not None:
        folder = lab_dir / session_id
    if folder is None or not (folder / "manifest.json").is_file():
        raise refuse(session_id, f"no model artifact at {folder}")
    try:
        manifest = load_manifest(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise refuse(session_id, f"artifact refused: {' '.join(str(exc).split())}") from None
    if record.artifact_hash and manifest.get("content_hash") != record.artifact_hash:
        raise refuse(session_id, "artifact refused: its manifest is not the one the study wrote")
    plan = _plan(session_id, folder, manifest)
    spec, columns = _spec(session_id, folder, manifest)
    import joblib

    model = joblib.load(folder / manifest.get("model_file", MODEL_FILE))
    return Promoted(session_id, folder, model, plan, spec, columns, manifest)


def _plan(session_id: str, folder: Path, manifest: Mapping[str, Any]) -> ResearchPlan:
    try:
        body = json.loads((folder / "plan.json").read_text())
        plan = ResearchPlan.model_validate(body)
    except (OSError, ValueError, ValidationError) as exc:
        raise refuse(session_id, f"plan.json unreadable: {type(exc).__name__}") from None
    if plan_sha256(plan) != manifest.get("plan_sha256"):
        raise refuse(session_id, "artifact refused: plan.json does not match its hash")
    return plan


def _spec(
    session_id: str, folder: Path, manifest: Mapping[str, Any]
) -> tuple[FeatureSpec, list[str]]:
    doc = manifest.get("feature_spec") or {}
    try:
        on_disk = json.loads((folder / "feature_spec.json").read_text())
        spec = FeatureSpec.model_validate(doc["spec"])
    except (OSError, ValueError, KeyError, ValidationError) as exc:
        raise refuse(session_id, f"feature spec unreadable: {type(exc).__name__}") from None
    if canonical_json(on_disk) != canonical_json(doc) or spec.hash() != doc.get("hash"):
        raise refuse(session_id, "artifact refused: feature_spec.json does not match its hash")
    unknown = [f for f in spec.families if f not in library.FAMILIES]
    if unknown:
        raise refuse(session_id, f"feature families this version lacks: {', '.join(unknown)}")
    now = library.code_version(spec.families)
    if spec.code_version != now:
        raise refuse(
            session_id,
            f"its features were made by another version of the feature library "
            f"({spec.code_version}, this one is {now}): run the study again",
        )
    return spec, [str(c) for c in doc.get("features", [])]
