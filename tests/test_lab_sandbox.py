"""The sandbox for agent-written code: a corpus of escape attempts — every one fails and is
reported with its reason — and a legitimate feature that works and equals pandas' result.

Each run is a real child process with small limits (1 s CPU, 256 MB, a few seconds of wall
time); run_sandboxed kills the child's whole process group in its own ``finally``.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omc.lab.sandbox import Limits, SandboxResult, run_sandboxed
from omc.lab.sandbox.isolation import namespace

SMALL = Limits(cpu_seconds=1, memory_mb=256, wall_seconds=8.0)
ROWS = 120


@pytest.fixture(scope="module")
def inputs() -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=ROWS, freq="h", tz="UTC")
    rng = np.random.default_rng(7)
    close = 100 + rng.standard_normal(ROWS).cumsum()
    return pd.DataFrame({"close": close, "volume": rng.uniform(1, 5, ROWS)}, index=index)


def run(source: str, inputs: pd.DataFrame, limits: Limits = SMALL) -> SandboxResult:
    return run_sandboxed(source, "feature", inputs, limits=limits)


def feature_source(body: str) -> str:
    """`feature(df)` running `body` (indented by four spaces), then returning `df.close`."""
    return "def feature(df):\n    " + body + "\n    return df.close\n"


def refused(result: SandboxResult, *reasons: str) -> None:
    assert not result.ok and result.values is None, result
    assert result.reason in reasons, result
    assert result.error.startswith(result.reason) and "\n" not in result.error


class Listener:
    """A real TCP listener on 127.0.0.1 that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    try:
        yield server
    finally:
        server.close()


def test_a_legitimate_feature_works_and_equals_pandas(inputs: pd.DataFrame) -> None:
    source = (
        "import numpy as np\n"
        "def feature(df):\n"
        "    print('rows', len(df))\n"
        "    with open('scratch.txt', 'w') as fh:\n"  # writing inside its own folder is fine
        "        fh.write('ok')\n"
        "    assert open('scratch.txt').read() == 'ok'\n"
        "    return df['close'].rolling(10).mean()\n"
    )
    result = run(source, inputs)
    assert result.ok, result
    assert result.reason == "ok" and result.error == ""
    assert result.values is not None
    expected = inputs["close"].rolling(10).mean()
    pd.testing.assert_series_equal(result.values, expected, check_names=False)
    assert result.values.index.equals(inputs.index)
    assert "rows 120" in result.stdout_tail
    assert "audit hook" in result.isolation and result.seconds > 0


@pytest.mark.parametrize(
    "attempt",
    [
        "import socket\n    socket.create_connection(('127.0.0.1', PORT), timeout=1)",
        "import urllib.request\n    urllib.request.urlopen('http://127.0.0.1:PORT/', timeout=1)",
        "getattr(__builtins__, '__imp' + 'ort__')('soc' + 'ket')"
        ".create_connection(('127.0.0.1', PORT))",
        "import _socket\n    _socket.socket()",
        "import http.client\n    http.client.HTTPConnection('127.0.0.1', PORT).request('GET', '/')",
        # socket is still loaded under another module's attribute: the hook refuses the object
        "import sys\n    s = next(v.socket for v in list(sys.modules.values())"
        " if type(getattr(v, 'socket', None)) is type(sys))\n"
        "    s.socket(s.AF_INET, s.SOCK_STREAM).connect(('127.0.0.1', PORT))",
    ],
    ids=["socket", "urllib", "getattr-import", "_socket", "http.client", "loaded-module"],
)
def test_network_is_blocked_and_nothing_connects(
    attempt: str, inputs: pd.DataFrame, listener: Listener
) -> None:
    source = (
        "def feature(df):\n    "
        + attempt.replace("PORT", str(listener.port))
        + "\n    return df.close\n"
    )
    result = run(source, inputs)
    refused(result, "network_blocked", "forbidden_import")
    time.sleep(0.2)
    assert listener.accepted == 0


def test_a_socket_reached_without_import_is_network_blocked(inputs: pd.DataFrame) -> None:
    source = (
        "import sys\n"
        "def feature(df):\n"
        "    s = next(v.socket for v in list(sys.modules.values())\n"
        "             if type(getattr(v, 'socket', None)) is type(sys))\n"
        "    s.getaddrinfo('example.com', 80)\n"
    )
    refused(run(source, inputs), "network_blocked")


def test_the_namespace_alone_keeps_the_host_loopback_unreachable(listener: Listener) -> None:
    ns = namespace()
    if not ns.active:
        pytest.skip(ns.description)
    code = f"import socket; socket.create_connection(('127.0.0.1', {listener.port}), timeout=1)"
    proc = subprocess.run([*ns.prefix, sys.executable, "-c", code], capture_output=True, timeout=20)
    assert proc.returncode != 0
    assert b"unreachable" in proc.stderr or b"refused" in proc.stderr
    time.sleep(0.2)
    assert listener.accepted == 0


