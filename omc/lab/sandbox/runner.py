"""The sandbox's parent side: ``run_sandboxed`` prepares a private job folder (a read-only
copy of the inputs, the source, the limits), starts the launcher in its own process group
(inside fresh namespaces where allowed), enforces the wall time, kills the whole group in
``finally``, and turns whatever came back into a validated ``SandboxResult``.

It never raises for what the agent's code does; it raises ``ValueError`` only for the
caller's own mistakes (inputs that are not a numeric frame).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from omc.lab.sandbox import launcher
from omc.lab.sandbox.isolation import NOBODY, child_environment, namespace, site_dirs, stdlib_dirs
from omc.lab.sandbox.validate import read_values, validate

TAIL_CHARS = 2000


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use. ``memory_mb`` is address space beyond what the
    interpreter, numpy and pandas have already mapped; ``prefix_fraction`` re-runs the
    function on that share of the rows to check it is causal (``None`` skips the check)."""

    cpu_seconds: int = 2
    memory_mb: int = 512
    wall_seconds: float = 20.0
    max_processes: int = 1
    max_file_mb: int = 16
    max_open_files: int = 64
    prefix_fraction: float | None = 0.6

    def prefix_rows(self, rows: int) -> int:
        """Rows of the causality re-run on ROWS inputs (0: no re-run)."""
        n = int(rows * self.prefix_fraction) if self.prefix_fraction else 0
        return n if 0 < n < rows else 0


@dataclass(frozen=True)
class SandboxResult:
    """The outcome: ``values`` (aligned with the inputs) only when ``ok``; otherwise
    ``reason`` is a code (``network_blocked``, ``timeout``, ``memory``, ``forbidden_import``
    …) and ``error`` one line starting with it. ``isolation`` names the layers in force."""

    ok: bool
    values: pd.Series | None
    reason: str
    error: str
    stdout_tail: str
    seconds: float
    isolation: str


def _write_inputs(inputs: pd.DataFrame, indir: Path) -> None:
    if not isinstance(inputs, pd.DataFrame):
        raise ValueError("sandbox inputs must be a pandas DataFrame")
    columns = [str(c) for c in inputs.columns]
    if len(set(columns)) != len(columns):
        raise ValueError("sandbox inputs need unique column names")
    for i, name in enumerate(inputs.columns):
        column = inputs[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            raise ValueError(f"sandbox input column {name!r} is not numeric ({column.dtype})")
        np.save(indir / f"c{i}.npy", column.to_numpy(dtype=np.float64), allow_pickle=False)
    index = inputs.index
    manifest: dict[str, object] = {"columns": columns, "index": "plain", "tz": None}
    if isinstance(index, pd.DatetimeIndex):
        manifest.update(index="datetime", tz=str(index.tz) if index.tz is not None else None)
        naive = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
        raw = naive.as_unit("ns").asi8
    elif pd.api.types.is_numeric_dtype(index):
        raw = index.to_numpy()
    else:
        raise ValueError(f"sandbox inputs need a datetime or numeric index, not {index.dtype}")
    np.save(indir / "index.npy", raw, allow_pickle=False)
    (indir / "manifest.json").write_text(json.dumps(manifest))


def _prepare(jobdir: Path, source: str, entry: str, inputs: pd.DataFrame, limits: Limits) -> bool:
    """Lay out JOBDIR (in/ read-only, work/ the child's own) and say whether the child will
    drop from root to ``nobody``."""
    drop = os.geteuid() == 0
    indir, work = jobdir / "in", jobdir / "work"
    indir.mkdir()
    work.mkdir()
    _write_inputs(inputs, indir)
    (jobdir / "source.py").write_text(source)
    job = {
        "entry": entry,
        "drop_privileges": drop,
        "site_dirs": list(site_dirs()),
        "read_roots": [*stdlib_dirs(), str(indir.resolve())],
        "cpu_seconds": limits.cpu_seconds,
        "memory_mb": limits.memory_mb,
        "max_processes": limits.max_processes,
        "max_file_mb": limits.max_file_mb,
        "max_open_files": limits.max_open_files,
        "prefix_rows": limits.prefix_rows(len(inputs)),
    }
    (jobdir / "job.json").write_text(json.dumps(job))
    shutil.copyfile(launcher.__file__, jobdir / "launcher.py")
    for path in indir.iterdir():
        path.chmod(0o444)
    for path in (jobdir / "job.json", jobdir / "source.py", jobdir / "launcher.py"):
        path.chmod(0o444)
    indir.chmod(0o555)
    jobdir.chmod(0o755)
    if drop:
        os.chown(work, NOBODY, NOBODY)
    work.chmod(0o700)
    return drop


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - TAIL_CHARS))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _violation(stderr: str) -> str:
    for line in reversed(stderr.splitlines()):
        if line.startswith(launcher.VIOLATION_MARK):
            return " ".join(line.split()[2:])[:200]
    return ""


