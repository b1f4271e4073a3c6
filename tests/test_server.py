"""``evoart gallery serve``: the pages over HTTP, favourites and presets written through
their modules, and every hostile or malformed request answered with a 4xx, without a
traceback and without anything written."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gallery_run import ledger_rows, private_copy, shared_run, tree_state

from evoart.gallery import server as gallery_server
from evoart.gallery.server import make_server
from evoart.store import RunStore


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """Presets land under EVOART_HOME/presets (the server runs in this process)."""
    path = tmp_path_factory.mktemp("home")
    old = os.environ.get("EVOART_HOME")
    os.environ["EVOART_HOME"] = str(path)
    yield path
    if old is None:
        os.environ.pop("EVOART_HOME", None)
    else:
        os.environ["EVOART_HOME"] = old


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("srv")
    run = private_copy(shared_run(tmp_path_factory), base / "gallery")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("root:x:0:0:secret\n")
    (run / "leak.txt").symlink_to(outside / "secret.txt")      # a file link out of the root
    (run.parent / "elsewhere").symlink_to(outside)              # a folder link out of the root
    (run / "inside.html").write_text("fine\n")
    (run / "alias.html").symlink_to(run / "inside.html")        # a link that stays inside
    (run / ".hidden").write_text("x")
    return run


@pytest.fixture(scope="module")
def server(run, home):
    srv = make_server(run.parent, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(server, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None,
            host: str | None = None):
    """One raw request (http.client sends the path exactly as given)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{server.port}")
        data = body.encode() if isinstance(body, str) else body
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if data is not None and "Content-Length" not in (headers or {}):
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def post_json(server, path: str, payload, headers: dict | None = None):
    h = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{server.port}"}
    h.update(headers or {})
    return request(server, "POST", path, json.dumps(payload), h)


@pytest.fixture
def unchanged(run, home, server):
    """Asserts that a test wrote nothing: no file under the gallery root or the presets
    folder changed, and the ledger holds the same favourites."""
    server.rebuilder.wait_idle()
    before = (tree_state(run.parent), tree_state(home), ledger_rows(run))
    yield
    server.rebuilder.wait_idle()
    after = (tree_state(run.parent), tree_state(home), ledger_rows(run))
    for a, b in zip(before, after):
        changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        assert not changed, f"written: {changed}"


