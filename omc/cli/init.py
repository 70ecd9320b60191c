"""`omc init`: prepare this installation's secret — the key file `<data_dir>/secret.key`
(mode 0600) that encrypts stored credentials and signs API tokens.

Idempotent: an existing key file is never overwritten (losing or replacing it makes stored
credentials unreadable). With `OMC_SECRET_KEY` set no file is written: that key is used.
Prints where the key is, never the key."""

from __future__ import annotations

import typer

from omc.cli.context import console, fail, settings


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init() -> None:
        """Create the secret key file (mode 0600) unless it exists; print where it is."""
        from omc.api.auth.secret import SecretKeyError, create_key_file, key_file, load_secret
        from omc.api.settings import ApiSettings

        api = ApiSettings()
        data_dir = settings().data_dir
        created = api.secret_key is None and create_key_file(data_dir)
        try:
            load_secret(
                api.secret_key, data_dir
            )  # a usable key: long enough, not readable by others
        except SecretKeyError as exc:
            fail(str(exc))
        if api.secret_key is not None:
            console.print("secret key: OMC_SECRET_KEY is set and used (no key file written)")
            return
        path = key_file(data_dir)
        if created:
            console.print(
                f"created the secret key file {path} (mode 0600): it encrypts stored "
                "credentials and signs API tokens — back it up with the database",
                soft_wrap=True,
                highlight=False,
            )
        else:
            console.print(
                f"secret key file {path} exists already: kept", soft_wrap=True, highlight=False
            )
