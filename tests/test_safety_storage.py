"""Storage under faults: a full disk, a damaged ledger, damaged tensor files, a run killed
in mid-generation, missing permissions. Each case checks the exit code, that no traceback
is shown, the message, and a byte-for-byte snapshot of what the user had.

Root ignores permission bits, so the permission cases make the operating system's answer
in-process (``os.scandir``, ``os.access``, ``os.mkdir`` and ``open`` raising or saying
what they would for an ordinary user)."""

from __future__ import annotations

import builtins
import errno
import io
import os
import pickle
import shutil
import signal
import subprocess
import warnings
from pathlib import Path

import pytest

from e2e import evoart, ledger
from e2e import snapshot as ledger_snapshot
from test_safety import TINY, invoke
from test_safety import snapshot as every_file

from evoart.store import RunStore

ARGS = [*TINY, "--seed", "3"]


def snapshot(folder: Path) -> dict[str, str]:
    """``test_safety.snapshot`` less SQLite's companion files of a WAL ledger (run.db-wal,
    run.db-shm), which SQLite itself creates when any reader opens the ledger."""
    return {k: v for k, v in every_file(folder).items() if not k.endswith(("run.db-wal", "run.db-shm"))}


def only_run(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if (p / "run.db").is_file()]
    return run


def status(run: Path) -> str:
    with ledger(run) as c:
        return c.execute("SELECT status FROM run").fetchone()[0]


def plain(result) -> str:
    """The output with rich's line wrapping undone (messages are checked as sentences)."""
    return " ".join(result.output.split())


def clean(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "hit a bug" not in result.output, result.output
    return plain(result)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """One finished tiny run (the uninterrupted reference; copied where a case damages it)."""
    out = tmp_path_factory.mktemp("straight") / "site"
    assert invoke("evolve", *ARGS, "--out", out).exit_code == 0
    return only_run(out)


def copy_of(run: Path, where: Path) -> Path:
    site = where / "site"
    shutil.copytree(run.parent, site)
    return site / run.name


# ---- a full disk ----------------------------------------------------------------------------


@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
def test_a_full_disk_stops_plainly_and_resume_ends_where_an_uninterrupted_run_does(tmp_path, monkeypatch, straight):
    site = tmp_path / "site"
    earlier = copy_of(straight, tmp_path)  # the user's earlier run in the same --out
    before = snapshot(earlier)
    monkeypatch.setenv("EVOART_FAULT", "enospc:g000-i01/train_state.pt")  # full in mid-generation
    result = invoke("evolve", *ARGS, "--out", site)
    text = clean(result, 2)
    run = next(p for p in site.iterdir() if (p / "run.db").is_file() and p != earlier)
    assert f"the disk holding {run} is full" in text and "train_state.pt could not be written" in text
    assert "Nothing half-written was left behind" in text and f"evoart evolve --resume {run}" in text
    assert not list(site.rglob("*.tmp"))
    assert status(run) == "interrupted"
    assert snapshot(earlier) == before
    listed = clean(invoke("gallery", "list", "--out", site), 0)
    assert "interrupted" in listed and "running" not in listed

    # what a writer killed in mid-write leaves (no process can have a pid above pid_max)
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1 if Path("/proc/sys/kernel/pid_max").exists() else 2**31 - 1
    stale = run / "gen-000" / "g000-i00" / f".generator.pt.{dead}.1.tmp"
    stale.write_bytes(b"half")
    monkeypatch.delenv("EVOART_FAULT")  # space freed
    clean(invoke("evolve", "--resume", run), 0)
    assert not stale.exists()
    assert ledger_snapshot(run) == ledger_snapshot(straight)
    assert status(run) == "finished" and snapshot(earlier) == before


def test_the_fault_counts_bytes_with_enospc_after(tmp_path, monkeypatch):
    from evoart import faults
    from evoart.files import atomic_write_bytes

    monkeypatch.setattr(faults, "_written", 0)
    monkeypatch.setenv("EVOART_FAULT", "enospc-after:10")
    atomic_write_bytes(tmp_path / "a", b"12345678")
    with pytest.raises(OSError) as exc:
        atomic_write_bytes(tmp_path / "b", b"12345678")
    assert exc.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # the temporary file went too


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30)


@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
def test_a_real_3_mb_disk_fills_up_and_the_run_resumes_once_there_is_room(small_disk, straight):
    site = small_disk / "site"
    text = clean(invoke("evolve", *ARGS, "--out", site), 2)
    run = only_run(site)
    assert f"the disk holding {run} is full: {run}/gen-000/g000-i" in text  # the file that did not fit
    assert f"evoart evolve --resume {run}" in text
    assert not list(small_disk.rglob("*.tmp"))  # nothing keeps the disk full
    assert RunStore.open(run, readonly=True).status_now() == "interrupted"
    grown = subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], capture_output=True, text=True)
    assert grown.returncode == 0, grown.stderr
    clean(invoke("evolve", "--resume", run), 0)
    assert ledger_snapshot(run) == ledger_snapshot(straight)


