"""Run folders: where a run and its individuals live, naming new runs, finding runs."""

from __future__ import annotations

from pathlib import Path

from ..errors import EvoartError

DB_NAME = "run.db"
LOCK_NAME = "run.lock"


class StoreError(EvoartError):
    """A run folder that cannot be used; the message is meant for the user."""


class RunLocked(StoreError):
    pass


class DamagedLedger(StoreError):
    """A run.db that SQLite cannot read (damaged pages, not a database, empty); the
    message names the run and says what can still be saved."""


class DamagedFile(StoreError):
    """A file of a run (weights, a training state) that cannot be loaded; the message
    names it and says what to do."""


def damaged_ledger_message(run_dir: Path, why: str) -> str:
    """What to tell the user about a damaged ``run.db``: which run, what can still be
    read (the files beside the ledger), how to copy the good parts of the ledger out."""
    import shlex

    run_dir = Path(run_dir)
    db = run_dir / DB_NAME
    genomes = sum(1 for _ in run_dir.glob("gen-*/*/genome.json"))
    weights = sum(1 for _ in run_dir.glob("gen-*/*/generator.pt"))
    q = shlex.quote
    return (
        f"run {run_dir.name}: its ledger {db} is damaged ({why}); evoart cannot read it (commands that list runs skip it). "
        f"What can still be read: the files beside it, {genomes} individual folder(s) with genome.json "
        f"({weights} with generator.pt) under {run_dir / 'gen-*'}, and config.json. "
        f"To copy out what the ledger still holds, leave run.db as it is and rebuild a copy beside it: "
        f"sqlite3 {q(str(db))} .recover | sqlite3 {q(str(run_dir / 'recovered.db'))} ; "
        f"if that copy opens, move run.db aside (to run.db.damaged) and recovered.db to run.db."
    )


def generation_dir(run_dir: Path, generation: int) -> Path:
    return run_dir / f"gen-{generation:03d}"


def individual_dir(run_dir: Path, ind_id: str) -> Path:
    born = int(ind_id[1:4])
    return generation_dir(run_dir, born) / ind_id


def check_writable(out_root: Path) -> None:
    """Refuse, before any work, an output root evoart could not create or write into
    (creating nothing: a run that is refused later leaves no folder behind)."""
    import errno
    import os

    out_root = Path(os.path.abspath(out_root))
    existing = out_root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise StoreError(f"--out {out_root}: {existing} is a file, not a folder; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        why = os.strerror(errno.EROFS if _read_only_fs(existing) else errno.EACCES)
        if existing == out_root:
            raise StoreError(f"cannot write into the output folder {out_root} (--out): {why}. Choose another "
                             f"--out, or make it writable (chmod u+w {out_root}).")
        raise StoreError(f"cannot create the output folder {out_root} (--out): {why} in {existing}. Choose "
                         "another --out, or create the folder yourself with write permission.")


def _read_only_fs(folder: Path) -> bool:
    try:
        import os

        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def new_run_dir(out_root: Path, name: str) -> Path:
    """A fresh folder ``out_root/name`` (``-2``, ``-3``, ... if taken); never reuses one."""
    out_root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        candidate = out_root / (name if i == 1 else f"{name}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise StoreError(f"could not find a free run folder name for {name} in {out_root}")


def resolve_run(ref: str | Path, out_root: Path | None = None) -> Path:
    """A run given by folder path or by name under ``out_root``."""
    candidates = [Path(ref)]
    if out_root is not None:
        candidates.append(Path(out_root) / str(ref))
    for c in candidates:
        if (c / DB_NAME).is_file():
            return c
    where = f" (looked in {out_root})" if out_root is not None else ""
    raise StoreError(f"no run named {ref}{where}: a run is a folder with a {DB_NAME} in it")


def list_runs(out_root: Path) -> list[Path]:
    if not out_root.is_dir():
        return []
    return sorted(p for p in out_root.iterdir() if (p / DB_NAME).is_file())
