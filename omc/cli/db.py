"""`omc db …`: schema migrations, and `omc config` to show the settings."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from omc.cli.context import console, settings
from omc.core.config import Settings
from omc.core.db import make_engine
from omc.migrations import current_revision, upgrade


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def db_upgrade(revision: str = typer.Argument("head")) -> None:
        """Apply migrations up to REVISION (default: the latest)."""
        url = settings().effective_database_url
        engine = make_engine(url)
        upgrade(engine, revision)
        console.print(f"database at revision [bold]{current_revision(engine)}[/] ({engine.url!r})")

    @app.command("config")
    def config(
        markdown: bool = typer.Option(False, help="Print the README's configuration table."),
        as_json: bool = typer.Option(False, "--json", help="Print current values as JSON."),
    ) -> None:
        """Show every setting, its environment variable, default and current value."""
        current = settings()
        if as_json:
            console.print_json(current.model_dump_json())
            return
        rows = []
        for name, field in Settings.model_fields.items():
            default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
            value = getattr(current, name)
            if "url" in name and value and "@" in str(value):
                value = "***"
            rows.append(
                (
                    f"OMC_{name.upper()}",
                    json.dumps(default, default=str),
                    str(value),
                    field.description or "",
                )
            )
        if markdown:
            print("| setting | default | meaning |\n|---|---|---|")
            for env, default, _value, doc in rows:
                print(f"| `{env}` | `{default}` | {doc} |")
            return
        table = Table("setting", "default", "current", "meaning")
        for row in rows:
            table.add_row(*row)
        console.print(table)
