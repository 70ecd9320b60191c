"""`omc alerts`: the alerts raised (newest first) and how each notifier delivered them.

`--json` prints machine-readable output; `--redeliver` retries every notifier whose delivery
failed. Notifier targets are shown masked: no Slack URL or Telegram token is ever printed.
"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from omc.cli.context import console, engine, settings


def _delivery_summary(deliveries: dict[str, dict[str, object]]) -> str:
    parts = []
    for name, outcome in sorted(deliveries.items()):
        status = str(outcome.get("status", "?"))
        colour = {"ok": "green", "failed": "red"}.get(status, "yellow")
        parts.append(f"{name}:[{colour}]{status}[/]")
    return " ".join(parts) or "-"


def register(app: typer.Typer) -> None:
    @app.command("alerts")
    def alerts(
        limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many alerts to show."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        redeliver: bool = typer.Option(
            False, "--redeliver", help="Retry notifiers whose delivery failed, then list."
        ),
    ) -> None:
        """Alerts raised from catalyst events (e.g. new CoinSpot listings) and their delivery."""
        from omc.ledgers.catalyst.alerts import AlertEngine, list_alerts
        from omc.ledgers.catalyst.notifiers import notifiers_from_settings

        db = engine()
        if redeliver:
            alert_engine = AlertEngine(db, None, notifiers_from_settings(settings()))
            started = alert_engine.redeliver()
            alert_engine.wait(timeout=120)
            alert_engine.close()
            console.print(f"redelivered {started} notification(s)")
        rows = list_alerts(db, limit)
        if as_json:
            print(json.dumps(rows, indent=2, default=str))
            return
        if not rows:
            console.print("no alerts yet")
            return
        table = Table(title="alerts")
        for column in ("id", "raised", "kind", "coins", "title", "published", "deliveries"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                str(row["id"]),
                str(row["raised_at"])[:19],
                str(row["kind"]),
                ", ".join(row.get("coins") or []),
                str(row["title"])[:60],
                str(row.get("published_at") or "")[:19],
                _delivery_summary(row.get("deliveries") or {}),
            )
        console.print(table)
