"""The sandbox's child side: run as a script (``python -I -S -B launcher.py JOBDIR``) in the
separate process, never imported by the child from the project.

It owns, in this order: dropping root to ``nobody``, loading the read-only inputs, setting the
process limits (rlimits) on itself, removing dangerous modules from ``sys.modules``,
installing the audit hook, and only then compiling and running the agent's source. The
result goes back as ``.npy`` files (``allow_pickle=False``) plus a small JSON status; a
policy violation ends the process at once with an exit code that names the reason
(untrusted code cannot catch it). The parent (``omc.lab.sandbox.runner``) imports this
module only for the reason table below; importing it has no side effects.

Only the standard library, numpy and pandas are used here: the child cannot import ``omc``.
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import signal
import sys
from typing import Any

# exit code -> reason; a violation exits with its code from inside the audit hook, the CPU
# limit's SIGXCPU from its handler (the launcher may be PID 1 of a namespace, which ignores
# signals left at their default action; the hard limit's SIGKILL is the backstop)
VIOLATION_EXIT = {
    101: "network_blocked",
    102: "forbidden_import",
    103: "forbidden_process",
    104: "forbidden_file",
    105: "forbidden_call",
    106: "cpu_time",
}
EXIT_BY_REASON = {reason: code for code, reason in VIOLATION_EXIT.items()}
VIOLATION_MARK = "OMC-SANDBOX-VIOLATION"
STATUS_FILE = "status.json"
VALUES_FILE = "values.npy"
PREFIX_FILE = "prefix.npy"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# top-level module names the agent's code may not import (database, settings, network,
# processes, raw memory access)
BLOCKED_MODULES = _names(
    """
    omc sqlalchemy psycopg psycopg2 psycopg_pool asyncpg sqlite3 _sqlite3 httpx httpcore
    requests urllib3 aiohttp websockets socket _socket ssl _ssl select selectors asyncio
    http urllib ftplib smtplib telnetlib xmlrpc socketserver subprocess _posixsubprocess
    multiprocessing _multiprocessing concurrent pty ctypes _ctypes cffi _cffi_backend
    mmap resource dotenv pydantic_settings keyring fcntl termios syslog
    """
)
NETWORK_EVENTS = ("socket.",)
PROCESS_EVENTS = _names(
    """
    os.fork os.forkpty os.exec os.posix_spawn os.spawn os.system os.startfile
    subprocess.Popen pty.spawn os.kill os.killpg signal.pthread_kill os.setuid os.setgid
    """
)
# events refused outright: raw memory, C libraries, object-graph walks that reach the hook
CALL_EVENTS_PREFIX = tuple(
    sorted(_names("ctypes. cffi. gc. sqlite3. syslog. winreg. _winapi. mmap."))
)
CALL_EVENTS = _names(
    """
    os.chown os.lchown os.link os.symlink os.chflags os.lchflags os.setxattr
    os.removexattr sys.settrace sys.setprofile sys._current_frames webbrowser.open
    urllib.Request
    """
)
# attributes whose assignment would let code rewrite a function (the hook included)
GUARDED_ATTRIBUTES = frozenset({"__code__", "__defaults__", "__kwdefaults__", "__closure__"})
# file events whose first argument is a path the agent may change only inside its folder
WRITE_PATH_EVENTS = _names(
    """
    os.remove os.rmdir os.mkdir os.chmod os.truncate os.utime shutil.rmtree
    shutil.copyfile shutil.copymode shutil.copystat shutil.copytree shutil.move
    shutil.chown os.rename
    """
)


# imported before privileges are dropped, for the agent's code to use
PRELOADED = _names(
    """
    bisect collections dataclasses datetime decimal fractions functools heapq itertools json
    math operator random re statistics string typing encodings.idna numpy pandas
    """
)


def _resolve(path: Any) -> str | None:
    """A path argument as a real absolute path, or None when it is not a plain path (a
    PathLike of an unknown type could run the agent's code inside the hook)."""
    if type(path) in (pathlib.PosixPath, pathlib.PurePosixPath):
        path = str(path)
    if type(path) is bytes:
        path = path.decode("utf-8", "surrogateescape")
    if type(path) is not str:
        return None
    return os.path.realpath(path)


def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def _names_module(path: str, denied: tuple[str, ...]) -> bool:
    """Whether PATH is a denied module's package folder (or inside it) or its module file."""
    return any(path.startswith((d + os.sep, d + ".")) or path == d for d in denied)


def make_hook(work: str, read_roots: tuple[str, ...]) -> Any:
    """The audit hook: refuse network, processes, foreign files and blocked imports by
    ending the process with the violation's exit code (after one line on stderr)."""
    write_roots = (work,)
    read_all = (work, *read_roots)
    # the files of blocked modules: reading them is importing them, which also catches
    # imports that skip the "import" event (importlib.import_module, _frozen_importlib)
    denied = tuple(
        os.path.join(root, name) for root in read_roots for name in sorted(BLOCKED_MODULES)
    )

    def hook(
        event: str,
        args: tuple[Any, ...],
        _write: Any = os.write,
        _exit: Any = os._exit,
        _blocked: frozenset[str] = BLOCKED_MODULES,
    ) -> None:
        reason = ""
        if event == "import":
            name = args[0]
            if type(name) is not str or name.partition(".")[0] in _blocked:
                reason = "forbidden_import"
        elif event == "open":
            target, mode, flags = args[0], args[1], args[2]
            if type(target) is not int:  # an fd the process already holds is fine
                real = _resolve(target)
                writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                    type(flags) is int
                    and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)
                )
                if real is None or not _within(real, write_roots if writing else read_all):
                    reason = "forbidden_file"
                elif not writing and real.startswith(denied) and _names_module(real, denied):
                    reason = "forbidden_import"
        elif event.startswith(NETWORK_EVENTS):
            reason = "network_blocked"
        elif event in PROCESS_EVENTS:
            reason = "forbidden_process"
        elif event in WRITE_PATH_EVENTS:
            paths = (
                args[:2] if event in ("os.rename", "shutil.copyfile", "shutil.move") else args[:1]
            )
            for path in paths:
                real = _resolve(path)
                if real is None or not _within(real, write_roots):
                    reason = "forbidden_file"
        elif (
            event in CALL_EVENTS
            or event.startswith(CALL_EVENTS_PREFIX)
            or (
                event in ("object.__setattr__", "object.__delattr__")
                and (type(args[1]) is not str or args[1] in GUARDED_ATTRIBUTES)
            )
        ):
            reason = "forbidden_call"
        if reason:
            try:
                plain = bool(args) and type(args[0]) in (str, bytes, int, tuple)
                detail = f"{event} {args[0]!r}"[:200] if plain else event
            except Exception:  # never let the agent's objects break the hook
                detail = event
            _write(2, f"\n{VIOLATION_MARK} {reason} {detail}\n".encode("utf-8", "replace"))
            _exit(EXIT_BY_REASON[reason])

    return hook


