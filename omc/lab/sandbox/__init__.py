"""The sandbox for agent-written code: ``run_sandboxed(source, entry, inputs, limits=…)``
runs one feature/analysis function in a separate, limited process and hands back its
validated output, or the reason it was refused. It never raises for what the code does.

What is enforced by what (layers, outermost first):

* **The parent** (``runner``): a private job folder per run; the inputs are written as
  ``.npy`` columns (no pickle) into ``in/``, read-only (files 0444, folder 0555, owned by
  root when the Lab runs as root); the child gets ``work/`` as cwd, HOME and TMPDIR; an
  allow-listed environment (no ``OMC_*``, no key/token/secret/password, no database URL,
  no PYTHONPATH); ``python -I -S -B`` (no user site, no ``.pth`` files, so the editable
  ``omc`` install is not importable; only the directories holding numpy/pandas are added);
  its own session/process group, a wall-time deadline, and ``killpg(SIGKILL)`` in
  ``finally``; output read back as ``.npy`` with ``allow_pickle=False`` from size-bounded
  regular files and validated (``validate``: length, float64, no ±inf, not all NaN,
  causal on a prefix re-run).
* **Namespaces** (``isolation``, where the system allows): ``unshare --net --pid --fork
  --kill-child`` (plus ``--user --map-root-user`` when not root). The child has no network
  interface but a down loopback — even a socket made by C code cannot reach the host's
  127.0.0.1 or the internet — and sees no process outside its own tree; when its first
  process ends, the kernel kills the rest. If ``unshare`` is refused the run goes on
  without it and the result's ``isolation`` line says "no network namespace (…)".
* **Privileges and rlimits** (``launcher``, before any agent code runs): a root parent's
  child drops to ``nobody`` (65534), so file permissions protect the database, the
  settings and the inputs from C-level I/O too; ``RLIMIT_CPU`` (SIGXCPU, then SIGKILL),
  ``RLIMIT_AS`` (address space beyond what numpy/pandas mapped: a huge allocation is a
  ``MemoryError``), ``RLIMIT_NPROC`` (default 1: no new process or thread at all, counted
  per user — it is what stops ``subprocess._fork_exec``, which raises no audit event; the
  kernel does not apply it to root, hence the drop), ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``,
  no core files; SIGXCPU ends the run through a handler (as PID 1 of its namespace the
  launcher would ignore it by default), the hard CPU limit's SIGKILL is the backstop.
* **The audit hook** (``launcher.make_hook``, ``sys.addaudithook``; cannot be removed once
  installed): refuses socket creation/connect/DNS (``network_blocked``), fork/exec/spawn/
  system/subprocess/kill (``forbidden_process``), ``open`` for reading outside its folder,
  the inputs, the stdlib and site-packages and for writing outside ``work/`` — ``/proc``
  included (``forbidden_file``), file changes (remove, rename, chmod …) outside ``work/``,
  imports of ``omc``, database, HTTP, socket, subprocess, multiprocessing, ctypes/cffi
  modules (``forbidden_import``; the already-loaded ones are dropped from ``sys.modules``
  first so ``__import__`` tricks hit the hook), ctypes, gc object walks, sqlite3, tracing
  and rewriting a function's ``__code__``/defaults (``forbidden_call``). A violation ends
  the process at once with an exit code naming the reason, so the code cannot catch it.

Known limits of a Python-level sandbox — why the outer layers matter: audit hooks see
only what CPython and well-behaved extensions announce; C extensions that do their own I/O
or syscalls (pyarrow's file readers, a compiled library that opens sockets, an
``_posixsubprocess`` reference reachable from an already-imported module) bypass the hook.
Those are held by the OS layers: file permissions as ``nobody``, the empty network
namespace, ``RLIMIT_NPROC`` and the process-group kill. Without root and without user
namespaces only the hook, the rlimits and the scrubbed environment remain — the result's
``isolation`` line says which layers were in force. CPU time and memory are per process;
the wall time is what bounds a run that sleeps. The causal check is a heuristic (a
function could detect the prefix run), not a security boundary.
"""

from omc.lab.sandbox.runner import Limits, SandboxResult, run_sandboxed

__all__ = ["Limits", "SandboxResult", "run_sandboxed"]
