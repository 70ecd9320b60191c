"""CSV cells a spreadsheet will not execute (CSV / formula injection).

Every CSV OMC writes (`omc data export`, a backtest's `trades.csv`, `sweep.csv`, the
divergence report) passes its cells through `safe_cell`: a text cell starting with `=`, `+`,
`-`, `@`, a tab or a carriage return — which Excel, LibreOffice and Google Sheets would
evaluate as a formula — gets a leading `'`. Numbers are not text: `-12.5` (a loss) stays a
number whether it arrives as a Decimal, a float or the exact decimal string OMC writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def safe_cell(value: Any) -> Any:
    """`value`, with a text cell that a spreadsheet would run as a formula neutralised."""
    if isinstance(value, str) and value[:1] in FORMULA_START and not _NUMBER.match(value):
        return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in row]


def safe_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: safe_cell(value) for key, value in row.items()}
