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


def generation_dir(run_dir: Path, generation: int) -> Path:
    return run_dir / f"gen-{generation:03d}"


def individual_dir(run_dir: Path, ind_id: str) -> Path:
    born = int(ind_id[1:4])
    return generation_dir(run_dir, born) / ind_id


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
