"""The run ledger: one folder per run, a SQLite database and the files beside it.

This is the only module that writes a run. The database (stdlib ``sqlite3``, WAL, a busy
timeout) holds the resolved configuration and every individual: genome, parents,
generation born, status, seed, timings, metrics per generation, judge matrices,
generation membership and the GA's checkpoint. Files hold pictures and tensors:

    <run>/run.db, config.json, run.lock
    <run>/gen-003/contact.png
    <run>/gen-003/g003-i07/samples.png, genome.json, generator.pt, discriminator.pt,
                          train_state.pt

Files are written atomically (temporary file + rename) before the database row that
refers to them is committed, so a killed run never points at a half-written file.
Tensors are saved as state_dicts and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sqlite3
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import filelock

if TYPE_CHECKING:
    import numpy as np

from ..files import atomic_torch_save, atomic_write_bytes, atomic_write_text
from .folders import (
    DB_NAME,
    LOCK_NAME,
    DamagedFile,
    DamagedLedger,
    RunLocked,
    StoreError,
    damaged_ledger_message,
    generation_dir,
    individual_dir,
)

#: The run folders whose writer's lock this process holds (a reader in the same process,
#: such as the gallery index rebuilt by the evolving driver, must see them as running).
_HELD_HERE: set[Path] = set()

#: SQLite's names for "this file is not a healthy database".
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
#: Each evaluated individual's fixed-latent samples as drawn by its worker (a .npy of
#: uint8 (N, R, R, 3)): what every judging pass of it judges, before and after a resume.
FIXED_SAMPLES = "samples.npy"


def _npy_bytes(array) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.uint8), allow_pickle=False)
    return buffer.getvalue()


def ledger_error(run_dir: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """The user's message for an error SQLite raised on ``run_dir``'s ledger: damaged
    pages, a full disk, or a ledger that cannot be opened."""
    run_dir = Path(run_dir)
    code = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if code.startswith(_DAMAGED) or "malformed" in text or "not a database" in text:
        return DamagedLedger(damaged_ledger_message(run_dir, text))
    if code.startswith("SQLITE_FULL") or "disk is full" in text:
        return StoreError(f"the disk holding {run_dir} is full (SQLite: {text}); free some space "
                          f"(evoart prune {run_dir} removes training states nothing needs), then resume with: "
                          f"evoart evolve --resume {run_dir}")
    return StoreError(f"cannot use the ledger {run_dir / DB_NAME}: {text}")


def _process_exists(pid: int) -> bool:
    if os.name == "nt":  # os.kill there terminates the process: never probe with it
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists (another user's process, or a platform without signals)
        return True
    return True


def _guarded(method):
    """Turn a ``sqlite3.DatabaseError`` raised inside ``method`` into a ``StoreError``
    that names the run (see ``ledger_error``)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise ledger_error(self.run_dir, exc) from None

    return wrapper
from .schema import INTERACTIVE_TABLES, MIGRATIONS, SCHEMA_VERSION, IndividualRow