def assert_no_traceback(body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    assert "Traceback" not in text and 'File "' not in text


# ---- pages -------------------------------------------------------------------------------

def test_serves_the_pages(server, run):
    status, headers, body = request(server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and run.name.encode() in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    status, headers, _ = request(server, "GET", f"/{run.name}")
    assert status == 301 and headers["Location"] == f"/{run.name}/", "relative links need the slash"
    status, _, body = request(server, "GET", f"/{run.name}/")
    assert status == 200 and b"generation 1" in body
    status, headers, body = request(server, "GET", f"/{run.name}/gen-000/g000-i00/samples.png")
    assert status == 200 and headers["Content-Type"] == "image/png" and body[:4] == b"\x89PNG"
    status, headers, body = request(server, "HEAD", f"/{run.name}/index.html")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    status, _, body = request(server, "GET", f"/{run.name}/alias.html")
    assert status == 200 and body == b"fine\n", "a link that stays inside the root is fine"
    status, _, body = request(server, "GET", f"/api/runs/{run.name}/favourites")
    assert status == 200 and json.loads(body) == {"run": run.name, "favourites": []}


@pytest.mark.parametrize("path", [
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/RUN/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/RUN/../../outside/secret.txt",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "http://127.0.0.1/etc/passwd",
    "/RUN/leak.txt",
    "/elsewhere/secret.txt",
    "/RUN/%00index.html",
    "/RUN/..\\..\\outside\\secret.txt",
])
def test_traversal_is_refused(server, run, unchanged, path):
    status, _, body = request(server, "GET", path.replace("RUN", run.name))
    assert 400 <= status < 500, (path, status)
    assert b"root:" not in body and b"secret" not in body
    assert_no_traceback(body)


@pytest.mark.parametrize("path", ["/RUN/run.db", "/RUN/run.lock", "/RUN/.hidden", "/RUN/gen-000/nope.png",
                                  "/api/nothing", "/RUN/config.json/x"])
def test_what_is_not_a_gallery_file_is_not_found(server, run, unchanged, path):
    status, _, body = request(server, "GET", path.replace("RUN", run.name))
    assert status == 404, (path, status)
    assert_no_traceback(body)


def test_unknown_host_names_are_refused(server, unchanged):
    """DNS rebinding: a page of another site that resolves to 127.0.0.1."""
    status, _, _ = request(server, "GET", "/", host="evil.example:80")
    assert status == 403
    status, _, _ = request(server, "GET", "/", host=f"localhost:{server.port}")
    assert status == 200


# ---- favourites --------------------------------------------------------------------------

def test_star_and_unstar_through_the_ledger(server, run):
    path = f"/api/runs/{run.name}/individuals/g000-i01/favourite"
    status, _, body = post_json(server, path, {"favourite": True})
    assert status == 200 and json.loads(body)["favourite"] is True
    with RunStore.open(run, readonly=True) as s:
        assert "g000-i01" in s.favourites()
    assert server.rebuilder.wait_idle()
    assert 'data-star="g000-i01" data-run' in (run / "index.html").read_text()
    assert "★ favourites" in (run / "index.html").read_text(), "the static pages show it too"
    status, _, body = request(server, "GET", f"/api/runs/{run.name}/favourites")
    assert json.loads(body)["favourites"] == ["g000-i01"]
    status, _, body = post_json(server, path, {"favourite": False})
    assert status == 200 and json.loads(body)["favourite"] is False
    with RunStore.open(run, readonly=True) as s:
        assert s.favourites() == {}
    server.rebuilder.wait_idle()


def test_starring_while_the_run_is_being_written(server, run):
    """The evolving process holds the writer's lock and writes in transactions: a star
    waits for the transaction (busy timeout) and lands."""
    writer = RunStore.open(run)
    writer.lock()
    writer.conn.execute("BEGIN IMMEDIATE")
    result = {}

    def star():
        result["r"] = post_json(server, f"/api/runs/{run.name}/individuals/g001-i00/favourite", {"favourite": True})

    t = threading.Thread(target=star)
    t.start()
    time.sleep(0.4)
    assert t.is_alive(), "waiting for the writer's transaction"
    writer.conn.execute("COMMIT")
    t.join(10)
    writer.close()
    assert result["r"][0] == 200
    with RunStore.open(run) as s:
        assert "g001-i00" in s.favourites()
        s.set_favourite("g001-i00", False)
    server.rebuilder.wait_idle()


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:1"},
    {"Origin": "https://127.0.0.1"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
])
def test_cross_origin_posts_are_refused(server, run, unchanged, headers):
    status, _, body = post_json(server, f"/api/runs/{run.name}/individuals/g000-i00/favourite",
                                {"favourite": True}, headers)
    assert status == 403
    assert_no_traceback(body)
    status, _, _ = post_json(server, f"/api/runs/{run.name}/individuals/g000-i00/preset", {"name": "stolen"}, headers)
    assert status == 403


@pytest.mark.parametrize("body, ctype, expected", [
    ("{not json", "application/json", 400),
    ("[1, 2]", "application/json", 400),
    ('{"favourite": "yes"}', "application/json", 400),
    ('{"favourite": true, "and": 1}', "application/json", 400),
    ("\xff\xfe", "application/json", 400),
    ('{"favourite": true}', "text/plain", 415),
    ('{"favourite": true}', "application/x-www-form-urlencoded", 415),
])
def test_malformed_posts_are_refused(server, run, unchanged, body, ctype, expected):
    status, _, answer = request(server, "POST", f"/api/runs/{run.name}/individuals/g000-i00/favourite",
                                body.encode("latin-1"), {"Content-Type": ctype})
    assert status == expected
    assert_no_traceback(answer)
    assert "error" in json.loads(answer)


def test_bodies_without_length_or_too_large_are_refused(server, run, unchanged):
    path = f"/api/runs/{run.name}/individuals/g000-i00/favourite"
    status, _, _ = request(server, "POST", path, None, {"Content-Type": "application/json"})
    assert status == 411
    status, _, _ = request(server, "POST", path, b"{}", {"Content-Type": "application/json", "Content-Length": "1e3"})
    assert status == 400
    status, _, _ = request(server, "POST", path, b"{}", {"Content-Type": "application/json",
                                                         "Content-Length": str(10**9)})
    assert status == 413


@pytest.mark.parametrize("path, expected", [
    ("/api/runs/no-such-run/individuals/g000-i00/favourite", 404),
    ("/api/runs/../individuals/g000-i00/favourite", 404),
    ("/api/runs/%2e%2e/individuals/g000-i00/favourite", 404),
    ("/api/runs/RUN/individuals/g999-i99/favourite", 404),
    ("/api/runs/RUN/individuals/..%2f..%2frun.db/favourite", 404),
    ("/api/runs/RUN/individuals/g000-i00/delete", 404),
    ("/RUN/index.html", 404),
])
def test_unknown_runs_and_individuals(server, run, unchanged, path, expected):
    status, _, body = post_json(server, path.replace("RUN", run.name), {"favourite": True})
    assert status == expected, path
    assert_no_traceback(body)
    status, _, _ = request(server, "GET", "/api/runs/no-such-run/favourites")
    assert status == 404


def test_other_methods_and_garbage_requests(server, run, unchanged):
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        status, _, _ = request(server, method, f"/{run.name}/index.html")
        assert status == 405, method
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01 garbage that is no HTTP\r\n\r\n")
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    assert_no_traceback(answer)
    status, _, _ = request(server, "GET", "/", host="")
    assert status == 400


def test_an_unexpected_error_is_a_bare_500(server, run, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaboom in /secret/path")

    monkeypatch.setattr(gallery_server, "list_summaries", boom)
    status, _, body = request(server, "GET", "/api/runs")
    assert status == 500
    assert json.loads(body) == {"error": "internal error"}
    assert b"kaboom" not in body


# ---- presets -----------------------------------------------------------------------------

def test_save_as_preset_and_refuse_to_overwrite(server, run, home):
    path = f"/api/runs/{run.name}/individuals/g001-i01/preset"
    status, _, body = post_json(server, path, {"name": "glow-worm", "notes": "from the server test"})
    assert status == 201, body
    saved = Path(json.loads(body)["path"])
    assert saved.is_file() and home in saved.parents
    preset = json.loads(saved.read_text())
    assert preset["name"] == "glow-worm" and preset["provenance"]["individual"] == "g001-i01"
    before = tree_state(home)
    status, _, body = post_json(server, path.replace("g001-i01", "g000-i00"), {"name": "glow-worm"})
    assert status == 409 and "already exists" in json.loads(body)["error"]
    assert tree_state(home) == before, "the first preset is untouched"


@pytest.mark.parametrize("payload, expected", [
    ({"name": "../escape"}, 400),
    ({"name": "with space"}, 400),
    ({"name": ""}, 400),
    ({"name": 7}, 400),
    ({"name": "ok-name", "with_weights": "yes"}, 400),
    ({"name": "ok-name", "force": True}, 400),
    ({"nom": "x"}, 400),
])
def test_bad_preset_requests(server, run, unchanged, payload, expected):
    status, _, body = post_json(server, f"/api/runs/{run.name}/individuals/g000-i00/preset", payload)
    assert status == expected, payload
    assert_no_traceback(body)


def test_preset_of_an_unknown_individual(server, run, unchanged):
    status, _, _ = post_json(server, f"/api/runs/{run.name}/individuals/g009-i09/preset", {"name": "ghost"})
    assert status == 404


# ---- the command -------------------------------------------------------------------------

def test_serve_command_binds_localhost_and_stops_on_ctrl_c(run, tmp_path):
    exe = Path(sys.executable).with_name("evoart")
    proc = subprocess.Popen([str(exe), "gallery", "serve", run.name, "--out", str(run.parent), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "EVOART_HOME": str(tmp_path)})
    try:
        line = proc.stdout.readline()
        assert line.startswith("Serving "), line + proc.stderr.read()
        url = line.split(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith(f"/{run.name}/")
        host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", f"/{run.name}/")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
