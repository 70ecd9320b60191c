"""What every local fake API server shares: a threaded HTTP server on 127.0.0.1 (port 0), a
queue of faults consumed by the next matching requests, and a log of the requests received.

Each fake subclasses `LocalFakeServer`, passing its request-handler class; the handler finds
the fake as `self.fake`. A fault is any object with a `path` prefix it applies to.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LocalFakeServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.faults: list[Any] = []
        self.requests: list[Any] = []
        self.lock = threading.RLock()
        bound = type("Handler", (handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), bound)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def inject(self, *faults: Any) -> None:
        with self.lock:
            self.faults.extend(faults)

    def pending_faults(self) -> list[Any]:
        with self.lock:
            return list(self.faults)

    def take_fault(self, path: str) -> Any | None:
        """The first queued fault whose path prefix matches, removed from the queue."""
        with self.lock:
            for i, fault in enumerate(self.faults):
                if path.startswith(fault.path):
                    return self.faults.pop(i)
        return None

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]
