"""The layering rules of DEVELOPERS.md, checked on the source: dependencies point inward.

Every package under `omc/` has a rule (a new package without one fails), and every import
counts — `import omc.x`, `from omc.x import y` and relative ones (`from ..floor import y`,
resolved to absolute names first).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "omc"
OUTER = {"api", "web", "cli", "demo"}  # the outer shell: nothing inside imports it

# context -> contexts it must never import
FORBIDDEN = {
    "core": {"ledgers", "lab", "floor", "migrations", "ops"} | OUTER,
    "ledgers": {"lab", "floor", "migrations", "ops"} | OUTER,
    "floor": {"lab", "migrations", "ops"} | OUTER,
    "lab": {"migrations", "ops"} | OUTER,
    # operations (backups, metrics from the database) read every context; the shell wires it
    "ops": {"migrations"} | OUTER,
    "api": {"cli", "demo", "migrations"},
    "web": {"api", "cli", "demo", "migrations", "ops"},
    "demo": {"api", "cli", "migrations", "ops"},
    "cli": set(),  # the command line wires everything (`omc demo` the demo, `omc serve` the API)
    "migrations": {"lab", "floor", "ledgers", "ops"} | OUTER,  # but see MIGRATIONS_MAY_IMPORT
    # omc/*.py: only cli
    "": {"ledgers", "lab", "floor", "migrations", "api", "web", "demo", "ops"},
}
# the schema's history needs the table definitions: core and the contexts' `models` modules
MIGRATIONS_MAY_IMPORT = (
    "omc.core",
    "omc.ledgers.models",
    "omc.floor.models",
    "omc.lab.models",
    "omc.api.models",
    "omc.ops.models",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of everything `source` (the text of `module`) imports: for
    `from a import b` both `a` and `a.b` (b may be a module)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level - 1 >= len(base):
                    raise ValueError(f"{module}: relative import beyond the top package")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "omc" or name.startswith("omc.")}


def context_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / parts[1]).is_dir() else ""


def violations_in(path: Path, source: str | None = None) -> list[str]:
    module = module_name(path)
    context = context_of(module) if path.parent != ROOT else ""
    if source is None:
        source = path.read_text(encoding="utf-8")
    names = imported_modules(source, module, path.name == "__init__.py")
    bad = set()
    for name in names:
        target = context_of(name)
        if target == context or not target:
            continue
        if context == "migrations" and name.startswith(MIGRATIONS_MAY_IMPORT):
            continue
        if target in FORBIDDEN[context] or context == "migrations":
            bad.add(name)
    return [f"{path.relative_to(ROOT.parent)} imports {name}" for name in sorted(bad)]


def test_every_package_has_rules() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(FORBIDDEN) - {""}, "add the new package's rules to FORBIDDEN"


@pytest.mark.parametrize("context", sorted(FORBIDDEN))
def test_context_imports_point_inward(context: str) -> None:
    paths = sorted((ROOT / context).rglob("*.py")) if context else sorted(ROOT.glob("*.py"))
    found = [line for path in paths for line in violations_in(path)]
    assert not found, "\n".join(found)


def test_relative_imports_are_resolved() -> None:
    source = "from ..cli import app\nfrom . import venues\nfrom .venues.base import Venue\n"
    assert imported_modules(source, "omc.floor.orders") == {
        "omc.cli",
        "omc.cli.app",
        "omc.floor",
        "omc.floor.venues",
        "omc.floor.venues.base",
        "omc.floor.venues.base.Venue",
    }
    assert imported_modules("from .. import ledgers", "omc.core", is_package=True) == {
        "omc",
        "omc.ledgers",
    }
    assert {context_of(n) for n in imported_modules(source, "omc.floor.orders")} == {"cli", "floor"}


def test_violations_are_reported() -> None:
    """The checker itself: a relative import of the CLI from the Floor, a migration that
    imports more than table definitions, the demo imported from the Lab."""
    floor = ROOT / "floor" / "probe.py"
    assert violations_in(floor, "from ..cli import app\n") == [
        "omc/floor/probe.py imports omc.cli",
        "omc/floor/probe.py imports omc.cli.app",
    ]
    migration = ROOT / "migrations" / "versions" / "probe.py"
    assert violations_in(migration, "import omc.ledgers.models\nimport omc.core.db\n") == []
    assert violations_in(migration, "from omc.floor.trading import session\n") == [
        "omc/migrations/versions/probe.py imports omc.floor.trading",
        "omc/migrations/versions/probe.py imports omc.floor.trading.session",
    ]
    assert violations_in(ROOT / "lab" / "probe.py", "import omc.demo.job\n") == [
        "omc/lab/probe.py imports omc.demo.job"
    ]


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(path.relative_to(ROOT.parent))
        for path in sorted(ROOT.rglob("*.py"))
        if "versions" not in path.parts
        and path.stat().st_size > 0
        and ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert not missing, f"modules without a docstring: {missing}"


@pytest.mark.parametrize(
    "parts",
    [
        ("core/db.py", "core/db_types.py", "core/upsert.py", "core/upsert_encoding.py"),
        ("floor/venues/coinspot_client.py", "floor/venues/coinspot_models.py",
         "floor/venues/coinspot_parsers.py", "floor/venues/coinspot_signing.py"),
    ],
)  # fmt: skip
def test_split_modules_stay_small(parts: tuple[str, ...]) -> None:
    """The database helpers (engine / types / upsert) and the CoinSpot private client
    (client / models / parsers / signing) are modules of about 400 lines at most."""
    sizes = {part: len((ROOT / part).read_text(encoding="utf-8").splitlines()) for part in parts}
    assert all(n <= 420 for n in sizes.values()), sizes
