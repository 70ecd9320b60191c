"""What the operating system gives the sandbox: the namespace wrapper (``unshare``), the
scrubbed environment and the site directories the child may import numpy/pandas from.

The namespace is probed once per process by running ``true`` under the same wrapper; when
the system refuses (no ``unshare``, user namespaces disabled, seccomp in a container) the
sandbox still runs, without it, and says so in every result's ``isolation`` line.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy
import pandas

NOBODY = 65534
# the only variables the child sees: everything else (OMC_*, *KEY*, *TOKEN*, proxies, the
# database URL, PYTHONPATH …) stays in the parent
THREADS_ONE = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class Namespace:
    """The command prefix that puts the child in fresh namespaces, and how it is described."""

    prefix: tuple[str, ...]
    description: str

    @property
    def active(self) -> bool:
        return bool(self.prefix)


@functools.lru_cache(maxsize=1)
def namespace() -> Namespace:
    """A network + PID namespace via ``unshare`` when this system permits one: as root
    directly, otherwise inside a new user namespace."""
    tool = shutil.which("unshare")
    if tool is None:
        return Namespace((), "no network namespace (unshare not installed)")
    prefix: tuple[str, ...] = (tool, "--net", "--pid", "--fork", "--kill-child")
    if os.geteuid() != 0:
        prefix = (tool, "--user", "--map-root-user", *prefix[1:])
    try:
        probe = subprocess.run(  # fixed argv, no shell
            [*prefix, "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Namespace((), f"no network namespace ({type(exc).__name__})")
    if probe.returncode != 0:
        why = (
            " ".join(probe.stderr.decode("utf-8", "replace").split())[:120]
            or f"exit {probe.returncode}"
        )
        return Namespace((), f"no network namespace (unshare refused: {why})")
    return Namespace(prefix, "network+pid namespace (" + " ".join(prefix[1:]) + ")")


def child_environment(work: Path) -> dict[str, str]:
    """An allow-listed environment: a minimal PATH, HOME and TMPDIR in the work folder, one
    thread per numeric library (threads count against the process limit)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }
    env.update(dict.fromkeys(THREADS_ONE, "1"))
    return env


def site_dirs() -> tuple[str, ...]:
    """The directories holding numpy and pandas (the venv's site-packages), which the child
    adds to its path itself since it starts with ``-I -S``."""
    dirs = {str(Path(module.__file__ or "").resolve().parents[1]) for module in (numpy, pandas)}
    return tuple(sorted(dirs))


def stdlib_dirs() -> tuple[str, ...]:
    """Where the interpreter's own modules live (readable by the child for lazy imports)."""
    import sysconfig

    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")}
    return tuple(sorted(str(Path(p).resolve()) for p in paths))
