"""Validation of what the sandboxed code returned, before anything else uses it: read back
with ``allow_pickle=False`` from a size-bounded regular file, one float64 per input row,
finite or NaN (never ±inf), not all NaN, and causal — the values computed on a prefix of
the rows must equal the full run's first rows (a function that looks ahead changes them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEADER_BYTES = 4096  # generous bound for an .npy header


def read_values(path: Path, rows: int) -> np.ndarray | None:
    """The float64 vector in PATH, or None when it is missing, not a plain file, too big
    for ROWS values, pickled, or not a 1-d float64 array."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > HEADER_BYTES + 8 * rows:
            return None
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(values, np.ndarray) or values.dtype != np.float64 or values.ndim != 1:
        return None
    return values


def validate(
    values: np.ndarray | None, prefix: np.ndarray | None, rows: int, prefix_rows: int
) -> str:
    """Why VALUES (and the PREFIX run, when one was asked for) cannot be used, or ""."""
    if values is None:
        return "no readable float64 vector came back"
    if values.shape != (rows,):
        return f"shape {values.shape}, expected ({rows},)"
    if np.isinf(values).any():
        return f"{int(np.isinf(values).sum())} infinite values"
    if rows and np.isnan(values).all():
        return "every value is NaN"
    if prefix_rows:
        if prefix is None or prefix.shape != (prefix_rows,):
            return "the prefix run returned no usable vector"
        head = values[:prefix_rows]
        same = np.isclose(prefix, head, rtol=1e-9, atol=1e-12, equal_nan=True)
        if not same.all():
            first = int(np.argmin(same))
            return f"not causal: row {first} changes when later rows are removed"
    return ""