# ---- a damaged ledger ---------------------------------------------------------------------


def damage(db: Path) -> None:
    assert db.stat().st_size > 12288 + 8192  # big enough for the damage to land inside
    with open(db, "r+b") as f:
        f.seek(12288)
        f.write(os.urandom(8192))


def test_a_damaged_ledger_is_named_with_a_recovery_hint_and_the_others_go_on(tmp_path, straight):
    bad = copy_of(straight, tmp_path)
    site = bad.parent
    damage(bad / "run.db")
    before = snapshot(bad)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clean(invoke("evolve", *ARGS, "--out", site), 0)  # a new run beside it
    assert not [w for w in caught if "could not be rebuilt" in str(w.message)], [str(w.message) for w in caught]
    new = next(p for p in site.iterdir() if (p / "run.db").is_file() and p != bad)

    def hinted(text: str) -> None:
        assert f"run {bad.name}: its ledger {bad / 'run.db'} is damaged" in text
        assert ".recover" in text and "genome.json" in text and "generator.pt" in text

    listed = clean(invoke("gallery", "list", "--out", site), 0)
    hinted(listed)
    assert new.name in listed and "finished" in listed
    built = clean(invoke("gallery", "build", "--out", site), 0)
    hinted(built)
    assert f"{new.name}:" in built
    for args in (["gallery", "show", bad.name, "--out", site], ["gallery", "build", bad.name, "--out", site],
                 ["gallery", "serve", bad.name, "--out", site, "--port", "0"], ["score", "--run", bad],
                 ["evolve", "--resume", bad]):
        hinted(clean(invoke(*args), 2))
    from evoart.gallery.server import make_server

    make_server(site, "127.0.0.1", 0).server_close()  # serving the folder skips it
    assert snapshot(bad) == before


def test_an_empty_ledger_is_refused_and_never_rewritten(tmp_path, straight):
    run = copy_of(straight, tmp_path)
    (run / "run.db").write_bytes(b"")
    before = snapshot(run.parent)
    for args in (["evolve", "--resume", run], ["gallery", "favourite", run.name, "g000-i00", "--out", run.parent],
                 ["gallery", "show", run.name, "--out", run.parent]):
        text = clean(invoke(*args), 2)
        assert f"{run / 'run.db'} is empty (0 bytes)" in text and "will not write a new ledger over it" in text
    assert (run / "run.db").stat().st_size == 0
    listed = clean(invoke("gallery", "list", "--out", run.parent), 0)
    assert run.name in listed and "is empty (0 bytes)" in listed
    assert snapshot(run.parent) == before


# ---- damaged tensor files -----------------------------------------------------------------