def _exit_reason(code: int, timed_out: bool, cpu_seconds: float, limits: Limits) -> tuple[str, str]:
    if timed_out:
        return "timeout", f"wall time over {limits.wall_seconds:g} s, process group killed"
    if code in launcher.VIOLATION_EXIT:
        reason = launcher.VIOLATION_EXIT[code]
        return reason, f"CPU time over {limits.cpu_seconds} s" if reason == "cpu_time" else ""
    hard_cpu = code == -signal.SIGKILL and cpu_seconds >= limits.cpu_seconds - 0.05
    if code == -signal.SIGXCPU or hard_cpu:
        return "cpu_time", f"CPU time over {limits.cpu_seconds} s"
    if code == -signal.SIGXFSZ:
        return "file_size", f"a file grew over {limits.max_file_mb} MB"
    if code < 0:
        return "crashed", f"killed by signal {signal.Signals(-code).name}"
    return "crashed", f"exited with code {code} without a result"


def _wait(proc: subprocess.Popen[bytes], wall: float) -> tuple[int, bool, float]:
    """Poll the child until it ends or WALL seconds pass; (exit code, timed out, CPU seconds)."""
    deadline = time.monotonic() + wall
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, False, usage.ru_utime + usage.ru_stime
        if time.monotonic() >= deadline:
            return 0, True, 0.0
        time.sleep(0.01)


def run_sandboxed(
    source: str, entry: str, inputs: pd.DataFrame, *, limits: Limits | None = None
) -> SandboxResult:
    """Run ``entry(inputs)`` from the agent-written SOURCE in a separate, limited process
    and return its validated output (a float Series aligned with INPUTS) or the reason it
    was refused. Never raises for the code's behaviour."""
    limits = limits or Limits()
    started = time.monotonic()
    ns = namespace()
    jobdir = Path(tempfile.mkdtemp(prefix="omc-sandbox-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        drop = _prepare(jobdir, source, entry, inputs, limits)
        isolation = "; ".join(
            (
                ns.description,
                f"uid {NOBODY}" if drop else "same uid (not root)",
                f"rlimits cpu {limits.cpu_seconds}s as +{limits.memory_mb}MB"
                f" nproc {limits.max_processes}",
                "audit hook",
                "scrubbed env",
            )
        )
        work = jobdir / "work"
        out_path, err_path = jobdir / "stdout.txt", jobdir / "stderr.txt"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            argv = [*ns.prefix, sys.executable, "-I", "-S", "-B", str(jobdir / "launcher.py")]
            proc = subprocess.Popen(  # fixed argv, no shell
                [*argv, str(jobdir)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=work,
                env=child_environment(work),
                start_new_session=True,
                close_fds=True,
            )
            code, timed_out, cpu = _wait(proc, limits.wall_seconds)
        _kill_group(proc)  # also reaps anything the child left behind in its group
        stdout_tail = _tail(out_path)
        seconds = time.monotonic() - started

        def failed(reason: str, detail: str) -> SandboxResult:
            error = f"{reason}: {detail}" if detail else reason
            return SandboxResult(False, None, reason, error, stdout_tail, seconds, isolation)

        if timed_out or code != 0:
            reason, detail = _exit_reason(code, timed_out, cpu, limits)
            stderr = _tail(err_path)
            if reason == "crashed" and stderr.strip():
                detail = f"{detail}: {' '.join(stderr.strip().splitlines()[-1].split())[:200]}"
            return failed(reason, _violation(stderr) or detail)
        status = _status(work)
        if status is None:
            return failed("crashed", "no status from the sandbox (the code ended the process)")
        if status[0] != "ok":
            return failed(*status)
        values = read_values(work / launcher.VALUES_FILE, len(inputs))
        prefix_rows = limits.prefix_rows(len(inputs))
        prefix = read_values(work / launcher.PREFIX_FILE, prefix_rows) if prefix_rows else None
        problem = validate(values, prefix, len(inputs), prefix_rows)
        if problem:
            return failed("bad_output", problem)
        assert values is not None  # validate() refuses a missing vector
        series = pd.Series(values, index=inputs.index, name=entry, dtype=np.float64)
        return SandboxResult(True, series, "ok", "", stdout_tail, seconds, isolation)
    finally:
        if proc is not None and proc.returncode is None:
            _kill_group(proc)
        _remove(jobdir)


def _status(work: Path) -> tuple[str, str] | None:
    path = work / launcher.STATUS_FILE
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 4096:
            return None
        status = json.loads(path.read_text())
        reason, detail = status["reason"], status["detail"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(reason, str) or not isinstance(detail, str):
        return None
    return " ".join(reason.split())[:40], " ".join(detail.split())[:300]


def _remove(jobdir: Path) -> None:
    for sub in (jobdir, jobdir / "in"):
        with contextlib.suppress(OSError):
            sub.chmod(0o700)
    shutil.rmtree(jobdir, ignore_errors=True)
