"""`python -m omc` is the same as the `omc` command."""

from omc.cli.app import main

main()