class RunStore:
    """The ledger of one run. Open with ``create`` or ``open``; ``lock()`` before writing."""

    def __init__(self, run_dir: Path, conn: sqlite3.Connection):
        self.run_dir = Path(run_dir)
        self.conn = conn
        self._lock: filelock.FileLock | None = None

    # ---- opening ---------------------------------------------------------------------
    @staticmethod
    def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
        if readonly:
            # as_uri() percent-encodes the path: a '#', '?' or '%' in a folder name must not
            # end the file name early (SQLite would open, even create, some other file)
            uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
        else:
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.row_factory = sqlite3.Row
        return conn

    @classmethod
    def create(cls, run_dir: Path, *, name: str, config: dict, versions: dict) -> "RunStore":
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        db = run_dir / DB_NAME
        if db.exists():
            raise StoreError(f"{run_dir} already holds a run; use --resume to continue it")
        try:
            conn = cls._connect(db)
        except sqlite3.DatabaseError as exc:
            raise ledger_error(run_dir, exc) from None
        store = cls(run_dir, conn)
        store._migrate()
        store._insert_run(name, config, versions)
        store._write_config_json()
        return store

    def _insert_run(self, name: str, config: dict, versions: dict) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO run (id, name, config, versions, created) VALUES (1, ?, ?, ?, ?)",
                (name, json.dumps(config, sort_keys=True), json.dumps(versions, sort_keys=True), time.time()),
            )

    @classmethod
    def open(cls, run_dir: Path, *, readonly: bool = False) -> "RunStore":
        run_dir = Path(run_dir)
        db = run_dir / DB_NAME
        if not db.is_file():
            raise StoreError(f"{run_dir} is not a run folder (no {DB_NAME})")
        try:
            size = db.stat().st_size
        except OSError as exc:
            raise StoreError(f"cannot read {db}: {exc.strerror or exc}") from None
        if size == 0:
            # SQLite would take an empty file for a new database and write a fresh ledger
            # into it: the run's record would be gone for good
            raise DamagedLedger(
                f"{db} is empty (0 bytes): the ledger of run {run_dir.name} was lost (a full disk, or a copy "
                "that failed). evoart will not write a new ledger over it. Restore run.db from a backup; the "
                f"files under {run_dir / 'gen-*'} (genome.json, generator.pt, samples.png) are untouched.")
        try:
            conn = cls._connect(db, readonly=readonly)
            version = cls._schema_version(conn)
        except sqlite3.DatabaseError as exc:
            raise ledger_error(run_dir, exc) from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{run_dir} was written by a newer evoart (ledger schema {version}, this one reads "
                f"up to {SCHEMA_VERSION}); upgrade evoart to open it"
            )
        store = cls(run_dir, conn)
        if version < SCHEMA_VERSION:
            if readonly:
                conn.close()
                raise StoreError(f"{run_dir} uses an older ledger schema; open it once without read-only to migrate")
            store._migrate()
        return store

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        version = self._schema_version(self.conn)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.conn:
                # sqlite3 runs DDL outside a transaction unless one is begun explicitly: without
                # this, a migration killed (or failing) half way leaves tables behind at the old
                # version, and every later open fails with "table ... already exists".
                self.conn.execute("BEGIN")
                for statement in MIGRATIONS[target - 1].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(target),)
                )

    def close(self) -> None:
        self.unlock()
        self.conn.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the writer's lock ---------------------------------------------------------------
    def lock(self) -> None:
        """Take the run's writer lock or raise RunLocked: two processes must never evolve
        the same run at once. The lock is an OS file lock (filelock: flock on Unix,
        LockFileEx on Windows), so it dies with the process and a killed run can be
        resumed at once. The holder writes its process id into the file for the message."""
        path = self.run_dir / LOCK_NAME
        lock = filelock.FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            try:
                holder = path.read_text(errors="replace").strip()[:64]
            except OSError:
                holder = ""
            who = f" (process {holder})" if holder else ""
            raise RunLocked(f"run {self.run_dir.name} is being written by another evoart{who}; "
                            "wait for it to finish or stop it first") from None
        try:
            with open(path, "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass
        self._lock = lock
        _HELD_HERE.add(self.run_dir.resolve())

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
            _HELD_HERE.discard(self.run_dir.resolve())

    def remove_stale_temporaries(self) -> int:
        """Delete the temporary files (``evoart.files``) that writers killed in mid-write
        left in the run folder: they hold no committed data and may keep a disk full.
        Only those of processes that no longer exist (a gallery server may be writing
        pages at this moment). Returns how many were removed."""
        removed = 0
        for path in list(self.run_dir.glob(".*.tmp")) + list(self.run_dir.glob("gen-*/**/.*.tmp")):
            parts = path.name.rsplit(".", 4)  # ".name", pid, thread, "tmp"
            try:
                pid = int(parts[-3])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and _process_exists(pid):
                continue
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
        return removed

    # ---- run -------------------------------------------------------------------------
    def _run_row(self) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM run WHERE id = 1").fetchone()
        if row is None:  # e.g. a run whose creation was killed between migration and insert
            raise StoreError(f"{self.run_dir} holds no run record: it was never fully created")
        return row

    @property
    def name(self) -> str:
        return self._run_row()["name"]

    @property
    def config(self) -> dict:
        return json.loads(self._run_row()["config"])

    @property
    def versions(self) -> dict:
        return json.loads(self._run_row()["versions"])

    @property
    def created(self) -> float:
        return self._run_row()["created"]

    @property
    def status(self) -> str:
        return self._run_row()["status"]

    def status_now(self) -> str:
        """The run's status as a reader should show it: a run recorded as "running" whose
        writer is gone (killed, a crash, a power cut: nothing set its status on the way
        out) is "interrupted". The writer is the process whose id its lock file holds."""
        status = self.status
        if status == "running" and not self._writer_alive():
            return "interrupted"
        return status

    def _writer_alive(self) -> bool:
        try:
            pid = int((self.run_dir / LOCK_NAME).read_text(errors="replace").strip()[:32] or "0")
        except (OSError, ValueError):
            return False
        if pid <= 0:
            return False
        if pid == os.getpid():
            return self.run_dir.resolve() in _HELD_HERE
        return _process_exists(pid)

    def update_config(self, config: dict) -> None:
        with self.conn:
            self.conn.execute("UPDATE run SET config = ? WHERE id = 1", (json.dumps(config, sort_keys=True),))
        self._write_config_json()

    def set_status(self, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE run SET status = ? WHERE id = 1", (status,))

    def _write_config_json(self) -> None:
        atomic_write_text(
            self.run_dir / "config.json",
            json.dumps({"name": self.name, "config": self.config, "versions": self.versions},
                       indent=2, sort_keys=True) + "\n",
        )

    # ---- generations -----------------------------------------------------------------
    def begin_generation(self, generation: int, children: list[dict], state: dict) -> None:
        """Record a generation's children (status pending) and the GA state they came from,
        in one transaction: a resumed run evaluates exactly these children."""
        now = time.time()
        with self.conn:
            self.conn.execute(
                "INSERT INTO generation (generation, started, begin_state) VALUES (?, ?, ?)",
                (generation, now, json.dumps(state)),
            )
            for c in children:
                self.conn.execute(
                    "INSERT INTO individual (id, born, genome, genome_hash, parents, origin, inheritance, seed)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (c["id"], generation, json.dumps(c["genome"], sort_keys=True), c["genome_hash"],
                     json.dumps(c["parents"]), c["origin"],
                     json.dumps(c["inheritance"]) if c.get("inheritance") else None, c["seed"]),
                )

    def commit_evaluation(
        self,
        ind_id: str,
        *,
        status: str,
        reason: str = "",
        metrics: dict[str, float],
        stats: dict,
        timings: dict,
        samples_png: bytes | None,
        generator_state: dict | None,
        samples: np.ndarray | None = None,
        train_state: dict | None,
        discriminator_state: dict | None = None,
    ) -> None:
        """Files first (atomically), then the row: an individual counts as evaluated only
        once everything it refers to is on disk."""
        folder = individual_dir(self.run_dir, ind_id)
        folder.mkdir(parents=True, exist_ok=True)
        row = self.conn.execute("SELECT genome, born FROM individual WHERE id = ?", (ind_id,)).fetchone()
        if row is None:
            raise StoreError(f"unknown individual {ind_id}")
        atomic_write_text(folder / "genome.json", json.dumps(json.loads(row["genome"]), indent=2, sort_keys=True) + "\n")
        if samples_png is not None:
            atomic_write_bytes(folder / "samples.png", samples_png)
        if samples is not None:  # what the judging pass judges: never drawn twice, the same after a resume
            atomic_write_bytes(folder / FIXED_SAMPLES, _npy_bytes(samples))
        if generator_state is not None:
            atomic_torch_save(folder / "generator.pt", generator_state)
        if train_state is not None:
            atomic_torch_save(folder / "train_state.pt", train_state)
        if discriminator_state is not None:
            atomic_torch_save(folder / "discriminator.pt", discriminator_state)
        with self.conn:
            self.conn.execute(
                "UPDATE individual SET status = ?, reason = ?, stats = ?, timings = ?, evaluated = ? WHERE id = ?",
                (status, reason, json.dumps(stats), json.dumps(timings), time.time(), ind_id),
            )
            for metric, value in metrics.items():
                self.conn.execute(
                    "INSERT OR REPLACE INTO score (individual, generation, metric, value) VALUES (?, ?, ?, ?)",
                    (ind_id, row["born"], metric, float(value)),
                )

    def end_generation(
        self,
        generation: int,
        *,
        members: list[tuple[str, int]],
        scores: dict[str, dict[str, float]],
        judge: list[tuple],
        state: dict,
        contact_sheet_png: bytes | None = None,
    ) -> None:
        """Close a generation: who survived in which rank, this generation's scores of
        every member (realism changes with the population), the judge matrix (cells
        (D, G, value) or (D, G, value, role)) and the GA checkpoint the next generation
        starts from."""
        if contact_sheet_png is not None:
            atomic_write_bytes(generation_dir(self.run_dir, generation) / "contact.png", contact_sheet_png)
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO member (generation, individual, rank) VALUES (?, ?, ?)",
                [(generation, i, r) for i, r in members],
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO score (individual, generation, metric, value) VALUES (?, ?, ?, ?)",
                [(i, generation, m, float(v)) for i, ms in scores.items() for m, v in ms.items()],
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO judge (generation, d_individual, g_individual, value, role)"
                " VALUES (?, ?, ?, ?, ?)",
                [(generation, c[0], c[1], float(c[2]), c[3] if len(c) > 3 else "peer") for c in judge],
            )
            self.conn.execute(
                "UPDATE generation SET finished = ?, end_state = ? WHERE generation = ?",
                (time.time(), json.dumps(state), generation),
            )

    # ---- reading ---------------------------------------------------------------------
    def generations(self) -> list[dict]:
        rows = self.conn.execute("SELECT * FROM generation ORDER BY generation").fetchall()
        return [
            {"generation": r["generation"], "started": r["started"], "finished": r["finished"],
             "begin_state": json.loads(r["begin_state"]),
             "end_state": json.loads(r["end_state"]) if r["end_state"] else None}
            for r in rows
        ]

    def last_finished_generation(self) -> int | None:
        row = self.conn.execute("SELECT MAX(generation) FROM generation WHERE finished IS NOT NULL").fetchone()
        return row[0]

    def individuals(self, *, born: int | None = None, ids: list[str] | None = None) -> list[IndividualRow]:
        if ids is not None:
            out = []
            for i in ids:
                r = self.conn.execute("SELECT * FROM individual WHERE id = ?", (i,)).fetchone()
                if r is None:
                    raise StoreError(f"no individual {i} in run {self.run_dir.name}")
                out.append(IndividualRow.from_sql(r))
            return out
        if born is None:
            rows = self.conn.execute("SELECT * FROM individual ORDER BY id").fetchall()
        else:
            rows = self.conn.execute("SELECT * FROM individual WHERE born = ? ORDER BY id", (born,)).fetchall()
        return [IndividualRow.from_sql(r) for r in rows]

    def individual(self, ind_id: str) -> IndividualRow:
        return self.individuals(ids=[ind_id])[0]

    def members(self, generation: int) -> list[tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT individual, rank FROM member WHERE generation = ? ORDER BY rank", (generation,)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def scores(self, ind_id: str, generation: int | None = None) -> dict[str, float]:
        """Metrics of an individual: those it was given when evaluated, overlaid by the
        ones of ``generation`` (or its latest), since realism is judged anew each time."""
        rows = self.conn.execute(
            "SELECT generation, metric, value FROM score WHERE individual = ? ORDER BY generation", (ind_id,)
        ).fetchall()
        out: dict[str, float] = {}
        for r in rows:
            if generation is None or r["generation"] <= generation:
                out[r["metric"]] = r["value"]
        return out

    def judge_matrix(self, generation: int) -> list[tuple[str, str, float]]:
        rows = self.conn.execute(
            "SELECT d_individual, g_individual, value FROM judge WHERE generation = ? ORDER BY 1, 2",
            (generation,),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def judge_cells(self, generation: int) -> list[tuple[str, str, float, str]]:
        """The judge matrix with each cell's panel role (peer, memory, fallback, critic)."""
        rows = self.conn.execute(
            "SELECT d_individual, g_individual, value, role FROM judge WHERE generation = ? ORDER BY 1, 2",
            (generation,),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def score_table(self) -> dict[str, dict[int, dict[str, float]]]:
        """Every score row in one read: individual -> generation -> metric -> value (the
        gallery overlays them per generation as ``scores`` does, without a query each)."""
        out: dict[str, dict[int, dict[str, float]]] = {}
        for r in self.conn.execute("SELECT individual, generation, metric, value FROM score"):
            out.setdefault(r[0], {}).setdefault(r[1], {})[r[2]] = r[3]
        return out

    # ---- favourites ------------------------------------------------------------------
    def favourites(self) -> dict[str, float]:
        """Starred individuals and when they were starred (seconds since the epoch)."""
        rows = self.conn.execute("SELECT individual, created FROM favourite ORDER BY created, individual")
        return {r[0]: r[1] for r in rows}

    def set_favourite(self, ind_id: str, favourite: bool = True) -> bool:
        """Star (or unstar) an individual; returns whether it is a favourite now. Safe
        while the run is being evolved: one short transaction, WAL and a busy timeout;
        it does not take the writer's lock, which belongs to ``evoart evolve``."""
        with self.conn:
            if self.conn.execute("SELECT 1 FROM individual WHERE id = ?", (ind_id,)).fetchone() is None:
                raise StoreError(f"no individual {ind_id} in run {self.run_dir.name}")
            if favourite:
                self.conn.execute("INSERT OR IGNORE INTO favourite (individual, created) VALUES (?, ?)",
                                  (ind_id, time.time()))
            else:
                self.conn.execute("DELETE FROM favourite WHERE individual = ?", (ind_id,))
        return favourite

    # ---- interactive evolution -------------------------------------------------------
    EVENTS_NAME = "events.jsonl"

    def ensure_interactive(self) -> None:
        """Make the pause and branch tables (an interactive run's writer, once)."""
        with self.conn:
            for statement in INTERACTIVE_TABLES.split(";"):
                if statement.strip():
                    self.conn.execute(statement)

    def is_interactive(self) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pause'").fetchone() is not None

    def open_pause(self, generation: int) -> None:
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO pause (generation, opened) VALUES (?, ?)",
                              (generation, time.time()))

    def pauses(self) -> dict[int, dict]:
        """Every pause: generation -> opened, decision (None while open), source, applied."""
        if not self.is_interactive():
            return {}
        rows = self.conn.execute("SELECT * FROM pause ORDER BY generation").fetchall()
        return {r["generation"]: {"opened": r["opened"], "source": r["source"], "decided": r["decided"],
                                  "applied": bool(r["applied"]),
                                  "decision": json.loads(r["decision"]) if r["decision"] else None}
                for r in rows}

    def submit_decision(self, generation: int, decision: dict, source: str) -> bool:
        """Decide an open pause; the first decision stands. Returns whether this one did.
        Safe from the gallery server while the run waits (one short transaction)."""
        if not self.is_interactive():
            raise StoreError(f"run {self.run_dir.name} is not an interactive run")
        with self.conn:
            cur = self.conn.execute(
                "UPDATE pause SET decision = ?, source = ?, decided = ? WHERE generation = ? AND decision IS NULL",
                (json.dumps(decision), source, time.time(), generation))
        return cur.rowcount == 1

    def apply_decision(self, generation: int, members: list[str], preference: dict[str, float]) -> None:
        """The artist's picks take effect: ``members`` (picks first) become the
        generation's survivors, and every individual of its pool gets its ``preference``
        score (1 picked, 0 not; or the learned model's prediction) for that generation."""
        with self.conn:
            self.conn.execute("DELETE FROM member WHERE generation = ?", (generation,))
            self.conn.executemany("INSERT INTO member (generation, individual, rank) VALUES (?, ?, ?)",
                                  [(generation, i, r) for r, i in enumerate(members, 1)])
            self.conn.executemany(
                "INSERT OR REPLACE INTO score (individual, generation, metric, value) VALUES (?, ?, 'preference', ?)",
                [(i, generation, float(v)) for i, v in preference.items()])
            self.conn.execute("UPDATE pause SET applied = 1 WHERE generation = ?", (generation,))

    def write_generation_file(self, generation: int, name: str, data: bytes) -> Path:
        """A file beside a generation's contact sheet (the numbered sheet of a pause)."""
        path = generation_dir(self.run_dir, generation) / name
        atomic_write_bytes(path, data)
        return path

    def pool(self, generation: int) -> list[str]:
        """Every individual judged in ``generation``: its survivors and those culled."""
        rows = self.conn.execute("SELECT DISTINCT individual FROM score WHERE generation = ? ORDER BY 1",
                                 (generation,)).fetchall()
        return [r[0] for r in rows]

    def undo_generation(self, generation: int) -> dict:
        """Take back ``generation`` (the last finished one): its rows move, whole, into a
        branch record and its folder to ``gen-NNN-undone-K``; the generation before it
        is open for picks again, with the survivors the GA chose. Nothing is deleted."""
        if generation < 1 or generation != self.last_finished_generation() or \
                len(self.generations()) != generation + 1:
            raise StoreError(f"generation {generation} is not the last finished generation of "
                             f"run {self.run_dir.name}; only that one can be undone")
        q = self.conn.execute
        k = q("SELECT COUNT(*) FROM branch WHERE generation = ?", (generation,)).fetchone()[0] + 1
        folder = f"{generation_dir(self.run_dir, generation).name}-undone-{k}"
        born = [dict(r) for r in q("SELECT * FROM individual WHERE born = ?", (generation,))]
        ids = [r["id"] for r in born]
        record = {
            "individuals": born,
            "members": [dict(r) for r in q("SELECT * FROM member WHERE generation = ?", (generation,))],
            "scores": [dict(r) for r in q("SELECT * FROM score WHERE generation = ?", (generation,))],
            "judge": [dict(r) for r in q("SELECT * FROM judge WHERE generation = ?", (generation,))],
            "generation_rows": [dict(r) for r in q("SELECT * FROM generation WHERE generation = ?", (generation,))],
            "pause": [dict(r) for r in q("SELECT * FROM pause WHERE generation = ?", (generation,))],
            "favourites": [dict(r) for r in q(f"SELECT * FROM favourite WHERE individual IN ({','.join('?' * len(ids))})",
                                              ids)],
        }
        before = self.generations()[generation - 1]["end_state"] or {}
        with self.conn:
            q("INSERT INTO branch (generation, created, folder, record) VALUES (?, ?, ?, ?)",
              (generation, time.time(), folder, json.dumps(record)))
            for table, column in (("score", "generation"), ("judge", "generation"), ("member", "generation"),
                                  ("generation", "generation"), ("pause", "generation"), ("individual", "born")):
                q(f"DELETE FROM {table} WHERE {column} = ?", (generation,))
            q(f"DELETE FROM favourite WHERE individual IN ({','.join('?' * len(ids))})", ids)
            # the generation before: the GA's own survivors again, no picks, open again
            q("DELETE FROM member WHERE generation = ?", (generation - 1,))
            self.conn.executemany("INSERT INTO member (generation, individual, rank) VALUES (?, ?, ?)",
                                  [(generation - 1, i, r) for r, i in enumerate(before.get("population", []), 1)])
            q("DELETE FROM score WHERE generation = ? AND metric = 'preference'", (generation - 1,))
            q("UPDATE pause SET decision = NULL, source = NULL, decided = NULL, applied = 0 WHERE generation = ?",
              (generation - 1,))
        src = generation_dir(self.run_dir, generation)
        if src.is_dir():
            os.replace(src, self.run_dir / folder)
        return {"generation": generation, "folder": folder, "individuals": ids}

    def branches(self) -> list[dict]:
        """The undone generations, oldest first: generation, folder, and their records."""
        if not self.is_interactive():
            return []
        rows = self.conn.execute("SELECT * FROM branch ORDER BY id").fetchall()
        return [{**json.loads(r["record"]), "generation": r["generation"], "created": r["created"],
                 "folder": r["folder"]} for r in rows]

    def append_event(self, event: dict) -> None:
        """One line of the run's event log (picks, undo, mutation strength, quit)."""
        with open(self.run_dir / self.EVENTS_NAME, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def events(self) -> list[dict]:
        """The run's event log; a last line cut short by a kill is left out."""
        path = self.run_dir / self.EVENTS_NAME
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    # ---- tensors ---------------------------------------------------------------------
    def _load(self, path: Path) -> dict | None:
        """A state_dict saved beside the ledger, or None when there is none. A file that
        cannot be loaded (truncated, replaced, a pickle that would run code) raises
        ``DamagedFile`` naming it."""
        if not path.is_file():
            return None
        return load_state_file(path)

    def load_train_state(self, ind_id: str) -> dict | None:
        return self._load(individual_dir(self.run_dir, ind_id) / "train_state.pt")

    def load_generator_state(self, ind_id: str) -> dict | None:
        return self._load(individual_dir(self.run_dir, ind_id) / "generator.pt")

    def load_discriminator_state(self, ind_id: str) -> dict | None:
        """An individual's trained D, for judging; runs written before Ds were kept apart
        have it only inside the training state (and only when they inherited)."""
        state = self._load(individual_dir(self.run_dir, ind_id) / "discriminator.pt")
        if state is None:
            train = self.load_train_state(ind_id)
            state = train.get("d") if train else None
        return state

    def load_samples(self, ind_id: str) -> np.ndarray | None:
        """The fixed-latent samples an individual's evaluation drew (uint8 (N, R, R, 3)),
        or None when there are none (pruned, or a run written before they were kept).
        A file that cannot be read raises ``DamagedFile`` naming it."""
        path = individual_dir(self.run_dir, ind_id) / FIXED_SAMPLES
        if not path.is_file():
            return None
        try:
            import numpy as np

            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DamagedFile(_damaged_file_message(path, exc)) from None
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
            raise DamagedFile(f"{path} does not hold samples (uint8 (N, R, R, 3)): it holds "
                              f"{array.dtype} {array.shape}. Delete it: evoart draws them again.")
        return array

    def samples_path(self, ind_id: str) -> Path:
        return individual_dir(self.run_dir, ind_id) / "samples.png"

    # ---- pruning ---------------------------------------------------------------------
    def inheritable(self) -> set[str]:
        """Individuals whose training state a child may still need: the members of the
        last finished generation, and every child of an unfinished generation's parents."""
        keep: set[str] = set()
        last = self.last_finished_generation()
        if last is not None:
            keep |= {i for i, _ in self.members(last)}
        for g in self.generations():
            if g["finished"] is None:
                for row in self.individuals(born=g["generation"]):
                    keep |= set(row.parents)
                    keep.add(row.id)
        return keep

    def judges_needed(self) -> set[str]:
        """Individuals whose D the judge panel may still need: everyone a child may
        inherit from (they are the next pool), and the remembered judges (the panel
        checkpointed with the last finished generation)."""
        keep = self.inheritable()
        last = self.last_finished_generation()
        if last is not None:
            end = next((g["end_state"] for g in self.generations() if g["generation"] == last), None) or {}
            keep |= set(end.get("panel", []))
        return keep

    def prune(self) -> tuple[int, int]:
        """Delete training states nothing can inherit any more, discriminators no
        judge panel can call on any more and judged samples no judging pass will read
        again (the next pool is what a child may inherit from); generator weights stay.
        Returns (files removed, bytes freed)."""
        removed = freed = 0
        inheritable = self.inheritable()
        for name, keep in (("train_state.pt", inheritable), ("discriminator.pt", self.judges_needed()),
                           (FIXED_SAMPLES, inheritable)):
            for path in sorted(self.run_dir.glob(f"gen-*/*/{name}")):
                if path.parent.name not in keep:
                    freed += path.stat().st_size
                    path.unlink()
                    removed += 1
        return removed, freed


for _name, _fn in list(vars(RunStore).items()):
    # every method that reads or writes the ledger reports SQLite errors as the user's
    # errors (a damaged run.db must never surface as a traceback)
    if inspect.isfunction(_fn) and _name not in ("__init__", "__enter__", "__exit__", "_connect"):
        setattr(RunStore, _name, _guarded(_fn))
    elif isinstance(_fn, property):
        setattr(RunStore, _name, property(_guarded(_fn.fget), None, None, _fn.__doc__))


def load_state_file(path: Path) -> dict:
    """``torch.load(path, weights_only=True)``; what fails is ``DamagedFile`` with a
    message that names the file and says what happened and what to do."""
    import pickle

    import torch

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on odd pickle protocols: the error below says it
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "weights_only" in text or "Weights only load failed" in text:
            boilerplate = ("Weights only load failed", "Check the documentation", "Please file an issue")
            detail = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(boilerplate)]
            raise DamagedFile(
                f"{path} was refused because loading it could run code: it is a pickle that torch's safe "
                "(weights-only) loader does not accept, and evoart loads nothing else (evoart only writes plain "
                "tensors, so this file was replaced from elsewhere"
                + (f"; torch's weights-only loader says: {' '.join(detail)}" if detail else "")
                + "). Delete it or restore the file evoart wrote; "
                "never load it with weights_only=False unless you trust where it came from.") from None
        raise DamagedFile(_damaged_file_message(path, exc)) from None
    except OSError as exc:
        raise DamagedFile(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, EOFError, ... for a damaged file
        raise DamagedFile(_damaged_file_message(path, exc)) from None


def _damaged_file_message(path: Path, exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    first = first.split(". ")[0].rstrip(".")[:300]  # torch's first sentence says what failed
    return (f"{path} cannot be loaded: it is truncated or damaged ({type(exc).__name__}: {first}). "
            "Restore it from a backup, or delete it: a resumed run then re-trains what needed it, "
            "and the individual's genome.json and samples.png stay usable.")


@contextmanager
def opened(run_dir: Path, readonly: bool = True) -> Iterator[RunStore]:
    store = RunStore.open(run_dir, readonly=readonly)
    try:
        yield store
    finally:
        store.close()
