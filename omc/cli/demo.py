"""`omc demo`: the main job on embedded defaults (SQLite, bundled data, no network, no keys)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo() -> None:
        """Load the bundled real market data into SQLite and write a report to look at."""
        raise typer.Exit(1)
