"""Nothing the user had is overwritten or lost: each case checks the exit code, that no
traceback is shown, the message, and a byte-for-byte snapshot of the folders involved."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from evoart.cli import main
from evoart.gallery import MARKER

TINY = ["--resolution", "16", "--steps", "2", "--samples", "16", "--population", "2", "--generations", "1",
        "--workers", "1"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and the sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("theirs", [
    {"index.html": "<h1>mine</h1>"},
    {"_static/gallery.css": "body { color: hotpink }", "notes.txt": "my notes"},
    {"_static/gallery.js": "alert('mine')"},
])
def test_evolve_never_overwrites_a_folder_evoart_did_not_write(tmp_path, theirs):
    site = tmp_path / "site"
    for name, text in theirs.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    before = snapshot(site)
    result = invoke("evolve", *TINY, "--out", site)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "evoart did not write" in result.output and "another --out" in result.output
    assert snapshot(site) == before  # nothing added, nothing changed
    built = invoke("gallery", "build", "--out", site)
    assert built.exit_code == 2 and "evoart did not write" in built.output
    assert snapshot(site) == before


@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
def test_a_new_folder_becomes_an_evoart_gallery_and_is_used_again(tmp_path):
    site = tmp_path / "new"
    assert invoke("evolve", *TINY, "--out", site).exit_code == 0
    assert (site / MARKER).is_file() and (site / "index.html").is_file()
    again = invoke("evolve", *TINY, "--out", site)
    assert again.exit_code == 0, again.output
    assert len([p for p in site.iterdir() if (p / "run.db").is_file()]) == 2


def test_a_gallery_written_by_an_earlier_evoart_is_adopted(tmp_path):
    """Roots made before the marker existed carry evoart's own index and static files."""
    site = tmp_path / "old"
    assert invoke("evolve", *TINY, "--out", site).exit_code == 0
    (site / MARKER).unlink()
    assert invoke("gallery", "build", "--out", site).exit_code == 0
    assert (site / MARKER).is_file()


@pytest.fixture(scope="module")
def a_gallery(tmp_path_factory):
    site = tmp_path_factory.mktemp("served") / "site"
    assert invoke("evolve", *TINY, "--out", site).exit_code == 0
    return site


def test_serving_on_a_busy_port_says_which_and_how_to_pick_a_free_one(a_gallery):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = invoke("gallery", "serve", "--out", a_gallery, "--port", port)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "bug" not in result.output
    assert f"127.0.0.1:{port}" in result.output and "--port 0" in result.output


def test_serving_on_an_address_this_machine_lacks_is_refused_plainly(a_gallery):
    result = invoke("gallery", "serve", "--out", a_gallery, "--host", "192.0.2.1", "--port", 0)  # TEST-NET-1
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "cannot listen on 192.0.2.1" in result.output


@pytest.mark.parametrize("name", ["art #2", "what?", "100% mine"])
def test_a_run_in_a_folder_named_with_uri_characters_opens_read_only(tmp_path, name):
    site = tmp_path / name
    assert invoke("evolve", *TINY, "--out", site).exit_code == 0
    (run,) = [p for p in site.iterdir() if (p / "run.db").is_file()]
    around = sorted(p.name for p in tmp_path.iterdir())
    for args in (["gallery", "list", "--out", site], ["gallery", "show", run.name, "--out", site],
                 ["gallery", "favourite", run.name, "g000-i00", "--out", site]):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "older ledger schema" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == around  # no stray file beside the folder
