"""A session's versioned model artifact in `<data_dir>/lab/<ID>/`.

* `plan.json` — the plan exactly as run (its `as_of` filled in).
* `model.joblib` — the selected model, refit on every development row.
* `feature_spec.json` — the feature spec (families, parameters, code version) plus the
  feature columns the model takes, in order, and the features the leakage check refused.
* `manifest.json` — the model file's SHA-256, the feature spec and its hash, the data window
  (source, symbol, timeframe, first/last bar, bars, as_of, holdout range), the metrics (out
  of sample and holdout), the verdict, the code version (`git describe` of the source tree
  when it is a checkout, else the package version) and `content_hash`: the SHA-256 of the
  manifest's canonical JSON without the fields that name this run (session id, time), so the
  same plan on the same data gives the same hash.

`load_manifest` / `load_model` read them back (the promotion to a Floor strategy uses them).
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import joblib

from omc.core.time import utcnow
from omc.lab.plan import ResearchPlan

MODEL_FILE = "model.joblib"
UNHASHED = ("session", "created_at", "content_hash")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k not in UNHASHED}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def plan_sha256(plan: ResearchPlan) -> str:
    """The SHA-256 of the plan's canonical JSON (the manifest's `plan_sha256`)."""
    return hashlib.sha256(canonical_json(plan.model_dump(mode="json")).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe --always --dirty` of the source tree, else `omc <package version>`."""
    import omc

    root = Path(omc.__file__).resolve().parent.parent
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if described:
            return f"git:{described}"
    except (OSError, subprocess.SubprocessError):
        pass
    return f"omc {omc.__version__}"


def _dump(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def data_window(inputs: Any, evaluation: dict[str, Any]) -> dict[str, Any]:
    bars = inputs.bars
    holdout = evaluation.get("holdout", {})
    return {
        "source": inputs.source,
        "symbol": inputs.symbol,
        "timeframe": inputs.plan.timeframe,
        "first_bar": bars.index[0].isoformat() if len(bars) else None,
        "last_bar": bars.index[-1].isoformat() if len(bars) else None,
        "bars": len(bars),
        "as_of": inputs.as_of.isoformat(),
        "holdout": holdout.get("span"),
    }


def write_artifacts(
    folder: Path,
    *,
    session_id: str,
    plan: ResearchPlan,
    spec: Any,
    features: list[str],
    refused: list[str],
    inputs: Any,
    evaluation: dict[str, Any],
    model: Any,
) -> dict[str, Any]:
    """Write the session's files into `folder` (created); returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    _dump(folder / "plan.json", plan.model_dump(mode="json"))
    model_path = folder / MODEL_FILE
    joblib.dump(model, model_path)
    spec_doc = {
        "spec": spec.model_dump(mode="json"),
        "hash": spec.hash(),
        "features": features,
        "refused": refused,
    }
    _dump(folder / "feature_spec.json", spec_doc)
    manifest: dict[str, Any] = {
        "session": session_id,
        "created_at": utcnow().isoformat(),
        "model_file": MODEL_FILE,
        "model_sha256": sha256_file(model_path),
        "model": evaluation.get("search", {}).get("model"),
        "params": evaluation.get("search", {}).get("params"),
        "feature_spec": spec_doc,
        "data": data_window(inputs, evaluation),
        "metrics": {
            "oos": evaluation.get("oos", {}),
            "holdout": evaluation.get("holdout", {}).get("metrics", {}),
        },
        "verdict": evaluation.get("verdict", {}).get("verdict"),
        "trials": len(evaluation.get("trials", [])),
        "plan_sha256": plan_sha256(plan),
        "code_version": code_version(),
    }
    manifest["content_hash"] = content_hash(manifest)
    _dump(folder / "manifest.json", manifest)
    return manifest


def load_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a session folder; raises ValueError when a file does not match it."""
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    if content_hash(manifest) != manifest.get("content_hash"):
        raise ValueError(f"{folder / 'manifest.json'}: content hash does not match")
    if sha256_file(folder / manifest["model_file"]) != manifest["model_sha256"]:
        raise ValueError(f"{folder / manifest['model_file']}: model file hash does not match")
    return manifest


def load_model(folder: Path) -> Any:
    """The session's model, after checking the manifest's hashes."""
    manifest = load_manifest(folder)
    return joblib.load(folder / manifest["model_file"])
