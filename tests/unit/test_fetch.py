"""Fetcher against a real HTTP server on 127.0.0.1 (no mocked network), plus local files."""

from __future__ import annotations

import socket
import time

import pytest

from mmcurate.pipelines.fetch import Fetcher, FetchFailed, opted_out
from mmcurate.schemas.config import FetchConfig
from tests.httpserver import LoopbackServer, flaky_seed
from tests.util import jpeg, write

pytestmark = pytest.mark.timeout(30)  # every case here is bounded by the fetch timeouts


@pytest.fixture
def srv():
    with LoopbackServer() as server:
        yield server


def fetcher(**overrides) -> Fetcher:
    values = dict(connect_timeout=1, read_timeout=1, deadline=3, retries=1, backoff=0.01, allow_private_hosts=True)
    values.update(overrides)
    return Fetcher(FetchConfig(**values))


def reason_of(f: Fetcher, locator: str) -> FetchFailed:
    with pytest.raises(FetchFailed) as info:
        f.fetch(locator)
    return info.value.verdict


def test_server_stops_promptly_while_handlers_are_still_busy():
    srv = LoopbackServer().start()
    clients = []
    for path in ("/hang", "/slow", "/endless"):
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        clients.append(c)
    deadline = time.monotonic() + 2
    while srv.total < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.total == 3
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 1
    for c in clients:  # each handler ended and closed its connection: reads reach EOF
        while c.recv(1 << 20):
            pass
        c.close()


# -- http: success paths -------------------------------------------------------------------


def test_image_bytes_come_back_exactly(srv):
    assert fetcher().fetch(srv.url("/img/3.jpg")) == jpeg(seed=3)
    assert srv.count("/img/3.jpg") == 1


def test_redirect_is_followed(srv):
    assert fetcher().fetch(srv.url("/redirect-to-img/5")) == jpeg(seed=5)
    assert (srv.count("/redirect-to-img/5"), srv.count("/img/5.jpg")) == (1, 1)


def test_user_agent_is_sent_on_every_request(srv):
    f = fetcher(user_agent="mmcurate-test/9 (+loopback)")
    f.fetch(srv.url("/img/1.jpg"))
    f.fetch(srv.url("/redirect-to-img/2"))
    assert srv.user_agents == ["mmcurate-test/9 (+loopback)"] * 3


def test_default_user_agent_is_the_configured_one(srv):
    fetcher().fetch(srv.url("/img/1.jpg"))
    assert srv.user_agents == [FetchConfig().user_agent]


def test_flaky_503_then_200_succeeds_with_exactly_two_requests(srv):
    assert fetcher(retries=1).fetch(srv.url("/flaky/a")) == jpeg(seed=flaky_seed("a"))
    assert srv.count("/flaky/a") == 2


def test_flaky_without_retries_fails_after_one_request(srv):
    v = reason_of(fetcher(retries=0), srv.url("/flaky/b"))
    assert (v.reason, v.detail) == ("fetch.http_error", "HTTP 503")
    assert srv.count("/flaky/b") == 1


# -- http: failures ------------------------------------------------------------------------


def test_404_is_not_found_and_not_retried(srv):
    v = reason_of(fetcher(retries=2), srv.url("/404"))
    assert (v.reason, v.detail) == ("fetch.not_found", "HTTP 404")
    assert srv.count("/404") == 1


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_persistent_500_is_http_error_after_retries_plus_one_requests(srv, retries):
    v = reason_of(fetcher(retries=retries), srv.url("/500"))
    assert (v.reason, v.detail) == ("fetch.http_error", "HTTP 500")
    assert srv.count("/500") == retries + 1


def test_unread_error_body_does_not_poison_the_next_request(srv):
    """Regression: a 404 whose body arrives after its headers used to go back to the pool
    unread; the next request on that keep-alive connection read it as its status line."""
    f = fetcher(retries=0)
    assert reason_of(f, srv.url("/late-404")).reason == "fetch.not_found"
    assert f.fetch(srv.url("/img/4.jpg")) == jpeg(seed=4)
    assert reason_of(f, srv.url("/late-404")).reason == "fetch.not_found"
    assert reason_of(f, srv.url("/500")).reason == "fetch.http_error"
    assert srv.count("/late-404") == 2 and srv.count("/img/4.jpg") == 1


def test_connection_reset_is_connection_error_after_retries(srv):
    v = reason_of(fetcher(retries=1), srv.url("/reset"))
    assert v.reason == "fetch.connection_error"
    assert "ConnectionResetError" in v.detail
    assert srv.count("/reset") == 2


def test_hanging_server_times_out_within_bound(srv):
    started = time.monotonic()
    v = reason_of(fetcher(read_timeout=0.5, retries=1), srv.url("/hang"))
    elapsed = time.monotonic() - started
    assert v.reason == "fetch.timeout"
    assert srv.count("/hang") == 2
    assert 0.9 < elapsed < 3.0  # two 0.5 s read timeouts and a 10 ms backoff


def test_slow_drip_body_hits_the_deadline(srv):
    """/slow sends a byte every 0.1 s (never a read timeout); only the deadline stops it."""
    started = time.monotonic()
    v = reason_of(fetcher(deadline=1, read_timeout=1, retries=0), srv.url("/slow"))
    elapsed = time.monotonic() - started
    assert (v.reason, v.detail) == ("fetch.timeout", "download took over 1s")
    assert srv.count("/slow") == 1
    assert 1.0 < elapsed < 2.5


def test_endless_body_is_cut_at_max_bytes(srv):
    started = time.monotonic()
    v = reason_of(fetcher(max_bytes=100_000, retries=2), srv.url("/endless"))
    assert (v.reason, v.detail) == ("fetch.too_large", "over 100000 bytes")
    assert srv.count("/endless") == 1  # not retried
    assert time.monotonic() - started < 2


