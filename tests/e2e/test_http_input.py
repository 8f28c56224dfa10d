"""End to end through the CLI: a CSV of URLs on a real loopback HTTP server."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest

from tests.httpserver import LoopbackServer, flaky_seed
from tests.util import by_key, jpeg, run_cli, samples, stats

FAST = ["fetch.read_timeout=1", "fetch.connect_timeout=1", "fetch.deadline=3", "fetch.retries=1", "fetch.backoff=0.01"]

# (path, expected status, expected reason, image bytes when kept)
ROWS = [
    ("/img/1.jpg", "kept", "", jpeg(seed=1)),
    ("/img/2.jpg", "kept", "", jpeg(seed=2)),
    ("/img/3.jpg", "kept", "", jpeg(seed=3)),
    ("/404", "failed", "fetch.not_found", None),
    ("/500", "failed", "fetch.http_error", None),
    ("/flaky/e2e", "kept", "", jpeg(seed=flaky_seed("e2e"))),
    ("/reset", "failed", "fetch.connection_error", None),
    ("/hang", "failed", "fetch.timeout", None),
    ("/noai", "dropped", "fetch.opt_out", None),
    ("/redirect-to-img/4", "kept", "", jpeg(seed=4)),
]


def key(row: int) -> str:
    return f"00000_{row:09d}"


@pytest.fixture
def srv():
    with LoopbackServer() as server:
        yield server


def url_list(path, srv: LoopbackServer) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["url", "caption", "license"])
        for i, (route, *_rest) in enumerate(ROWS):
            w.writerow([srv.url(route), f"a loopback photo number {i}", f"CC-BY-{i}"])
    return str(path)


def curate(table: str, out: str, *extra: str) -> None:
    sets = [a for s in FAST for a in ("--set", s)]
    assert run_cli("run", table, "-o", out, "--workers", "1", "--no-progress", *sets, *extra) == 0


@pytest.mark.timeout(120)
def test_url_list_with_every_failure_mode(tmp_path, srv):
    table, out = url_list(tmp_path / "urls.csv", srv), str(tmp_path / "out")
    curate(table, out, "--allow-private-hosts")

    s = stats(out)
    assert (s["inputs"], s["kept"], s["samples"], s["identity_ok"]) == (10, 5, 5, True)
    assert s["failed"] == {"fetch.connection_error": 1, "fetch.http_error": 1, "fetch.not_found": 1, "fetch.timeout": 1}
    assert s["dropped"] == {"fetch.opt_out": 1}

    rows = by_key(out)
    assert sorted(rows) == [key(i) for i in range(len(ROWS))]
    for i, (route, status, reason, _) in enumerate(ROWS):
        r = rows[key(i)]
        assert (r["status"], r["reason"], r["source"]) == (status, reason, srv.url(route)), route
        assert r["stage"] == ("" if status == "kept" else "prepare")

    # retried exactly `retries` times where that applies, once everywhere else
    expected = {"/404": 1, "/500": 2, "/flaky/e2e": 2, "/reset": 2, "/hang": 2, "/noai": 1}
    assert srv.settled_counts(expected) == expected
    assert srv.count("/redirect-to-img/4") == srv.count("/img/4.jpg") == 1

    got = {json.loads(smp["json"])["key"]: json.loads(smp["json"]) for smp in samples(out)}
    kept = {key(i): (route, i, data) for i, (route, status, _, data) in enumerate(ROWS) if status == "kept"}
    assert sorted(got) == sorted(kept)
    for k, (route, i, data) in kept.items():
        doc = got[k]
        assert doc["license"] == f"CC-BY-{i}"
        assert doc["caption"] == f"a loopback photo number {i}"
        assert doc["source"] == srv.url(route)
        assert doc["sha256"] == hashlib.sha256(data).hexdigest()  # the exact bytes the server sent


@pytest.mark.timeout(120)
def test_loopback_urls_are_refused_without_allow_private_hosts(tmp_path, srv):
    table, out = url_list(tmp_path / "urls.csv", srv), str(tmp_path / "out")
    curate(table, out)

    s = stats(out)
    assert (s["inputs"], s["kept"], s["failed"], s["dropped"]) == (10, 0, {}, {"fetch.private_host": 10})
    assert {k: (r["status"], r["reason"]) for k, r in by_key(out).items()} == {
        key(i): ("dropped", "fetch.private_host") for i in range(len(ROWS))
    }
    assert samples(out) == []
    assert srv.total == 0  # not a single request reached the server