class _BlockedFinder:
    """First on `sys.meta_path`: a blocked module is refused by its name on every import route
    (the statement, `importlib.import_module`, `_gcd_import`) before any file is looked at, so
    the refusal does not depend on what `nobody` may read (a venv under a 0700 folder hides
    its packages and would turn the refusal into a plain ModuleNotFoundError). The audit
    hook's file rule stays as the second line if the agent removes this finder."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in BLOCKED_MODULES:
            os.write(2, f"\n{VIOLATION_MARK} forbidden_import import {name!r}\n".encode())
            os._exit(EXIT_BY_REASON["forbidden_import"])


def _drop_privileges() -> None:
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)


def _cpu_exceeded(signum: int, frame: Any) -> None:
    os.write(2, f"\n{VIOLATION_MARK} cpu_time the CPU time limit was reached\n".encode())
    os._exit(EXIT_BY_REASON["cpu_time"])


def _set_limits(job: dict[str, Any]) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    cpu = int(spent + job["cpu_seconds"] + 0.999)
    signal.signal(signal.SIGXCPU, _cpu_exceeded)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    with open("/proc/self/statm") as statm:  # address space already mapped by the imports
        mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    memory = mapped + job["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NPROC, (job["max_processes"], job["max_processes"]))
    size = job["max_file_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (job["max_open_files"], job["max_open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _load_inputs(indir: str) -> Any:
    import numpy as np
    import pandas as pd

    with open(os.path.join(indir, "manifest.json")) as fh:
        manifest = json.load(fh)
    data = {
        name: np.load(os.path.join(indir, f"c{i}.npy"), allow_pickle=False)
        for i, name in enumerate(manifest["columns"])
    }
    raw = np.load(os.path.join(indir, "index.npy"), allow_pickle=False)
    index: Any = pd.Index(raw)
    if manifest["index"] == "datetime":
        index = pd.DatetimeIndex(raw.astype("datetime64[ns]"))
        if manifest["tz"]:
            index = index.tz_localize("UTC").tz_convert(manifest["tz"])
    return pd.DataFrame(data, index=index)


def _one_line(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # the agent's exception may have a hostile __str__
        text = type(exc).__name__
    return " ".join(text.split())[:300]


def _as_values(result: Any, inputs: Any) -> Any:
    """The entry's return value as a float64 vector aligned with the inputs, or a reason."""
    import numpy as np
    import pandas as pd

    if isinstance(result, pd.DataFrame) or not isinstance(
        result, (pd.Series, np.ndarray, list, tuple)
    ):
        return f"returned {type(result).__name__}, expected a Series or a 1-d array"
    if isinstance(result, pd.Series) and not result.index.equals(inputs.index):
        return "returned a Series whose index differs from the inputs' index"
    values = np.asarray(result, dtype=np.float64)
    if values.shape != (len(inputs),):
        return f"returned shape {values.shape}, expected ({len(inputs)},)"
    return values


