"""``evoart gallery serve``: the gallery's static pages over local HTTP, plus two actions.

The standard library's ``ThreadingHTTPServer`` serves the files under the gallery root
(the folder that holds the runs) and answers a small JSON API:

    GET  /api/runs                                          runs and their best scores
    GET  /api/runs/<run>/favourites                         starred individuals
    POST /api/runs/<run>/individuals/<id>/favourite         {"favourite": true|false}
    POST /api/runs/<run>/individuals/<id>/preset            {"name": ..., "notes": ..., "with_weights": ...}
    GET  /api/runs/<run>/generations/<g>/pause              an interactive run's pause: open, decision
    POST /api/runs/<run>/generations/<g>/pause              {"picks": [ids]} or {"none": true}: "breed these"

A pause is decided through ``store`` (``submit_decision``): the run, polling its ledger,
goes on with the first decision made, here or at its terminal. While it serves, the
server leaves ``SERVER_MARKER`` in the root, so that ``evoart evolve --interactive``
without a terminal knows picks can come from the gallery.

Favourites are written through ``store`` (safe while the run is being evolved), presets
through ``presets``; after a change the run's pages are rebuilt in the background, so
the static copies show the star too.

Safety, for a server that is meant for one person on one machine: it binds 127.0.0.1
unless told otherwise; it serves only what the pages refer to (pages, images, the
stylesheet and script, ``genome.json``), never the ledger, locks, training state,
discriminators or ``config.json`` (which names local folders); generator weights
(``generator.pt``) are offered as a download only while it listens on the loopback
address; it serves only regular files under the root (no ``..``, encoded or not, no
absolute paths, no symlinks that lead out of the root, no hidden files); it answers only
to a Host it knows (DNS rebinding); POSTs must be JSON from the same origin (a cross-site
form or fetch is refused); every bad request gets a 4xx with a one-line message, and an
unexpected error a bare 500, never a traceback.

Load: connections are accepted into a listen backlog of ``LISTEN_BACKLOG`` and served by
a fixed pool of ``THREADS`` threads; a connection that sends nothing (or less body than
its Content-Length says) for ``READ_TIMEOUT`` seconds is closed (408 when a request had
begun), so half-open connections cannot hold the server. The time a connection waited
for a thread counts against its first request's timeout (never under a second), so a
crowd of half-open connections drains quickly and real requests behind it are served;
beyond ``QUEUED`` connections waiting for a thread, new ones are answered 503 at once.
"""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..store import DB_NAME, RunStore, StoreError
from .build import build, build_index, build_run
from .view import INDEX_NAME, GalleryError, list_summaries

MAX_BODY = 64 * 1024
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# What the gallery's pages refer to; anything else under the root (the ledger, locks,
# training state, discriminators, config.json with its local paths, temporary files) is
# not served.
SERVED_TYPES = {
    ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".png": "image/png", ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp", ".svg": "image/svg+xml",
}
SERVED_NAMES = {"genome.json": "application/json"}  # linked from every individual's page
WEIGHTS_NAME = "generator.pt"  # a download, and only from a server on the loopback address
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# Load limits (see the module's docstring); make_server takes others.
READ_TIMEOUT = 10.0   # seconds a connection may send nothing before it is closed
THREADS = 32          # connections served at once
QUEUED = 512          # connections waiting for a thread; more are answered 503
LISTEN_BACKLOG = 128  # the kernel's queue of connections not yet accepted (was 5)
CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
ID_RE = re.compile(r"^g\d{3}-i\d{2,}$")
API_RE = re.compile(r"^/api/runs/([^/]+)/individuals/([^/]+)/(favourite|preset)$")
PAUSE_RE = re.compile(r"^/api/runs/([^/]+)/generations/(\d{1,4})/pause$")
SERVER_MARKER = ".evoart-serve.json"


def running_server(root: Path) -> str | None:
    """The URL of a gallery server serving ``root`` now, or None."""
    try:
        info = json.loads((Path(root) / SERVER_MARKER).read_text())
        pid, url = int(info["pid"]), str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return url


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Rebuilder:
    """Rebuilds runs' pages in one background thread; requests for the same run while
    a build is queued are merged."""

    def __init__(self, log: Callable[[str], None]):
        self.log = log
        self.pending: set[Path] = set()
        self.cond = threading.Condition()
        self.busy = False
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, name="gallery-rebuild", daemon=True)
        self.thread.start()

    def request(self, run_dir: Path) -> None:
        with self.cond:
            self.pending.add(run_dir)
            self.cond.notify_all()

    def wait_idle(self, timeout: float = 30) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: not self.pending and not self.busy, timeout)

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.pending or self.stopped)
                if self.stopped:
                    return
                todo, self.pending = self.pending, set()
                self.busy = True
            for run_dir in todo:
                try:
                    build(run_dir)
                except Exception as exc:  # noqa: BLE001 - a failed rebuild must not stop the server
                    self.log(f"could not rebuild the pages of {run_dir.name}: {exc}")
            with self.cond:
                self.busy = False
                self.cond.notify_all()


class GalleryServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 8000, *,
                 log: Callable[[str], None] | None = None, timeout: float = READ_TIMEOUT,
                 threads: int = THREADS, queued: int = QUEUED):
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise GalleryError(f"{root} is not a folder")
        if not (timeout > 0 and threads >= 1 and queued >= 1):
            raise GalleryError("the server needs a timeout above 0, at least one thread and a queue")
        self.log = log or (lambda msg: None)
        self.read_timeout = float(timeout)
        self._waiting: queue.Queue = queue.Queue(maxsize=queued)
        self._workers: list[threading.Thread] = []
        self._local = threading.local()
        self.rebuilder = Rebuilder(self.log)  # before binding: a failed bind closes the server
        try:
            super().__init__((host, port), GalleryHandler)
        except OSError as exc:  # a busy port, an address this machine does not have
            raise GalleryError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pass another "
                               "--port, or --port 0 to pick a free one (and a --host this machine has)") from None
        self.bound_host = host
        try:  # a hint for `evoart evolve --interactive` (see running_server); not needed to serve
            from ..files import atomic_write_text

            atomic_write_text(self.root / SERVER_MARKER, json.dumps({"pid": os.getpid(), "url": self.url}))
        except OSError:
            pass
        for i in range(threads):
            worker = threading.Thread(target=self._work, name=f"gallery-http-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)

    @property
    def offers_weights(self) -> bool:
        """Generator weights are a download only for a server that no other machine reaches."""
        return self.bound_host in LOOPBACK

    # ---- a fixed pool of threads instead of one thread per connection -------------------
    def process_request(self, request, client_address) -> None:
        try:
            self._waiting.put_nowait((request, client_address, time.monotonic()))
        except queue.Full:
            self._refuse_busy(request)

    def first_timeout(self) -> float:
        """The read timeout of a connection's first request: its time in the queue counts,
        so connections that sent nothing while they waited (half-open ones) are dropped
        quickly and cannot keep others waiting for a thread; never under a second."""
        waited = time.monotonic() - getattr(self._local, "accepted", time.monotonic())
        return max(min(1.0, self.read_timeout), self.read_timeout - waited)

    def _work(self) -> None:
        while True:
            item = self._waiting.get()
            if item is None:
                return
            request, client_address, self._local.accepted = item
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - one connection must not stop a thread of the pool
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def _refuse_busy(self, request) -> None:
        body = b"the gallery server is busy; try again in a moment\n"
        try:
            request.settimeout(1.0)
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                            b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
                            + str(len(body)).encode() + b"\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        host = self.bound_host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def allowed_host(self, hostname: str) -> bool:
        """Which names a request may use for this server: local names, and whatever it
        was bound to; bound to every interface, any name (the user chose to publish it)."""
        if self.bound_host in ("", "0.0.0.0", "::"):
            return True
        return hostname in LOCAL_HOSTS or hostname == self.bound_host.strip("[]")

    def run_dir(self, name: str) -> Path:
        """A run folder directly under the root, by its folder name."""
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
            raise HTTPError(404, f"unknown run {name!r}")
        path = self.root / name
        real = Path(os.path.realpath(path))
        if real.parent != self.root or not (real / DB_NAME).is_file():
            raise HTTPError(404, f"unknown run {name!r}")
        return real

    def handle_error(self, request, client_address) -> None:
        """A browser that drops a kept-alive connection is not an error worth a word;
        anything else is one line (the handlers already answered the client)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        self.log(f"error while serving {client_address[0]}: {type(exc).__name__}: {exc}")

    def server_close(self) -> None:
        try:
            marker = self.root / SERVER_MARKER
            if json.loads(marker.read_text()).get("pid") == os.getpid():
                marker.unlink()
        except (OSError, ValueError, AttributeError):
            pass
        self.rebuilder.stop()
        super().server_close()
        while True:  # connections still waiting for a thread are closed, not left open
            try:
                item = self._waiting.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.shutdown_request(item[0])
        for _ in self._workers:
            self._waiting.put(None)


class GalleryHandler(BaseHTTPRequestHandler):
    server: GalleryServer
    server_version = "evoart-gallery"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # ---- plumbing ----------------------------------------------------------------------
    def setup(self) -> None:
        self.timeout = self.server.first_timeout()  # every read of this connection, the body's too
        super().setup()

    def handle_one_request(self) -> None:
        super().handle_one_request()
        try:
            self.connection.settimeout(self.server.read_timeout)  # a kept-alive connection's next request
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        pass  # quiet: the CLI reports actions and errors, not every image

    def send_error(self, code, message=None, explain=None):
        """Every error, the base class's own included (malformed request lines, headers
        too long), as a short plain-text or JSON answer."""
        try:
            reason = HTTPStatus(code).phrase
        except ValueError:
            reason = ""
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # an unparsable request still gets a status line
        self._send_json_or_text(code, message or reason)

    def _send_json_or_text(self, status: int, message: str, payload: dict | None = None) -> None:
        path = getattr(self, "path", "") or ""
        if path.startswith("/api/") or payload is not None:
            body = json.dumps(payload if payload is not None else {"error": message}).encode()
            ctype = "application/json"
        else:
            body = (message + "\n").encode("utf-8", "replace")
            ctype = "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _guarded(self, fn) -> None:
        try:
            self._check_host()
            fn()
        except HTTPError as exc:
            self._send_json_or_text(exc.status, exc.message)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except Exception:  # noqa: BLE001 - never a traceback to the client
            self.server.log("internal error:\n" + traceback.format_exc())
            try:
                self._send_json_or_text(500, "internal error")
            except OSError:
                pass

    def _check_host(self) -> None:
        host = self.headers.get("Host")
        if not host:
            raise HTTPError(400, "missing Host header")
        try:
            hostname = urlsplit(f"//{host}").hostname or ""
        except ValueError:
            raise HTTPError(400, "malformed Host header") from None
        if not self.server.allowed_host(hostname):
            raise HTTPError(403, f"this server does not answer to {hostname!r}")

    def _url_path(self) -> str:
        if not self.path.startswith("/") or self.path.startswith("//"):
            raise HTTPError(400, "request target must be a path starting with a single /")
        return urlsplit(self.path).path

    # ---- methods -----------------------------------------------------------------------
    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_HEAD(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _refuse_method(self) -> None:
        raise HTTPError(405, f"{self.command} is not supported here (GET, HEAD and POST are)")

    def _not_allowed(self) -> None:
        self._guarded(self._refuse_method)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    # ---- GET ---------------------------------------------------------------------------
    def _get(self) -> None:
        path = self._url_path()
        if path == "/api" or path.startswith("/api/"):
            return self._get_api(path)
        file, redirect = self._resolve(path)
        if redirect:
            self.send_response(301)
            self.send_header("Location", redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ctype = SERVED_NAMES.get(file.name) or SERVED_TYPES.get(file.suffix.lower(), "application/octet-stream")
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if file.name == WEIGHTS_NAME:  # an explicit download, named after its run and individual
            name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{file.parent.parent.parent.name}-{file.parent.name}-generator.pt")
            self.send_header("Content-Disposition", f'attachment; filename="{name}"')
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")  # pages change while a run goes on
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _resolve(self, url_path: str) -> tuple[Path, str | None]:
        """The file a URL path names under the root, or an HTTPError. Traversal in any
        spelling is refused before the file system is asked."""
        try:
            decoded = unquote(url_path, errors="strict")
        except UnicodeDecodeError:
            raise HTTPError(400, "path is not valid UTF-8") from None
        if "\x00" in decoded or "\\" in decoded:
            raise HTTPError(400, "malformed path")
        parts = decoded.split("/")[1:]
        if any(p in (".", "..") for p in parts):
            raise HTTPError(403, "path leaves the gallery")
        if any(p.startswith(".") for p in parts if p):
            raise HTTPError(404, "not found")
        names = [p for p in parts if p]
        target = self.server.root.joinpath(*names)
        real = Path(os.path.realpath(target))
        if real != self.server.root and self.server.root not in real.parents:
            raise HTTPError(403, "path leaves the gallery")
        if real.is_dir():
            if not url_path.endswith("/"):
                return real, url_path + "/"
            real = real / INDEX_NAME
        if not real.is_file():
            raise HTTPError(404, "not found")
        if real.name == WEIGHTS_NAME and not self.server.offers_weights:
            raise HTTPError(404, "generator weights are offered only while the server listens on 127.0.0.1; "
                                 "copy them from the run folder")
        if real.name != WEIGHTS_NAME and real.name not in SERVED_NAMES and real.suffix.lower() not in SERVED_TYPES:
            raise HTTPError(404, "not found")
        return real, None

    def _get_api(self, path: str) -> None:
        parts = path.split("/")[1:]
        if parts == ["api", "runs"]:
            runs = [{"name": s.name, "error": s.error, "dataset": s.dataset, "status": s.status,
                     "generations": s.generations, "best_score": s.best_score, "best_realism": s.best_realism,
                     "best_perceptual": s.best_perceptual, "best_coverage": s.best_coverage,
                     "best_swd": s.best_swd, "favourites": s.favourites}
                    for s in list_summaries(self.server.root)]
            return self._json(200, {"runs": runs})
        m = PAUSE_RE.match(path)
        if m:
            return self._json(200, self._pause_state(self.server.run_dir(unquote(m.group(1))), int(m.group(2))))
        if len(parts) == 4 and parts[:2] == ["api", "runs"] and parts[3] == "favourites":
            run_dir = self.server.run_dir(unquote(parts[2]))
            with RunStore.open(run_dir, readonly=True) as store:
                favs = list(store.favourites())
            return self._json(200, {"run": run_dir.name, "favourites": favs})
        raise HTTPError(404, "no such API")

    def _json(self, status: int, payload: dict) -> None:
        self._send_json_or_text(status, "", payload)

    # ---- POST --------------------------------------------------------------------------
    def _check_origin(self) -> None:
        """Same-origin JSON only. A browser sends Origin with every POST; a page from
        another site (or from a file, Origin "null") is refused before anything is read."""
        fetch_site = self.headers.get("Sec-Fetch-Site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            raise HTTPError(403, "cross-origin requests are refused")
        origin = self.headers.get("Origin")
        if origin is None:
            return  # not a browser (curl, scripts): the Host check above still applies
        try:
            o = urlsplit(origin)
            o_port = o.port or (443 if o.scheme == "https" else 80)
        except ValueError:
            raise HTTPError(403, "cross-origin requests are refused") from None
        h = urlsplit("//" + self.headers.get("Host", ""))
        try:
            h_port = h.port or 80
        except ValueError:
            raise HTTPError(400, "malformed Host header") from None
        if o.scheme != "http" or (o.hostname or "") != (h.hostname or "") or o_port != h_port:
            raise HTTPError(403, "cross-origin requests are refused")

    def _read_json(self) -> dict:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HTTPError(415, "send the request body as application/json")
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(411, "send a Content-Length, not a chunked body")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HTTPError(411, "Content-Length required")
        if not length.isdigit():
            raise HTTPError(400, "malformed Content-Length")
        n = int(length)
        if n > MAX_BODY:
            raise HTTPError(413, f"request body over {MAX_BODY} bytes")
        try:
            raw = self.rfile.read(n)
        except socket.timeout:
            raise HTTPError(408, f"request body did not arrive: {n} bytes announced, fewer sent "
                                 "before the server's timeout") from None
        if len(raw) != n:
            raise HTTPError(400, "request body shorter than its Content-Length")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise HTTPError(400, "request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPError(400, "request body must be a JSON object")
        return data

    @staticmethod
    def _pause_state(run_dir: Path, generation: int) -> dict:
        with RunStore.open(run_dir, readonly=True) as store:
            pause = store.pauses().get(generation)
            pool = store.pool(generation) if pause is not None else []
        if pause is None:
            return {"run": run_dir.name, "generation": generation, "open": False, "decision": None}
        return {"run": run_dir.name, "generation": generation, "open": pause["decision"] is None,
                "decision": pause["decision"], "source": pause["source"], "pool": pool}

    def _decide(self, run_dir: Path, generation: int, data: dict) -> None:
        if set(data) - {"picks", "none"} or not data:
            raise HTTPError(400, 'expected {"picks": ["g001-i02", ...]} or {"none": true}')
        state = self._pause_state(run_dir, generation)
        if state["decision"] is None and not state["open"]:
            raise HTTPError(409, f"run {run_dir.name} is not waiting for picks at generation {generation}")
        if data.get("none") is True:
            decision = {"kind": "none", "picks": []}
        else:
            picks = data.get("picks")
            if not (isinstance(picks, list) and picks and all(isinstance(p, str) for p in picks)):
                raise HTTPError(400, "picks must be a non-empty list of individual ids (or send {\"none\": true})")
            unknown = [p for p in picks if p not in state["pool"]]
            if unknown:
                raise HTTPError(400, f"{unknown[0]} is not an individual of generation {generation}")
            decision = {"kind": "pick", "picks": list(dict.fromkeys(picks))}
        try:
            with RunStore.open(run_dir) as store:
                won = store.submit_decision(generation, decision, "browser")
        except StoreError as exc:
            raise HTTPError(409, str(exc)) from None
        after = self._pause_state(run_dir, generation)
        self.server.log(f"generation {generation} of {run_dir.name}: {after['decision']} "
                        f"({'from this page' if won else 'decided before, at ' + str(after['source'])})")
        self._json(200, {**after, "accepted": won})  # not accepted: the other side was first

    def _post(self) -> None:
        self._check_origin()
        path = self._url_path()
        pm = PAUSE_RE.match(path)
        if pm:
            return self._decide(self.server.run_dir(unquote(pm.group(1))), int(pm.group(2)), self._read_json())
        m = API_RE.match(path)
        if not m:
            raise HTTPError(404, "no such API")
        data = self._read_json()
        run_dir = self.server.run_dir(unquote(m.group(1)))
        ind_id = unquote(m.group(2))
        if not ID_RE.match(ind_id):
            raise HTTPError(404, f"no individual {ind_id!r} in run {run_dir.name}")
        if m.group(3) == "favourite":
            return self._favourite(run_dir, ind_id, data)
        return self._preset(run_dir, ind_id, data)

    @staticmethod
    def _known_individual(run_dir: Path, ind_id: str) -> None:
        try:
            with RunStore.open(run_dir, readonly=True) as store:
                store.individual(ind_id)
        except StoreError as exc:
            raise HTTPError(404, str(exc)) from None

    def _favourite(self, run_dir: Path, ind_id: str, data: dict) -> None:
        want = data.get("favourite")
        if not isinstance(want, bool) or set(data) - {"favourite"}:
            raise HTTPError(400, 'expected {"favourite": true} or {"favourite": false}')
        self._known_individual(run_dir, ind_id)  # read-only: a refused request opens nothing for writing
        try:
            with RunStore.open(run_dir) as store:
                now = store.set_favourite(ind_id, want)
        except StoreError as exc:
            raise HTTPError(409, str(exc)) from None
        self.server.log(f"{'★' if now else '☆'} {ind_id} in {run_dir.name}")
        self.server.rebuilder.request(run_dir)
        self._json(200, {"run": run_dir.name, "individual": ind_id, "favourite": now})

    def _preset(self, run_dir: Path, ind_id: str, data: dict) -> None:
        name, notes, weights = data.get("name"), data.get("notes", ""), data.get("with_weights", False)
        if set(data) - {"name", "notes", "with_weights"}:
            raise HTTPError(400, f"unknown field {min(set(data) - {'name', 'notes', 'with_weights'})!r}")
        if not isinstance(name, str) or not name.strip():
            raise HTTPError(400, "a preset needs a name")
        if not isinstance(notes, str):
            raise HTTPError(400, "notes must be text")
        if not isinstance(weights, bool):
            raise HTTPError(400, "with_weights must be true or false")
        try:
            from ..presets import PresetError, save_from_run, validate_name
        except ImportError:
            raise HTTPError(501, "this evoart has no presets module") from None
        try:
            validate_name(name.strip())
        except (PresetError, ValueError) as exc:
            raise HTTPError(400, str(exc)) from None
        self._known_individual(run_dir, ind_id)
        try:
            path = save_from_run(run_dir, ind_id, name.strip(), with_weights=weights, notes=notes, force=False)
        except PresetError as exc:
            msg = str(exc)
            status = 409 if re.search(r"exist|already|overwrit|shipped", msg, re.IGNORECASE) else 400
            raise HTTPError(status, msg) from None
        self.server.log(f"saved {ind_id} of {run_dir.name} as preset {name.strip()}: {path}")
        self._json(201, {"run": run_dir.name, "individual": ind_id, "name": name.strip(), "path": str(path)})


def make_server(root: Path, host: str = "127.0.0.1", port: int = 8000, *,
                log: Callable[[str], None] | None = None, build: bool = True,
                run_dir: Path | None = None, timeout: float = READ_TIMEOUT, threads: int = THREADS,
                queued: int = QUEUED) -> GalleryServer:
    """A server for the runs under ``root`` (not yet serving: call ``serve_forever``).
    ``build``: refresh the top-level index (and ``run_dir``'s pages) first. ``timeout``:
    seconds a connection may send nothing before it is closed; ``threads``: connections
    served at once; ``queued``: connections that may wait for a thread."""
    root = Path(root)
    if build:
        if run_dir is not None:
            build_run(run_dir)
        build_index(root)
    return GalleryServer(root, host, port, log=log, timeout=timeout, threads=threads, queued=queued)
