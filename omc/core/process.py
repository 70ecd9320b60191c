"""Which process owns a `running` record, and whether that process is gone.

Long jobs (collector runs, Lab sessions) record `host:pid:token` when they start. A record a
`kill -9` left `running` can then be told from one a live process is still working on: it
belongs to this host, and its pid is no longer alive (or is this process's pid under another
token — the pid was reused, e.g. a container's pid 1 after a restart). Records of other hosts
and of live processes are never touched.
"""

from __future__ import annotations

import os
import socket
import uuid

# tells this process from an earlier one that had the same pid
_TOKEN = uuid.uuid4().hex[:12]


def process_owner() -> str:
    """This process as `host:pid:token`."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{_TOKEN}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def owner_gone(owner: str | None) -> bool:
    """True when `owner` (from `process_owner`) is a process of this host that has ended.
    Unknown formats, other hosts and live processes are False (left alone)."""
    if not owner:
        return False
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname()[:80] or not parts[1].isdigit():
        return False
    if owner == process_owner():
        return False
    pid = int(parts[1])
    return pid == os.getpid() or not _alive(pid)


def owner_pid(owner: str) -> str:
    """The pid part of an owner string, for messages."""
    parts = owner.rsplit(":", 2)
    return parts[1] if len(parts) == 3 else owner
