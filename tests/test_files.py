"""Atomic writes: a write that fails or is interrupted leaves the old file and no
temporary file behind."""

from __future__ import annotations

import os

import pytest

from evoart.files import atomic_write_bytes, atomic_write_text


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "genome.json"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["genome.json"]


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "genome.json"
    atomic_write_text(path, "old")

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.json"]


def test_a_full_disk_leaves_no_temporary_file(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(28, "No space left on device")

    def full_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return Full(f) if "w" in mode and str(file).endswith(".tmp") else f

    monkeypatch.setattr(builtins, "open", full_open)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(tmp_path / "samples.png", b"x" * 100)
    assert list(tmp_path.iterdir()) == []
