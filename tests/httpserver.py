"""A loopback HTTP server for fetch tests: real sockets on 127.0.0.1, deterministic routes.

    with LoopbackServer() as srv:
        srv.url("/img/3.jpg"); srv.count("/500"); srv.user_agents

Routes: /img/<seed>.jpg, /404, /500, /flaky/<id> (503 on the first request per id, then an
image), /reset (TCP RST, no response), /hang (never answers), /slow (drips a declared body),
/endless (unbounded body), /late-404 (body 50 ms after the headers), /noai, /noimageai,
/redirect-to-img[/<seed>] (302 to /img), /files/<name> (the bytes in `srv.files[name]`).
Handlers that wait sleep on a stop event (woken at once by stop()) and give up after CAP_S,
so stop() never waits on them and no test can hang on the server.
"""

from __future__ import annotations

import collections
import functools
import itertools
import socket
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests import util

CAP_S = 60.0
ROBOTS = {"/noai": "noai", "/noimageai": "otherbot: noimageai"}


@functools.lru_cache(maxsize=None)
def jpeg(seed: int) -> bytes:
    return util.jpeg(seed=seed)


def flaky_seed(ident: str) -> int:
    """Seed of the image /flaky/<ident> serves (distinct from small /img seeds)."""
    return 100_000 + zlib.crc32(ident.encode()) % 100_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    timeout = 5  # a client that stops reading cannot block a writer forever

    def log_message(self, *args):
        pass  # quiet

    def do_GET(self):
        srv: LoopbackServer = self.server.owner
        path = self.path.split("?", 1)[0]
        with srv.lock:
            srv.counts[path] += 1
            nth = srv.counts[path]
            srv.requests.append((path, self.headers.get("User-Agent", "")))
        if path.startswith("/img/") and path.endswith(".jpg"):
            self._send(200, jpeg(seed=int(path[5:-4])))
        elif path.startswith("/flaky/"):  # 503 on the first request for this id, then an image
            self._send(*((503, b"try again") if nth == 1 else (200, jpeg(seed=flaky_seed(path[7:])))))
        elif path.startswith("/files/") and path[7:] in srv.files:
            self._send(200, srv.files[path[7:]])
        elif path == "/404":
            self._send(404, b"not found")
        elif path == "/late-404":  # the body follows the headers 50 ms later, in its own segment
            self._send(404, b"not found", late=0.05)
        elif path == "/500":
            self._send(500, b"boom")
        elif path in ROBOTS:
            self._send(200, jpeg(seed=9), {"X-Robots-Tag": ROBOTS[path]})
        elif path.startswith("/redirect-to-img"):
            seed = path.rsplit("/", 1)[-1] if path.count("/") == 2 else "7"
            self._send(302, b"", {"Location": f"/img/{seed}.jpg"})
        elif path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # linger 0: the kernel sends RST, not FIN
            self.close_connection = True
        elif path == "/hang":
            self._wait(CAP_S)
            self.close_connection = True
        elif path == "/slow":  # one byte every 0.1 s: never a read timeout, only the deadline
            body = jpeg(seed=8)
            self._stream((body[i : i + 1] for i in range(len(body))), ("Content-Length", str(len(body))), 0.1)
        elif path == "/endless":
            self._stream(itertools.repeat(b"\xff" * 65536), ("Connection", "close"), 0)  # ends at close
        else:
            self._send(404, b"no such route")

    def _send(self, status: int, body: bytes, headers: dict | None = None, late: float = 0):
        self.send_response(status)
        self.send_header("Content-Type", "image/jpeg" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()  # flushes the headers
        if late and not self._wait(late):
            return
        self.wfile.write(body)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking at once when the server stops; False if it is stopping."""
        return not self.server.owner.stopping.wait(seconds)

    def _stream(self, pieces, header: tuple[str, str], pause: float):
        """Send `pieces` `pause` s apart until done, stopped, CAP_S, or the client gives up."""
        self.send_response(200)
        self.send_header(*header)
        self.end_headers()
        self.close_connection = True
        started = time.monotonic()
        try:
            for piece in pieces:
                self.wfile.write(piece)
                if time.monotonic() - started > CAP_S or not self._wait(pause):
                    return
        except OSError:  # the client hung up, or stopped reading (socket timeout)
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still running never blocks stop()
    block_on_close = False
    # socketserver's default backlog is 5: with 16 download threads and hanging handlers on a
    # loaded 2-core machine, a new connection could wait past connect_timeout and the request
    # never arrive (CI once saw /hang's retry missing from the counts this way)
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # clients hang up
            super().handle_error(request, client_address)


class LoopbackServer:
    def __init__(self):
        self.counts: collections.Counter = collections.Counter()
        self.requests: list[tuple[str, str]] = []  # (path, User-Agent) in arrival order
        self.files: dict[str, bytes] = {}  # served at /files/<name>
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        with self.lock:
            return self.counts[path]

    def settled_counts(self, expected: dict[str, int], timeout: float = 5.0) -> dict[str, int]:
        """Request counts of these paths, once they equal `expected` or `timeout` passes. A
        client that gave up (a read timeout) may leave its request still queued for a handler
        thread, so on a loaded machine the last count can land just after the run returns."""
        deadline = time.monotonic() + timeout
        while True:
            got = {p: self.count(p) for p in expected}
            if got == expected or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    @property
    def total(self) -> int:
        with self.lock:
            return len(self.requests)

    @property
    def user_agents(self) -> list[str]:
        with self.lock:
            return [ua for _, ua in self.requests]

    def start(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes every waiting handler at once
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
