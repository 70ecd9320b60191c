"""`omc metrics …`: the Prometheus metrics of `omc.ops.metrics`, served over HTTP or printed."""

from __future__ import annotations

import typer

from omc.cli.context import console, engine, fail, settings


def _registry() -> object:
    from omc.floor.trading.guard import GuardSettings
    from omc.ops.metrics import registry

    return registry(engine(), settings(), GuardSettings())


def register(app: typer.Typer) -> None:
    metrics_app = typer.Typer(help="Prometheus metrics.", no_args_is_help=True)
    app.add_typer(metrics_app, name="metrics")

    @metrics_app.command("serve")
    def metrics_serve(
        port: int = typer.Option(9464, "--port", min=1, max=65535, help="TCP port."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    ) -> None:
        """Serve the metrics at http://HOST:PORT/metrics until interrupted (Ctrl-C)."""
        import threading

        from omc.ops.metrics import serve

        reg = _registry()
        try:
            server = serve(reg, host, port)  # type: ignore[arg-type]
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1)
        console.print(f"metrics at http://{host}:{server.server_port}/metrics", highlight=False)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()

    @metrics_app.command("show")
    def metrics_show() -> None:
        """Print the metrics once, in the Prometheus text format."""
        from prometheus_client import generate_latest

        print(generate_latest(_registry()).decode(), end="")  # type: ignore[arg-type]