def _status(out: str, **fields: Any) -> None:
    with open(os.path.join(out, STATUS_FILE), "w") as fh:
        json.dump(fields, fh)


def main(jobdir: str) -> int:
    with open(os.path.join(jobdir, "job.json")) as fh:
        job = json.load(fh)
    work = os.path.realpath(os.path.join(jobdir, "work"))
    sys.path[:0] = job["site_dirs"]
    for name in sorted(PRELOADED):  # the interpreter may live where `nobody` cannot read
        __import__(name)
    import numpy as np

    inputs = _load_inputs(os.path.join(jobdir, "in"))
    with open(os.path.join(jobdir, "source.py")) as fh:
        source = fh.read()
    if job["drop_privileges"]:
        _drop_privileges()
    _set_limits(job)
    for name in list(sys.modules):
        if name.partition(".")[0] in BLOCKED_MODULES:
            del sys.modules[name]
    sys.meta_path.insert(0, _BlockedFinder)  # type: ignore[arg-type]
    read_roots = tuple(os.path.realpath(p) for p in (*job["site_dirs"], *job["read_roots"]))
    sys.addaudithook(make_hook(work, read_roots))

    try:
        code = compile(source, "<agent>", "exec")
    except SyntaxError as exc:
        _status(work, reason="syntax_error", detail=_one_line(exc))
        return 0
    namespace: dict[str, Any] = {"__name__": "agent", "__builtins__": __builtins__}
    try:
        exec(code, namespace)
        entry = namespace.get(job["entry"])
        if not callable(entry):
            _status(
                work, reason="missing_entry", detail=f"no function {job['entry']!r} in the source"
            )
            return 0
        full = _as_values(entry(inputs.copy()), inputs)
        prefix_len = job["prefix_rows"]
        prefix: Any = None
        if not isinstance(full, str) and prefix_len:
            part = inputs.iloc[:prefix_len]
            prefix = _as_values(entry(part.copy()), part)
    except MemoryError:
        _status(work, reason="memory", detail="MemoryError: the memory limit was reached")
        return 0
    except BaseException as exc:  # any failure of the agent's code is reported
        _status(work, reason="error", detail=_one_line(exc))
        return 0
    for bad in (full, prefix):
        if isinstance(bad, str):
            _status(work, reason="bad_output", detail=bad)
            return 0
    np.save(os.path.join(work, VALUES_FILE), full, allow_pickle=False)
    if prefix is not None:
        np.save(os.path.join(work, PREFIX_FILE), prefix, allow_pickle=False)
    _status(work, reason="ok", detail="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