def test_declared_length_over_max_bytes_is_too_large(srv):
    v = reason_of(fetcher(max_bytes=1000), srv.url("/img/1.jpg"))
    assert (v.reason, v.detail) == ("fetch.too_large", f"Content-Length {len(jpeg(seed=1))}")


# -- into a file (large media) ----------------------------------------------------------------


def test_a_download_can_go_to_a_file_instead_of_memory(srv, tmp_path):
    f = fetcher()
    with open(tmp_path / "a", "w+b") as sink:
        assert f.fetch(srv.url("/redirect-to-img/4"), sink=sink) == b""
        sink.seek(0)
        assert sink.read() == jpeg(seed=4)


def test_a_retried_download_into_a_file_holds_only_the_final_body(srv, tmp_path):
    with open(tmp_path / "a", "w+b") as sink:
        sink.write(b"stale bytes from before" * 1000)
        fetcher().fetch(srv.url("/flaky/x"), sink=sink)
        sink.seek(0)
        assert sink.read() == jpeg(seed=flaky_seed("x"))
    assert srv.count("/flaky/x") == 2


def test_the_cap_of_a_download_into_a_file_is_its_own(srv, tmp_path):
    f = fetcher(max_bytes=1000)  # fetch.max_bytes does not bind a call that names its own cap
    with open(tmp_path / "a", "w+b") as sink:
        f.fetch(srv.url("/img/2.jpg"), sink=sink, max_bytes=10**6)
        assert sink.tell() == len(jpeg(seed=2))
        with pytest.raises(FetchFailed) as info:
            f.fetch(srv.url("/endless"), sink=sink, max_bytes=200_000)
    assert (info.value.verdict.reason, info.value.verdict.detail) == ("fetch.too_large", "over 200000 bytes")


def test_a_local_file_streams_into_a_file(tmp_path):
    path = write(str(tmp_path / "big.bin"), bytes(range(256)) * 1000)
    with open(tmp_path / "copy", "w+b") as sink:
        assert fetcher(max_bytes=10).fetch(path, sink=sink, max_bytes=256_000) == b""
        sink.seek(0)
        assert sink.read() == bytes(range(256)) * 1000
        with pytest.raises(FetchFailed) as info:
            fetcher().fetch(path, sink=sink, max_bytes=255_999)
    assert info.value.verdict.reason == "fetch.too_large"


# -- opt-out and private hosts -------------------------------------------------------------


@pytest.mark.parametrize("path,header", [("/noai", "noai"), ("/noimageai", "otherbot: noimageai")])
def test_x_robots_tag_opt_out(srv, path, header):
    v = reason_of(fetcher(retries=2), srv.url(path))
    assert (v.reason, v.detail) == ("fetch.opt_out", header)
    assert srv.count(path) == 1
    assert fetcher(respect_optout=False).fetch(srv.url(path)) == jpeg(seed=9)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_refused_without_allow_private_hosts_and_never_contacted(srv, host):
    url = srv.url("/img/1.jpg").replace("127.0.0.1", host)
    v = reason_of(fetcher(allow_private_hosts=False, retries=2), url)
    assert v.reason == "fetch.private_host"
    assert srv.total == 0


# -- bad URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/a.jpg", "gopher://127.0.0.1/a.jpg", "file:///tmp/a.jpg", "http:///a.jpg", "http://[::1/a.jpg"],
)
@pytest.mark.parametrize("allow", [True, False])
def test_unsupported_or_unparsable_url_is_bad_url(url, allow):
    assert reason_of(fetcher(allow_private_hosts=allow), url).reason == "fetch.bad_url"


@pytest.mark.parametrize("port", ["99999", "abc"])
@pytest.mark.parametrize("allow", [True, False])
def test_bad_port_is_bad_url_in_both_modes(srv, port, allow):
    assert reason_of(fetcher(allow_private_hosts=allow), f"http://127.0.0.1:{port}/a.jpg").reason == "fetch.bad_url"
    assert srv.total == 0


# -- local files -----------------------------------------------------------------------------


def test_local_file_is_read_back(tmp_path):
    path = write(str(tmp_path / "a.jpg"), jpeg(seed=6))
    assert fetcher().fetch(path) == jpeg(seed=6)


def test_missing_local_file_and_directory_are_not_found(tmp_path):
    assert reason_of(fetcher(), str(tmp_path / "missing.jpg")).reason == "fetch.not_found"
    assert reason_of(fetcher(), str(tmp_path)).reason == "fetch.not_found"


def test_local_file_over_max_bytes_is_too_large(tmp_path):
    path = write(str(tmp_path / "a.jpg"), b"\xff" * 2001)
    assert reason_of(fetcher(max_bytes=2000), path).reason == "fetch.too_large"
    assert fetcher(max_bytes=2001).fetch(path) == b"\xff" * 2001


# -- opted_out() -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values,expected",
    [
        ([], False),
        ([""], False),
        (["noai"], True),
        (["NoAI"], True),
        (["noimageai"], True),
        (["noindex, nofollow"], True),
        (["noarchive; noimageai"], True),
        (["otherbot: noimageai"], True),  # scoped to another agent still counts
        (["googlebot: noindex, nofollow"], True),
        (["nofollow", "noai"], True),  # any of several headers
        (["nofollow"], False),
        (["all"], False),
        (["noaiX", "xnoai"], False),  # whole tokens only
        (["unavailable_after: 25 Jun 2010 15:00:00 PST"], False),
    ],
)
def test_opted_out_header_variants(values, expected):
    assert opted_out(values) is expected