class _Runs:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
def test_damaged_or_replaced_weights_are_named_and_a_resume_goes_on(tmp_path, monkeypatch, straight):
    monkeypatch.setenv("EVOART_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    run = copy_of(straight, tmp_path)
    i00, i01 = run / "gen-000" / "g000-i00", run / "gen-000" / "g000-i01"
    for f in (i00 / "train_state.pt", i00 / "generator.pt", i01 / "train_state.pt"):
        os.truncate(f, 1000)
    with open(i01 / "generator.pt", "wb") as f:
        pickle.dump(_Runs(), f, protocol=2)
    before = snapshot(run.parent)

    cut = f"{i00 / 'generator.pt'} cannot be loaded: it is truncated or damaged"
    text = clean(invoke("render", f"{run}:g000-i00", "--out", tmp_path / "renders"), 2)
    assert cut in text and "add --retrain" in text
    text = clean(invoke("preset", "save", run, "g000-i00", "mine", "--with-weights"), 2)
    assert cut in text and "leave out --with-weights" in text
    text = clean(invoke("score", "--run", run), 2)
    assert cut in text and "restored or deleted" in text
    text = clean(invoke("render", f"{run}:g000-i01", "--out", tmp_path / "renders"), 2)
    assert f"{i01 / 'generator.pt'} was refused because loading it could run code" in text
    assert "unsupported GLOBAL posix.system" in text  # torch's reason, not cut short
    assert not (tmp_path / "pwned").exists()
    assert snapshot(run.parent) == before and not (tmp_path / "renders").exists()

    said = clean(invoke("evolve", "--resume", run, "--generations", "2"), 0)
    assert f"Warning: {i00 / 'train_state.pt'} cannot be loaded" in said and "train from scratch" in said
    with ledger(run) as c:
        born1 = [r[0] for r in c.execute("SELECT status FROM individual WHERE born = 1")]
        finished = c.execute("SELECT COUNT(*) FROM generation WHERE finished IS NOT NULL").fetchone()[0]
    assert finished == 2 and born1 and "pending" not in born1
    assert status(run) == "finished"
    assert not (tmp_path / "pwned").exists()


# ---- a run killed in mid-generation -------------------------------------------------------


@pytest.mark.slow  # one of make test-fast's slowest (12-25 s here)
def test_a_run_killed_in_mid_generation_shows_interrupted_and_resume_finishes_that_generation(tmp_path):
    out = tmp_path / "site"
    proc = evoart("evolve", *ARGS, "--generations", "2", "--out", str(out),  # the last --generations counts
                  env={"EVOART_FAULT": "kill-after:3"})  # generation 1 half evaluated
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run = only_run(out)
    assert status(run) == "running"  # what the ledger says: nothing could change it on the way out
    listed = clean(invoke("gallery", "list", "--out", out), 0)
    assert "interrupted" in listed and "running" not in listed
    clean(invoke("gallery", "build", "--out", out), 0)
    assert "interrupted" in (out / "index.html").read_text() and "interrupted" in (run / "index.html").read_text()

    text = clean(invoke("evolve", "--resume", run, "--generations", "1"), 0)
    assert "stopped in the middle of generation 1: finishing it first" in text
    with ledger(run) as c:
        pending = c.execute("SELECT COUNT(*) FROM individual WHERE status = 'pending'").fetchone()[0]
        finished = [r[0] for r in c.execute("SELECT generation FROM generation WHERE finished IS NOT NULL")]
    assert pending == 0 and finished == [0, 1] and status(run) == "finished"


# ---- permissions ----------------------------------------------------------------------------


def _inside(path, folder: Path) -> bool:
    try:
        return Path(os.path.abspath(os.fspath(path))).is_relative_to(folder)
    except TypeError:  # a file descriptor
        return False


def deny_listing(monkeypatch, folder: Path) -> None:
    """``folder`` cannot be listed, as for a user without read permission on it."""
    real = os.scandir

    def scandir(path="."):
        if Path(os.path.abspath(os.fspath(path))) == folder:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def deny_writing(monkeypatch, folder: Path) -> None:
    """Nothing can be created or written under ``folder`` (which may not exist yet), as
    for a user without write permission on it or its parent."""
    folder = Path(os.path.abspath(folder))
    real_open, real_os_open, real_mkdir, real_access = builtins.open, os.open, os.mkdir, os.access

    def refuse(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and _inside(file, folder):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _inside(path, folder):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if _inside(path, folder):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def fake_access(path, mode, *args, **kwargs):
        if mode & os.W_OK and _inside(path, folder):
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "access", fake_access)


def image_folder(folder: Path, n: int = 3) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (8, 8), (40 * i, 90, 200)).save(folder / f"img{i}.png")


def test_an_unreadable_data_folder_says_so(tmp_path, monkeypatch):
    pics = tmp_path / "pics"
    image_folder(pics)
    before = snapshot(pics)
    deny_listing(monkeypatch, pics)
    text = clean(invoke("evolve", pics, *ARGS, "--out", tmp_path / "site"), 2)
    assert f"cannot read the image folder {pics}: permission denied" in text and "No images found" not in text
    monkeypatch.undo()
    assert snapshot(pics) == before


def test_an_unreadable_subfolder_is_reported_not_skipped_silently(tmp_path, monkeypatch):
    from evoart.data import load_images

    pics = tmp_path / "pics"
    image_folder(pics)
    image_folder(pics / "locked")
    before = snapshot(pics)
    deny_listing(monkeypatch, pics / "locked")
    images = load_images(pics, 16, cache_dir=tmp_path / "cache")
    assert len(images.images) == 3
    assert (str(pics / "locked"), "folder cannot be read: permission denied") in images.skipped
    only_locked = tmp_path / "only"
    image_folder(only_locked / "locked")
    deny_listing(monkeypatch, only_locked / "locked")
    text = clean(invoke("evolve", only_locked, *ARGS, "--out", tmp_path / "site"), 2)
    assert "1 subfolder(s) could not be read" in text and str(only_locked / "locked") in text
    monkeypatch.undo()
    assert snapshot(pics) == before


def test_an_unwritable_out_is_refused_before_any_work(tmp_path, monkeypatch, straight):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "mine.txt").write_text("my notes")
    before = snapshot(locked)
    deny_writing(monkeypatch, locked)
    text = clean(invoke("evolve", *ARGS, "--out", locked), 2)
    assert f"cannot write into the output folder {locked} (--out)" in text and "Choose another --out" in text
    text = clean(invoke("evolve", *ARGS, "--out", locked / "new"), 2)
    assert f"cannot create the output folder {locked / 'new'}" in text
    text = clean(invoke("gallery", "build", "--out", locked), 2)
    assert "Permission denied" in text and str(locked) in text
    assert snapshot(locked) == before


def test_an_unwritable_evoart_home_says_where_presets_go(tmp_path, monkeypatch, straight):
    home = tmp_path / "home"
    monkeypatch.setenv("EVOART_HOME", str(home))
    deny_writing(monkeypatch, home)
    text = clean(invoke("preset", "save", straight, "g000-i00", "mine"), 2)
    assert f"cannot write {home / 'presets'}" in text and "set EVOART_HOME to a folder you can write" in text
    assert not home.exists()
