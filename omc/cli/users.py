"""`omc users create|list|disable`: the people who may log in to the HTTP API.

`create NAME --password-stdin [--admin]` reads the password from standard input (one line;
its trailing newline dropped); without `--password-stdin` it asks twice without echo. The
password is never printed; only its argon2 hash is stored (`omc.api.auth.users`)."""

from __future__ import annotations

import sys

import typer

from omc.cli.context import console, engine, fail


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        text = sys.stdin.readline()
        password = text.removesuffix("\n").removesuffix("\r")
        if not password:
            fail("--password-stdin: standard input held no password")
        return password
    if not sys.stdin.isatty():
        fail("give the password on standard input with --password-stdin")
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return str(password)


def register(app: typer.Typer) -> None:
    users_app = typer.Typer(help="Users of the HTTP API (omc serve).", no_args_is_help=True)
    app.add_typer(users_app, name="users")

    @users_app.command("create")
    def create(
        name: str = typer.Argument(..., help="User name (letters, digits, . _ @ -)."),
        admin: bool = typer.Option(False, "--admin", help="May manage users and collectors."),
        password_stdin: bool = typer.Option(
            False, "--password-stdin", help="Read the password from standard input."
        ),
    ) -> None:
        """Create a user who can log in to the API and the dashboard."""
        from omc.api.auth.users import UserError, create_user

        password = _read_password(password_stdin)
        try:
            user = create_user(engine(), name, password, admin=admin)
        except UserError as exc:
            fail(str(exc))
        role = "admin" if user.is_admin else "user"
        console.print(f"created {role} {user.name}", highlight=False)

    @users_app.command("list")
    def list_() -> None:
        """Every user: name, role, state, when created."""
        from rich.table import Table

        from omc.api.auth.users import list_users

        table = Table("name", "role", "state", "created")
        for user in list_users(engine()):
            table.add_row(
                user.name,
                "admin" if user.is_admin else "user",
                "disabled" if user.disabled else "active",
                f"{user.created_at:%Y-%m-%d %H:%M} UTC",
            )
        console.print(table)

    @users_app.command("disable")
    def disable(name: str = typer.Argument(..., help="User name.")) -> None:
        """Disable a user: no more logins, and every token issued to them stops working."""
        from omc.api.auth.users import UserError, disable_user

        try:
            disable_user(engine(), name)
        except UserError as exc:
            fail(str(exc))
        console.print(f"disabled {name}", highlight=False)
