"""Getting media bytes: local paths, gs:// and s3:// through Beam FileSystems, and http(s).

HTTP follows img2dataset's manners and adds the guards a crawler at scale needs: connect,
read and whole-download timeouts; bounded retries with exponential backoff on 5xx, 429,
resets and timeouts; a byte cap enforced while streaming; a user agent; the X-Robots-Tag
opt-out (noai, noimageai, noindex); and no requests to private, loopback or link-local
addresses unless allowed (also re-checked on every redirect).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import BinaryIO, Optional
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from mmcurate.pipelines import fileio
from mmcurate.schemas.config import FetchConfig
from mmcurate.schemas.record import Verdict

OPT_OUT_TOKENS = {"noai", "noimageai", "noindex"}
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


class FetchFailed(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.verdict = Verdict.reject(reason, detail)


class _Retryable(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _Body:
    """Where a download goes: memory (returned as bytes) or a binary file (`sink`, for media
    too large to hold, e.g. videos), never more than `cap` bytes."""

    def __init__(self, cap: int, sink: Optional[BinaryIO] = None):
        self.cap, self.sink = cap, sink
        self.reset()

    def reset(self) -> None:
        """Start over (a retry, a redirect)."""
        self.size, self.chunks = 0, []
        if self.sink is not None:
            self.sink.seek(0)
            self.sink.truncate()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.cap:
            raise FetchFailed("fetch.too_large", f"over {self.cap} bytes")
        if self.sink is None:
            self.chunks.append(chunk)
        else:
            self.sink.write(chunk)

    def value(self) -> bytes:
        return b"".join(self.chunks)  # b"" when the bytes went to the sink


class Fetcher:
    """Thread-safe: one per worker process, shared by that worker's download threads."""

    def __init__(self, cfg: FetchConfig):
        self.cfg = cfg
        self.http = urllib3.PoolManager(
            num_pools=max(64, cfg.threads * 4),
            maxsize=cfg.threads,
            headers={"User-Agent": cfg.user_agent},
            retries=False,
        )

    def fetch(self, locator: str, sink: Optional[BinaryIO] = None, max_bytes: Optional[int] = None) -> bytes:
        """The bytes at `locator` (at most `max_bytes`, default fetch.max_bytes); with `sink`, they
        are written there instead and b"" is returned. FetchFailed names the reason."""
        body = _Body(max_bytes or self.cfg.max_bytes, sink)
        try:
            scheme = urlsplit(locator).scheme.lower() if "://" in locator else ""
        except ValueError as e:  # e.g. an unclosed IPv6 bracket
            raise FetchFailed("fetch.bad_url", f"{locator[:200]}: {e}") from None
        if scheme in ("http", "https"):
            return self._fetch_http(locator, body)
        if scheme and not _has_filesystem(locator):  # ftp://, file://, ...: not "not found"
            raise FetchFailed("fetch.bad_url", f"unsupported scheme {scheme}://")
        return self._fetch_file(locator, body)

    # -- files ------------------------------------------------------------------------
    def _fetch_file(self, path: str, body: _Body) -> bytes:
        try:
            if body.sink is None:
                body.add(fileio.read_bytes(path, body.cap + 1))
            else:
                with fileio.open_read(path) as f:
                    while chunk := f.read(_CHUNK):
                        body.add(chunk)
        except FetchFailed:
            raise
        except FileNotFoundError:
            raise FetchFailed("fetch.not_found", path) from None
        except IsADirectoryError:
            raise FetchFailed("fetch.not_found", f"{path} is a directory") from None
        except Exception as e:  # Beam raises BeamIOError/IOError for remote misses
            if fileio.is_remote(path) and not _exists_quietly(path):
                raise FetchFailed("fetch.not_found", path) from None
            raise FetchFailed("fetch.connection_error", f"{type(e).__name__}: {e}") from None
        return body.value()

    # -- http ---------------------------------------------------------------------------
    def _fetch_http(self, url: str, body: _Body) -> bytes:
        attempt, delay = 0, self.cfg.backoff
        while True:
            try:
                return self._get_following_redirects(url, body)
            except _Retryable as e:
                if attempt >= self.cfg.retries:
                    raise FetchFailed(e.reason, e.detail) from None
                attempt += 1
                time.sleep(delay)
                delay *= 2

    def _get_following_redirects(self, url: str, body: _Body) -> bytes:
        started = time.monotonic()
        for _ in range(MAX_REDIRECTS + 1):
            self._check_host(url)
            resp = self._request(url)
            complete = False
            try:
                if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                    url = urljoin(url, resp.headers["Location"])
                    continue
                data = self._read_body(url, resp, started, body)
                complete = True
                return data
            finally:
                if not complete:
                    # A keep-alive connection with an unread body (error, redirect, opt-out,
                    # cap, deadline) must not go back to the pool: the next request on it
                    # would read those bytes as its status line (BadStatusLine).
                    resp.close()
                resp.release_conn()
        raise FetchFailed("fetch.http_error", f"more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str):
        timeout = urllib3.Timeout(connect=self.cfg.connect_timeout, read=self.cfg.read_timeout)
        try:
            return self.http.request("GET", url, preload_content=False, redirect=False, timeout=timeout, retries=False)
        except (ConnectTimeoutError, ReadTimeoutError) as e:
            raise _Retryable("fetch.timeout", str(e)) from None
        except (NewConnectionError, ProtocolError, SSLError, OSError) as e:
            raise _Retryable("fetch.connection_error", f"{type(e).__name__}: {e}") from None
        except urllib3.exceptions.LocationParseError as e:
            raise FetchFailed("fetch.bad_url", str(e)) from None
        except HTTPError as e:
            raise _Retryable("fetch.connection_error", f"{type(e).__name__}: {e}") from None

    def _read_body(self, url: str, resp, started: float, body: _Body) -> bytes:
        status = resp.status
        if status in (404, 410):
            raise FetchFailed("fetch.not_found", f"HTTP {status}")
        if status == 429 or status >= 500:
            raise _Retryable("fetch.http_error", f"HTTP {status}")
        if status >= 400 or status < 200:
            raise FetchFailed("fetch.http_error", f"HTTP {status}")
        if self.cfg.respect_optout and opted_out(resp.headers.getlist("X-Robots-Tag")):
            raise FetchFailed("fetch.opt_out", resp.headers.get("X-Robots-Tag", ""))
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > body.cap:
            raise FetchFailed("fetch.too_large", f"Content-Length {declared}")
        body.reset()
        try:
            # read1 returns what has arrived; stream()/read(n) would block until n bytes
            # came, so a body dripping under read_timeout would never reach the deadline.
            while chunk := resp.read1(_CHUNK):
                body.add(chunk)
                if time.monotonic() - started > self.cfg.deadline:
                    raise _Retryable("fetch.timeout", f"download took over {self.cfg.deadline}s")
        except (ReadTimeoutError, TimeoutError) as e:
            raise _Retryable("fetch.timeout", str(e)) from None
        except (ProtocolError, OSError, HTTPError) as e:
            raise _Retryable("fetch.connection_error", f"{type(e).__name__}: {e}") from None
        return body.value()

    def _check_host(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchFailed("fetch.bad_url", url[:200])
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as e:  # out of range or not a number: not worth a retry
            raise FetchFailed("fetch.bad_url", f"{url[:200]}: {e}") from None
        if self.cfg.allow_private_hosts:
            return
        try:
            infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError, ValueError) as e:
            raise _Retryable("fetch.connection_error", f"cannot resolve {parts.hostname}: {e}") from None
        for info in infos:
            addr = ipaddress.ip_address(info[4][0].split("%")[0])
            if not addr.is_global or addr.is_multicast:
                raise FetchFailed("fetch.private_host", f"{parts.hostname} -> {addr}")


def opted_out(header_values: list[str]) -> bool:
    """True when any X-Robots-Tag value carries an AI opt-out directive.

    Values look like `noai`, `noai, noimageai`, or `otherbot: noindex, nofollow`; a
    directive scoped to another user agent still counts (img2dataset does the same)."""
    for value in header_values:
        for part in value.lower().replace(";", ",").split(","):
            token = part.split(":")[-1].strip()
            if token in OPT_OUT_TOKENS:
                return True
    return False


def _has_filesystem(path: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    try:
        FileSystems.get_filesystem(path)
        return True
    except Exception:  # ValueError for unknown schemes, BeamIOError for a missing extra
        return False


def _exists_quietly(path: str) -> bool:
    try:
        return fileio.exists(path)
    except Exception:
        return False
