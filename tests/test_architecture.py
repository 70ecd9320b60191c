"""The layering rules of DEVELOPERS.md, checked on the source: dependencies point inward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "omc"

# context -> contexts it must never import
FORBIDDEN = {
    "core": {"ledgers", "lab", "floor", "api", "web", "cli", "demo", "migrations"},
    "ledgers": {"lab", "floor", "api", "web", "cli", "demo"},
    "floor": {"lab", "api", "web", "cli", "demo"},
    "lab": {"api", "web", "cli", "demo"},
    "api": {"cli", "demo"},
    "web": {"api", "cli", "demo"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {
        name.split(".")[1] for name in found if name.startswith("omc.") and name.count(".") >= 1
    }


@pytest.mark.parametrize("context", sorted(FORBIDDEN))
def test_context_imports_point_inward(context: str) -> None:
    violations = []
    for path in sorted((ROOT / context).rglob("*.py")):
        bad = imports_of(path) & FORBIDDEN[context]
        if bad:
            violations.append(
                f"{path.relative_to(ROOT.parent)} imports omc.{', omc.'.join(sorted(bad))}"
            )
    assert not violations, "\n".join(violations)


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(path.relative_to(ROOT.parent))
        for path in sorted(ROOT.rglob("*.py"))
        if "versions" not in path.parts
        and path.stat().st_size > 0
        and ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert not missing, f"modules without a docstring: {missing}"
