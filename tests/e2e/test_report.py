"""`mmcurate report`: one self-contained HTML page about a demo run (four shards, staging kept).

The page is checked parsed (its figures, and no address that leads outside it), then rendered
by headless Chromium behind a recording proxy (a screenshot, and the DOM after load)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import threading
import time
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from mmcurate.pipelines.report import CSP, THUMB_SIDE, write_report
from mmcurate.schemas.reasons import stage_of
from tests.util import manifest, stats

pytestmark = pytest.mark.timeout(400)

CHROMIUM = "/usr/bin/chromium"
HISTOGRAMS = {"caption_chars", "caption_words", "original_width", "original_height", "image_bytes"}
SCORED = {"clip_score", "clip_score_scored"}  # only when the demo could score (clip-anytorch installed)
CHARTS = {"reasons", "shards", "clusters"}
# Flags for a headless Chromium that makes no request of its own. Measured on Chromium 150
# behind this proxy: without the last two, rendering a one-line page made it ask for
# clients2.google.com/time, www.google.com/ and /async/folae, and accounts.google.com/ListAccounts.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # network time, the AI-mode eligibility fetch, the preconnect to the search engine
    "--disable-features=NetworkTimeServiceQuerying,AimEnabled,AimServerEligibilityEnabled,AimServerRequestOnStartupEnabled,PreconnectToSearch",
    # the account check has no off switch: point its URL at one that is not on the network
    '--gaia-config-contents={"urls":{"list_accounts_url":{"url":"data:,"}}}',
    # Chromium 156's component updater still asks update.googleapis.com with
    # --disable-component-update: the same trick for its server
    "--component-updater=url-source=data:,",
]


@pytest.fixture(scope="module")
def demo(demo_out) -> str:
    return demo_out  # tests/e2e/conftest.py: 160 inputs in four shards, staging kept


@pytest.fixture(scope="module")
def report(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "report.html"
    return path, write_report(demo, str(path))


def expected_plots(out: str) -> set[str]:
    scored = any(r["clip_score"] is not None for r in manifest(out))
    return HISTOGRAMS | CHARTS | (SCORED if scored else set())


def test_report_has_every_plot_sample_and_drop_example(demo, report):
    path, summary = report
    s, doc = stats(demo), parse(path.read_text(encoding="utf-8"))
    assert len(s["shards"]) == 4  # the staging shard of a dropped row is looked up per shard
    plots = find(section(doc, "plots"), "figure", "plot")
    assert sorted(f.attrs["data-name"] for f in plots) == sorted(expected_plots(demo))
    assert all(len(find(f, "svg")) == 1 for f in plots) and summary["plots"] == len(plots)
    gallery = find(section(doc, "gallery"), "figure", "sample")
    assert len(gallery) == min(48, s["kept"]) == summary["thumbnails"]
    assert all(len(find(f, "img")) == 1 for f in gallery)
    reasons = {**s["dropped"], **s["failed"]}
    assert len(find(section(doc, "drops"), "section", "reason")) == len(reasons)
    for reason, count in reasons.items():
        (part,) = [n for n in find(doc, "section", "reason") if n.attrs["data-reason"] == reason]
        examples = find(part, "figure", "example")
        assert len(examples) == min(4, count), reason
        # a thumbnail exactly for rows that passed prepare (staging kept); text for the others
        has_image = stage_of(reason) != "prepare"
        assert [bool(find(e, "img")) for e in examples] == [has_image] * len(examples), reason
        assert has_image or all("source: " in e.text_content() for e in examples)
    assert summary["examples"] == sum(min(4, c) for c in reasons.values())


def test_report_is_self_contained(report):
    path, _ = report
    text = path.read_text(encoding="utf-8")
    doc = parse(text)
    for node in doc.walk():
        for name, value in node.attrs.items():
            v = (value or "").strip().lower()
            assert not v.startswith(("http:", "https:", "//", "file:", "ftp:")) and "url(" not in v, f"<{node.tag} {name}={v[:80]!r}>"
    assert not [n for n in doc.walk() if n.tag in ("script", "link", "iframe", "object", "embed", "base")]
    assert all(a.attrs["href"].startswith("#") for a in find(doc, "a"))
    assert all("url(" not in n.text_content() and "@import" not in n.text_content() for n in find(doc, "style"))
    assert [m.attrs["content"] for m in find(doc, "meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"] == [CSP]
    images = [img.attrs["src"] for img in find(doc, "img")]
    assert images and all(src.startswith("data:image/jpeg;base64,") for src in images)
    for src in images:
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True))) as img:
            img.load()
            assert img.format == "JPEG" and max(img.size) <= THUMB_SIDE


def test_limits_and_older_outputs(demo, report, tmp_path):
    s = stats(demo)
    reasons = {**s["dropped"], **s["failed"]}
    every = write_report(demo, str(tmp_path / "every.html"), n=1000, per_reason=1)
    assert (every["thumbnails"], every["examples"]) == (s["kept"], len(reasons))
    # an output from before stats.json had distributions, splits and cluster sizes, its
    # staging shards deleted: the same charts (from the manifests and dedup/clusters.parquet),
    # and examples that are text only
    old = tmp_path / "old"
    shutil.copytree(demo, old, ignore=shutil.ignore_patterns("_staging"))
    for key in ("distributions", "splits"):
        s.pop(key, None)
    s["dedup"].pop("cluster_sizes", None)
    (old / "stats.json").write_text(json.dumps(s), encoding="utf-8")
    summary = write_report(str(old), str(tmp_path / "old.html"))
    assert summary == dict(report[1], example_thumbnails=0, bytes=summary["bytes"])
    new_doc, old_doc = (parse(p.read_text(encoding="utf-8")) for p in (report[0], tmp_path / "old.html"))
    assert [str(svg) for svg in find(old_doc, "svg")] == [str(svg) for svg in find(new_doc, "svg")]
    drops = section(old_doc, "drops")
    assert not find(drops, "img") and len(find(drops, "figure", "example")) == summary["examples"]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (apt-get install -y chromium)")
def test_renders_offline_in_chromium(report, tmp_path):
    """What this proves: while Chromium renders the report, with the page's CSP and with it
    removed, no HTTP(S) request reaches the proxy that every request of the browser goes
    through (the bypass list is emptied, loopback included); a control page shows that a
    page's http and https subresources do reach it. It says nothing of what Chromium would do
    after it exits, and nothing of protocols a script-less page cannot use."""
    path, summary = report
    no_csp = tmp_path / "no-csp.html"
    text = path.read_text(encoding="utf-8")
    no_csp.write_text(text.replace(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', ""), encoding="utf-8")
    assert "Content-Security-Policy" not in no_csp.read_text(encoding="utf-8")
    control = tmp_path / "control.html"
    control.write_text('<!doctype html><img src="http://canary.invalid/a.png"><link rel="stylesheet" href="https://canary.invalid/b.css">')
    png = tmp_path / "report.png"
    with RecordingProxy() as proxy:
        chromium(proxy, tmp_path, control, "--dump-dom")
        assert {("GET", "http://canary.invalid/a.png"), ("CONNECT", "canary.invalid:443")} <= set(proxy.settled())
        proxy.requests.clear()
        chromium(proxy, tmp_path, path, f"--screenshot={png}", "--window-size=1200,3000")
        dom = {name: chromium(proxy, tmp_path, page, "--dump-dom") for name, page in (("csp", path), ("no-csp", no_csp))}
        assert proxy.settled() == []
    for page in dom.values():
        doc = parse(page)
        assert len(find(section(doc, "plots"), "svg")) == summary["plots"]
        assert len(find(section(doc, "gallery"), "figure", "sample")) == summary["thumbnails"]
        assert len(find(section(doc, "drops"), "figure", "example")) == summary["examples"]
    with Image.open(png) as img:
        assert img.size == (1200, 3000)
        pixels = np.asarray(img.convert("RGB"))
    assert pixels.std() > 20  # not blank
    # the thumbnails were painted (allowed by the CSP): text and charts alone give ~600 colours
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 5000


# --- helpers ---------------------------------------------------------------------------------


def chromium(proxy: "RecordingProxy", tmp_path, page, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a fresh one per call
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{proxy.port}", "--proxy-bypass-list=<-loopback>", *args, page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class RecordingProxy:
    """A loopback HTTP proxy that answers every request with 502 and records (method, target)."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self):
                requests.append((self.command, self.path))
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_PUT = do_OPTIONS = do_CONNECT = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def settled(self) -> list[tuple[str, str]]:
        """The requests, once connections the browser made just before exiting are handled."""
        time.sleep(0.5)
        return list(self.requests)

    def __enter__(self) -> "RecordingProxy":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict):
        self.tag, self.attrs, self.children = tag, attrs, []

    def walk(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def text_content(self) -> str:
        return "".join(c if isinstance(c, str) else c.text_content() for c in self.children)

    def __str__(self) -> str:
        attrs = "".join(f' {k}="{v}"' for k, v in self.attrs.items())
        return f"<{self.tag}{attrs}>" + "".join(map(str, self.children)) + f"</{self.tag}>"


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = [Node("#document", {})]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.stack[0]


def find(root: Node, tag: str, cls: str | None = None) -> list[Node]:
    return [n for n in root.walk() if n is not root and n.tag == tag and (cls is None or cls in n.attrs.get("class", "").split())]


def section(doc: Node, ident: str) -> Node:
    (node,) = [n for n in find(doc, "section") if n.attrs.get("id") == ident]
    return node


def test_a_video_runs_sizes_are_titled_as_video_frames(demo):
    """A video output's report titled its frame sizes "Original image width"."""
    from mmcurate.pipelines.report import charts

    with open(os.path.join(demo, "stats.json")) as f:
        stats = json.load(f)
    titles = [c[1] for c in charts(stats, stats["distributions"], {})]
    assert "Original image width (pixels)" in titles
    video = [c[1] for c in charts(stats, stats["distributions"], {}, media="video")]
    assert "Original video frame width (pixels)" in video and not any("image" in t for t in video if "Original" in t)