def test_writes_outside_its_folder_fail(inputs: pd.DataFrame, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    for attempt in (
        f"open({str(target)!r}, 'w').write('x')",
        f"import os\n    os.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)",
        f"import pathlib\n    pathlib.Path({str(target)!r}).write_text('x')",
        "open('../escaped.txt', 'w')",
        "open('/proc/self/mem', 'r+b')",
    ):
        source = feature_source(attempt)
        refused(run(source, inputs), "forbidden_file")
    assert not target.exists()


def test_the_inputs_cannot_be_deleted_or_changed(inputs: pd.DataFrame) -> None:
    for attempt in (
        "import os\n    os.remove('../in/c0.npy')",
        "import os\n    os.chmod('../in/c0.npy', 0o666)",
        "open('../in/c0.npy', 'r+b')",
        "import shutil\n    shutil.rmtree('../in')",
    ):
        source = feature_source(attempt)
        refused(run(source, inputs), "forbidden_file")
    before = inputs.copy()
    source = "def feature(df):\n    df['close'] = 0.0\n    return df['volume']\n"
    assert run(source, inputs).ok
    pd.testing.assert_frame_equal(inputs, before)


def test_environment_secrets_are_not_visible(
    inputs: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMC_SECRET_KEY", "sk-parent-secret-123")
    monkeypatch.setenv("OMC_DATABASE_URL", "postgresql://u:pw-parent-secret-123@db/omc")
    monkeypatch.setenv("EXCHANGE_API_TOKEN", "tok-parent-secret-123")
    source = (
        "import os\n"
        "def feature(df):\n"
        "    print(dict(os.environ))\n"
        "    seen = any('parent-secret' in v for v in os.environ.values())\n"
        "    return df.close * 0 + (1.0 if seen else 0.0)\n"
    )
    result = run(source, inputs)
    assert result.ok and result.values is not None
    assert (result.values == 0.0).all()
    assert "parent-secret" not in result.stdout_tail and "OMC_" not in result.stdout_tail
    for attempt in ("open('/proc/self/environ').read()", "open('/proc/1/environ').read()"):
        source = feature_source(attempt)
        refused(run(source, inputs), "forbidden_file")


def test_the_database_and_settings_are_out_of_reach(inputs: pd.DataFrame, tmp_path: Path) -> None:
    db = tmp_path / "omc.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table secrets (v text)")
        conn.execute("insert into secrets values ('db-secret')")
    conn.close()
    attempts = {
        f"open({str(db)!r}, 'rb').read()": "forbidden_file",
        f"import sqlite3\n    sqlite3.connect({str(db)!r})": "forbidden_import",
        "import omc.core.db": "forbidden_import",
        "import omc.core.config": "forbidden_import",
        "import sqlalchemy": "forbidden_import",
        "import psycopg": "forbidden_import",
        "import httpx": "forbidden_import",
        # import_module skips the "import" audit event; reading the module's files is refused
        "__import__('importlib').import_module('sqlalchemy')": "forbidden_import",
        "__import__('_frozen_importlib')._gcd_import('httpx')": "forbidden_import",
    }
    for attempt, reason in attempts.items():
        source = feature_source(attempt)
        result = run(source, inputs)
        refused(result, reason)
        assert "db-secret" not in result.stdout_tail + result.error
    # the project is refused by name on every import route, wherever it lies and whatever
    # the file system lets `nobody` read (a venv under a 0700 folder, as in a mktemp clone)
    result = run("import importlib\ndef feature(df):\n    importlib.import_module('omc')\n", inputs)
    refused(result, "forbidden_import")
    project = str(Path(__file__).resolve().parents[1])
    source = (
        f"import sys\nsys.path.append({project!r})\n"
        "import importlib\ndef feature(df):\n    importlib.import_module('omc')\n"
    )
    refused(run(source, inputs), "forbidden_import")
    # and its folder is not readable
    readme = str(Path(project) / "README.md")
    refused(run(feature_source(f"open({readme!r}).read()"), inputs), "forbidden_file")


def test_processes_cannot_be_started(inputs: pd.DataFrame) -> None:
    attempts = {
        "import os\n    while True:\n        os.fork()": "forbidden_process",
        "import os\n    os.system('curl http://127.0.0.1/')": "forbidden_process",
        "import os\n    os.execv('/bin/sh', ['sh'])": "forbidden_process",
        "import os\n    os.posix_spawn('/bin/true', ['true'], {})": "forbidden_process",
        "import os\n    os.kill(1, 9)": "forbidden_process",
        "import subprocess\n    subprocess.run(['curl', 'http://127.0.0.1/'])": "forbidden_import",
        "import multiprocessing as m\n    m.Process(target=print).start()": "forbidden_import",
        # subprocess is still loaded under another module's attribute: Popen itself is refused
        "import sys\n    sp = next(v.subprocess for v in list(sys.modules.values())"
        " if type(getattr(v, 'subprocess', None)) is type(sys))\n"
        "    sp.run(['/bin/true'])": "forbidden_process",
    }
    for attempt, reason in attempts.items():
        source = feature_source(attempt)
        refused(run(source, inputs), reason)


def test_a_fork_the_hook_cannot_see_is_stopped_by_the_process_limit(
    inputs: pd.DataFrame, tmp_path: Path
) -> None:
    # _posixsubprocess.fork_exec raises no audit event; RLIMIT_NPROC (1: no new process or
    # thread) is what stops it (the call below is 3.11's 23-argument signature)
    if sys.version_info[:2] != (3, 11):
        pytest.skip("fork_exec's signature is version specific")
    marker = tmp_path / "escaped"
    source = (
        "import os, sys\n"
        "def feature(df):\n"
        "    sp = next(v.subprocess for v in list(sys.modules.values())\n"
        "              if type(getattr(v, 'subprocess', None)) is type(sys))\n"
        "    r, w = os.pipe()\n"
        f"    cmd = b'echo escaped > {marker}'\n"
        "    sp._fork_exec([b'/bin/sh', b'-c', cmd], [b'/bin/sh'], True, (w,), None, None,\n"
        "                  -1, -1, -1, -1, -1, -1, r, w, True, False, -1, -1, None, -1, -1,\n"
        "                  None, False)\n"
        "    return df.close\n"
    )
    result = run(source, inputs)
    refused(result, "error")
    assert "Resource temporarily unavailable" in result.error
    time.sleep(0.2)
    assert not marker.exists()


def test_ctypes_and_object_graph_tricks_fail(inputs: pd.DataFrame) -> None:
    attempts = {
        "import ctypes": "forbidden_import",
        "__import__('_ctypes')": "forbidden_import",
        # ctypes is still loaded inside numpy: using it is refused
        "import numpy._core._internal as i\n    i.ctypes.CDLL(None)": "forbidden_call",
        "import gc\n    gc.get_objects()": "forbidden_call",
        "import sys\n    sys.settrace(lambda *a: None)": "forbidden_call",
        "def g(): pass\n    g.__code__ = (lambda: 1).__code__": "forbidden_call",
    }
    for attempt, reason in attempts.items():
        source = feature_source(attempt)
        refused(run(source, inputs), reason)


def test_a_caught_violation_still_fails(inputs: pd.DataFrame) -> None:
    source = (
        "def feature(df):\n"
        "    try:\n"
        "        import socket\n"
        "    except BaseException:\n"
        "        pass\n"
        "    return df.close\n"
    )
    refused(run(source, inputs), "forbidden_import")


def test_huge_allocations_hit_the_memory_limit(inputs: pd.DataFrame) -> None:
    for attempt in ("bytearray(10 * 1024 ** 3)", "import numpy as np\n    np.ones(2 * 1024 ** 3)"):
        source = feature_source(attempt)
        refused(run(source, inputs), "memory")


def test_an_infinite_loop_hits_the_cpu_limit(inputs: pd.DataFrame) -> None:
    result = run("def feature(df):\n    while True:\n        pass\n", inputs)
    refused(result, "cpu_time")
    assert result.seconds < SMALL.wall_seconds


def test_sleeping_forever_hits_the_wall_time(inputs: pd.DataFrame) -> None:
    limits = Limits(cpu_seconds=1, memory_mb=256, wall_seconds=1.5)
    result = run("import time\ndef feature(df):\n    time.sleep(3600)\n", inputs, limits)
    refused(result, "timeout")
    assert result.seconds < 5


def test_bad_outputs_are_refused(inputs: pd.DataFrame) -> None:
    attempts = {
        "return df.close.iloc[:10]": "bad_output",  # a Series of the wrong length
        "return [1.0, 2.0]": "bad_output",
        "return df": "bad_output",
        "return 'a string'": "bad_output",
        "return df.close * float('inf')": "bad_output",
        "return df.close * float('nan')": "bad_output",
        "return df.close.reset_index(drop=True)": "bad_output",  # index no longer matches
        "return df.close.shift(-1).fillna(0.0)": "bad_output",  # looks ahead: not causal
        "raise ValueError('nope')": "error",
    }
    for attempt, reason in attempts.items():
        result = run("def feature(df):\n    " + attempt + "\n", inputs)
        refused(result, reason)


def test_a_pickle_bomb_in_place_of_the_output_is_refused(inputs: pd.DataFrame) -> None:
    # the code writes a pickled object array as its "values" and a forged ok status
    source = (
        "import json, os, numpy as np\n"
        "class Bomb:\n"
        "    def __reduce__(self):\n"
        "        return (os.system, ('echo pwned',))\n"
        "def feature(df):\n"
        "    np.save('values.npy', np.array([Bomb()] * len(df), dtype=object), allow_pickle=True)\n"
        "    json.dump({'reason': 'ok', 'detail': ''}, open('status.json', 'w'))\n"
        "    os._exit(0)\n"
    )
    result = run(source, inputs)
    refused(result, "bad_output")
    assert "pwned" not in result.stdout_tail


def test_source_problems_are_reported(inputs: pd.DataFrame) -> None:
    refused(run("def feature(df)\n    return df.close\n", inputs), "syntax_error")
    refused(run("def other(df):\n    return df.close\n", inputs), "missing_entry")
    refused(run("import sys\ndef feature(df):\n    sys.exit(3)\n", inputs), "error")
