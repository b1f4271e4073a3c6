"""Presets: the shipped ones work, an artist's round trip works, and every kind of bad
input is refused with a clear message, exit code 2 and nothing overwritten."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner
from e2e import TINY, evoart, ledger, only_run

from evoart import presets
from evoart.cli import main
from evoart.genome import Block, GeneratorGenes, Genome, dcgan_genome, validate
from evoart.nets import build_discriminator, build_generator
from evoart.presets import PresetError
from evoart.seeds import bytes_digest
from evoart.store import RunStore

SHIPPED = ["ar-geodesic", "ar-hilbert", "ar-pyramid", "ar-raster", "cppn-like", "dcgan-classic", "hinge-residual", "lsgan", "pixel-shuffle",
           "vae-pyramid-l1"]
REPO = Path(__file__).resolve().parent.parent
SHIPPED_DIR = REPO / "evoart" / "presets" / "shipped"  # package data


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty EVOART_HOME: the user's presets go to home/presets."""
    h = tmp_path / "home"
    monkeypatch.setenv("EVOART_HOME", str(h))
    return h


def small_genome(latent: int = 16, channels: int = 16) -> Genome:
    return Genome(generator=GeneratorGenes(latent=latent, stem_channels=32, blocks=(
        Block(channels, "nearest"), Block(8, "transposed"))))


def make_run(root: Path, genomes: list[Genome], *, resolution: int = 16, statuses: list[str] | None = None,
             name: str = "run-a") -> Path:
    """A run folder as `evoart evolve` leaves it, written through the store (untrained
    generator weights: what matters here is where they go, not how good they are)."""
    run_dir = root / name
    config = {"evolve": {"resolution": resolution, "seed": 7, "population": len(genomes)},
              "dataset": {"name": "shapes", "fingerprint": "f1f2f3f4f5f6f7f8"}, "device": "cpu"}
    store = RunStore.create(run_dir, name=name, config=config, versions={"evoart": "0.1.0"})
    ids = [f"g000-i{k:02d}" for k in range(len(genomes))]
    store.begin_generation(0, [
        {"id": i, "genome": g.to_dict(), "genome_hash": g.content_hash(), "parents": [], "origin": "random",
         "inheritance": None, "seed": 100 + k} for k, (i, g) in enumerate(zip(ids, genomes))], {"rng": None})
    for k, (i, g) in enumerate(zip(ids, genomes)):
        status = (statuses or ["ok"] * len(genomes))[k]
        torch.manual_seed(k)
        state = build_generator(g, resolution).state_dict() if status == "ok" else None
        store.commit_evaluation(i, status=status, reason="" if status == "ok" else "loss became NaN at step 3",
                                metrics={"swd": 40.0 + k, "diversity": 0.5}, stats={"lineage_steps": 60},
                                timings={}, samples_png=None, generator_state=state, train_state=None)
    store.close()
    return run_dir


@pytest.fixture
def run(tmp_path) -> Path:
    return make_run(tmp_path / "gallery", [small_genome(), small_genome(24, 24), dcgan_genome()],
                    statuses=["ok", "ok", "diverged"])


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes: 'nothing was overwritten'."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- shipped presets -------------------------------------------------------------------

def test_the_shipped_presets_are_listed_with_their_origin(home):
    infos = presets.list_presets()
    assert [i.name for i in infos] == SHIPPED
    assert all(i.origin == "shipped" and i.error is None and i.summary for i in infos)
    assert presets.shipped_dir() == SHIPPED_DIR


def test_dcgan_classic_is_the_reference_dcgan_genome(home):
    p = presets.load_preset("dcgan-classic")
    assert p.genome == dcgan_genome()
    assert "quarter" in p.notes and "Radford" in p.provenance["reference"]  # the scaling is stated


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_preset_validates_builds_and_trains(name, home):
    from evoart.data import load_images
    from evoart.families import of
    from evoart.imaging import to_float_tensor
    from evoart.train import generate

    p = presets.load_preset(name)
    validate(p.genome)
    assert p.notes and p.provenance.get("reference")
    for res in (16, 32):
        z = torch.randn(2, p.genome.generator.latent)
        assert build_generator(p.genome, res)(z).shape == (2, 3, res, res)
        assert build_discriminator(p.genome, res)(torch.zeros(2, 3, res, res)).shape == (2,)
    images = to_float_tensor(load_images("shapes", 16, count=64).images)
    trained = of(p.genome).train(p.genome, images, steps=3, seed=1)  # as its family trains
    assert trained.stats.status == "ok" and trained.stats.steps == 3
    if p.genome.family == "ar":  # an AR model samples from the fixed noise, not from latents
        out = of(p.genome).sample_trained(trained, torch.zeros(4, 1), noise_seed=0)
    else:
        out = generate(trained.generator, torch.randn(4, p.genome.generator.latent))
    assert out.shape == (4, 3, 16, 16) and torch.isfinite(out).all()


def test_the_shipped_presets_show_the_range_of_the_genome(home):
    genomes = [presets.load_preset(n).genome for n in SHIPPED]
    blocks = [b for g in genomes for b in g.generator.blocks]
    assert {b.upsample for b in blocks} >= {"transposed", "nearest", "bilinear", "pixelshuffle", "none"}
    assert {"sin", "relu", "lrelu"} <= {b.activation for b in blocks}
    assert any(b.residual for b in blocks) and any(b.noise for b in blocks)
    losses = {t for g in genomes for t in g.loss.adversarial()}
    assert losses == {"nonsaturating", "hinge", "leastsquares"}


# ---- names and places ------------------------------------------------------------------

@pytest.mark.parametrize("name, says", [
    ("a/b", "path separator"), ("..", "'..'"), ("a..b", "'..'"), ("my preset", "spaces"),
    ("tab\tname", "control"), ("bell\x07", "control"), ("new\nline", "control"), ("", "empty"),
    ("Moth", "lowercase"), ("-lead", "not allowed"), ("x" * 65, "65 characters"), ("back\\slash", "separator"),
    ("é", "not allowed"),
])
def test_bad_names_are_refused_saying_why(name, says):
    with pytest.raises(PresetError, match=None) as exc:
        presets.validate_name(name)
    assert says in str(exc.value)


@pytest.mark.parametrize("name", ["a", "0", "moth-wings_2.v1", "x" * 64])
def test_good_names(name):
    assert presets.validate_name(name) == name


def test_user_dir_follows_evoart_home_then_the_platform(monkeypatch, tmp_path):
    monkeypatch.setenv("EVOART_HOME", str(tmp_path / "h"))
    assert presets.user_dir() == tmp_path / "h" / "presets"
    monkeypatch.delenv("EVOART_HOME")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert presets.user_dir() == tmp_path / "xdg" / "evoart" / "presets"
        monkeypatch.delenv("XDG_DATA_HOME")
        assert presets.user_dir() == Path.home() / ".local" / "share" / "evoart" / "presets"


# ---- the artist's round trip -----------------------------------------------------------

def test_round_trip_save_list_show_render_delete(home, run, tmp_path):
    r = cli("preset", "save", run, "g000-i01", "moth-wings", "--with-weights", "--notes", "soft edges")
    assert r.exit_code == 0, r.output
    saved = home / "presets" / "moth-wings.json"
    doc = json.loads(saved.read_text())
    assert doc["schema_version"] == 1 and doc["name"] == "moth-wings" and doc["notes"] == "soft edges"
    prov = doc["provenance"]
    assert (prov["run"], prov["individual"], prov["generation"], prov["seed"]) == ("run-a", "g000-i01", 0, 101)
    assert prov["dataset_fingerprint"] == "f1f2f3f4f5f6f7f8" and prov["evoart_version"] == "0.1.0"
    assert prov["created"][:2] == "20" and prov["metrics"]["swd"] == 41.0
    assert doc["weights"]["file"] == "moth-wings.generator.pt" and doc["weights"]["resolution"] == 16
    state = torch.load(home / "presets" / "moth-wings.generator.pt", weights_only=True)
    assert set(state) == set(build_generator(small_genome(24, 24), 16).state_dict())

    r = cli("preset", "list")
    assert r.exit_code == 0
    line = next(ln for ln in r.output.splitlines() if "moth-wings" in ln)
    assert "user" in line and "16 px" in line
    assert all(n in r.output for n in SHIPPED)

    r = cli("preset", "show", "moth-wings")
    assert r.exit_code == 0
    for text in ("Generator", "nearest", "transposed", "Discriminator", "Loss weights", "Training",
                 "Provenance", "g000-i01", "soft edges", "trained at 16 px"):
        assert text in r.output, text

    out = tmp_path / "renders"
    r = cli("render", "moth-wings", "--out", out, "--samples", "4")
    assert r.exit_code == 0, r.output
    assert "training on" not in r.output  # it had weights: no training
    assert (out / "moth-wings-s0-grid.png").is_file()

    r = cli("preset", "delete", "moth-wings")
    assert r.exit_code == 0
    assert snapshot(home / "presets") == {}
    assert "moth-wings" not in cli("preset", "list").output


def test_save_without_weights_keeps_the_genome_only(home, run):
    path = presets.save_from_run(run, "g000-i00", "plain")
    p = presets.load_preset("plain")
    assert p.path == path and p.weights is None and p.weights_path is None
    assert p.genome == small_genome()
    assert presets.load_weights(p) is None


def test_a_diverged_individual_keeps_its_genome_but_not_weights(home, run):
    r = cli("preset", "save", run, "g000-i02", "nan-dc", "--with-weights")
    assert r.exit_code == 2 and "diverged" in r.output and "without --with-weights" in r.output
    assert snapshot(home) == {}
    assert cli("preset", "save", run, "g000-i02", "nan-dc").exit_code == 0
    assert presets.load_preset("nan-dc").genome == dcgan_genome()


def test_unknown_individual_and_run(home, run, tmp_path):
    r = cli("preset", "save", run, "g009-i09", "x")
    assert r.exit_code == 2 and "no individual 'g009-i09'" in r.output
    r = cli("preset", "save", tmp_path / "nowhere", "g000-i00", "x")
    assert r.exit_code == 2 and "no run named" in r.output


def test_rename_moves_the_weights_too(home, run):
    presets.save_from_run(run, "g000-i00", "old", with_weights=True)
    r = cli("preset", "rename", "old", "new")
    assert r.exit_code == 0, r.output
    assert sorted(snapshot(home / "presets")) == ["new.generator.pt", "new.json"]
    p = presets.load_preset("new")
    assert p.name == "new" and presets.load_weights(p) is not None


def test_shipped_presets_cannot_be_deleted_renamed_or_shadowed(home, run):
    for args in (("delete", "lsgan"), ("rename", "lsgan", "mine")):
        r = cli("preset", *args)
        assert r.exit_code == 2 and "shipped" in r.output
    r = cli("preset", "save", run, "g000-i00", "lsgan", "--force")
    assert r.exit_code == 2 and "shipped with evoart" in r.output
    assert (SHIPPED_DIR / "lsgan.json").is_file()


def test_export_and_import_share_one_file_with_the_weights(home, run, tmp_path):
    presets.save_from_run(run, "g000-i01", "mine", with_weights=True, notes="to share")
    bundle = tmp_path / "share" / "mine.zip"
    r = cli("preset", "export", "mine", bundle)
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(bundle) as z:
        assert sorted(z.namelist()) == ["generator.pt", "preset.json"]
    first = bundle.read_bytes()
    assert cli("preset", "export", "mine", bundle, "--force").exit_code == 0
    assert bundle.read_bytes() == first  # the same preset exports to the same bytes

    r = cli("preset", "import", bundle, "--name", "theirs")
    assert r.exit_code == 0, r.output
    a, b = presets.load_preset("mine"), presets.load_preset("theirs")
    assert (a.genome, a.notes, a.provenance) == (b.genome, b.notes, b.provenance)
    assert a.weights.sha256 == b.weights.sha256
    assert all(torch.equal(x, y) for x, y in zip(presets.load_weights(a).values(), presets.load_weights(b).values()))


def test_a_plain_preset_json_imports_with_its_weights_beside_it(home, run, tmp_path):
    presets.save_from_run(run, "g000-i00", "mine", with_weights=True)
    elsewhere = tmp_path / "friend"
    shutil.copytree(home / "presets", elsewhere)
    (home / "presets" / "mine.json").unlink()
    (home / "presets" / "mine.generator.pt").unlink()
    r = cli("preset", "import", elsewhere / "mine.json")
    assert r.exit_code == 0, r.output
    assert presets.load_weights(presets.load_preset("mine")) is not None


def test_a_broken_user_preset_is_listed_with_its_error_not_hiding_the_rest(home):
    (home / "presets").mkdir(parents=True)
    (home / "presets" / "broken.json").write_text("{ not json")
    r = cli("preset", "list")
    assert r.exit_code == 0
    assert "broken" in r.output and "unusable" in r.output and "dcgan-classic" in r.output


def test_load_preset_by_path(home, tmp_path):
    path = tmp_path / "x.json"
    shutil.copy(SHIPPED_DIR / "lsgan.json", path)
    p = presets.load_preset(str(path))
    assert p.origin == "file" and p.name == "lsgan"


# ---- bad input: a clear message, exit code 2, nothing overwritten ----------------------

@pytest.fixture
def kept(home, run) -> dict:
    """A user preset 'keep' with weights, and a snapshot of the user's folder."""
    presets.save_from_run(run, "g000-i01", "keep", with_weights=True, notes="precious")
    return snapshot(home)


def keep_doc(home: Path) -> dict:
    return json.loads((home / "presets" / "keep.json").read_text())


def write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def refused(r, *phrases):
    assert r.exit_code == 2, r.output
    assert "Error:" in r.output
    for p in phrases:
        assert p in r.output, (p, r.output)


def test_malformed_json(home, kept, tmp_path):
    f = write_json(tmp_path / "keep.json", '{"schema_version": 1, "name": "keep",')
    refused(cli("preset", "import", f, "--force"), "not valid JSON", "line 1")
    assert snapshot(home) == kept


def test_unknown_schema_version(home, kept, tmp_path):
    doc = keep_doc(home) | {"schema_version": 99, "weights": None}
    refused(cli("preset", "import", write_json(tmp_path / "p.json", doc), "--force"),
            "schema_version 99 is not supported")
    doc = keep_doc(home) | {"weights": None}
    doc["genome"]["schema_version"] = 7
    refused(cli("preset", "import", write_json(tmp_path / "p.json", doc), "--force"),
            "genome.schema_version: 7 is not supported")
    assert snapshot(home) == kept


@pytest.mark.parametrize("path, value, says", [
    (("generator", "latent"), 9999, "genome.generator.latent: 9999 is outside [8, 256]"),
    (("training", "lr_g"), 5.0, "genome.training.lr_g"),
    (("generator", "blocks", 0, "upsample"), "teleport", "is not one of"),
    (("generator", "blocks", 0, "channels"), 12, "not a multiple of 8"),
])
def test_genes_out_of_range(home, kept, tmp_path, path, value, says):
    doc = keep_doc(home) | {"weights": None}
    node = doc["genome"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    refused(cli("preset", "import", write_json(tmp_path / "p.json", doc), "--force"), says)
    assert snapshot(home) == kept


@pytest.mark.parametrize("where, says", [
    ("top", "unknown field 'colour'"),
    ("genome", "genome.generator.wings: unknown field"),
    ("provenance", "provenance.mood: unknown field"),
    ("weights", "weights.format: unknown field"),
])
def test_unknown_fields(home, kept, tmp_path, where, says):
    doc = keep_doc(home)
    shutil.copy(home / "presets" / "keep.generator.pt", tmp_path / "keep.generator.pt")
    if where == "top":
        doc["colour"] = "blue"
    elif where == "genome":
        doc["genome"]["generator"]["wings"] = 2
    elif where == "provenance":
        doc["provenance"]["mood"] = "sunny"
    else:
        doc["weights"]["format"] = "pickle"
    refused(cli("preset", "import", write_json(tmp_path / "keep.json", doc), "--force"), says)
    assert snapshot(home) == kept


@pytest.mark.parametrize("bad", ["a/b", "..", "../../etc/passwd", "my preset", "ctl\x01x", "tab\tx"])
def test_bad_names_everywhere(home, kept, run, tmp_path, bad):
    refused(cli("preset", "save", run, "g000-i00", bad), "preset name")
    refused(cli("preset", "rename", "keep", bad), "preset name")
    refused(cli("preset", "import", SHIPPED_DIR / "lsgan.json", "--name", bad), "preset name")
    doc = json.loads((SHIPPED_DIR / "lsgan.json").read_text()) | {"name": bad}
    refused(cli("preset", "import", write_json(tmp_path / "p.json", doc)), "preset name")
    refused(cli("render", bad, "--out", tmp_path / "r"), "")
    assert snapshot(home) == kept
    assert not (tmp_path / "r").exists()


def test_a_name_that_already_exists(home, kept, run, tmp_path):
    refused(cli("preset", "save", run, "g000-i00", "keep"), "already exists", "--force")
    presets.save_from_run(run, "g000-i00", "other")
    before = snapshot(home)
    refused(cli("preset", "rename", "other", "keep"), "already exists")
    refused(cli("preset", "import", SHIPPED_DIR / "lsgan.json", "--name", "keep"), "already exists")
    bundle = tmp_path / "b.zip"
    presets.export_preset("keep", bundle)
    refused(cli("preset", "import", bundle), "already exists")
    refused(cli("preset", "export", "other", bundle), "exists", "--force")
    assert snapshot(home) == before
    # with --force a valid import does replace, and the old weights go with it
    assert cli("preset", "import", SHIPPED_DIR / "lsgan.json", "--name", "keep", "--force").exit_code == 0
    assert sorted(snapshot(home / "presets")) == ["keep.json", "other.json"]


def test_a_weights_file_that_is_missing(home, kept, tmp_path):
    doc = keep_doc(home)
    refused(cli("preset", "import", write_json(tmp_path / "keep.json", doc), "--force"),
            "weights file keep.generator.pt is missing")
    (home / "presets" / "keep.generator.pt").rename(tmp_path / "aside.pt")
    refused(cli("render", "keep", "--out", tmp_path / "r"), "weights file keep.generator.pt is missing")
    refused(cli("preset", "show", "keep"), "is missing")
    (tmp_path / "aside.pt").rename(home / "presets" / "keep.generator.pt")
    assert snapshot(home) == kept


def test_a_weights_file_of_the_wrong_shape(home, kept, tmp_path):
    # weights of another genome, with a matching size and checksum: only the shapes say no
    other = presets.state_bytes(build_generator(small_genome(16, 32), 16).state_dict())
    (tmp_path / "keep.generator.pt").write_bytes(other)
    doc = keep_doc(home)
    doc["weights"].update(bytes=len(other), sha256=bytes_digest(other))
    refused(cli("preset", "import", write_json(tmp_path / "keep.json", doc), "--force"),
            "does not fit the genome at 16 px", "shape")
    # a weights file that is not a state dict at all
    (tmp_path / "keep.generator.pt").write_bytes(b"\x80\x04K\x01." + b"0" * (len(other) - 5))
    doc["weights"].update(sha256=bytes_digest((tmp_path / "keep.generator.pt").read_bytes()))
    refused(cli("preset", "import", write_json(tmp_path / "keep.json", doc), "--force"), "not a readable weights file")
    assert snapshot(home) == kept
    # the user's own weights replaced on disk by bytes of the same size: the checksum says so
    (home / "presets" / "keep.generator.pt").write_bytes(b"\0" * len(kept["presets/keep.generator.pt"]))
    refused(cli("render", "keep", "--out", tmp_path / "r"), "does not match the checksum")


def test_a_preset_file_of_several_megabytes(home, kept, tmp_path):
    doc = json.loads((SHIPPED_DIR / "lsgan.json").read_text()) | {"name": "keep"}
    doc["notes"] = "x" * 5_000_000
    f = write_json(tmp_path / "huge.json", doc)
    refused(cli("preset", "import", f, "--force"), "5.0 MB", "at most 256 KB")
    refused(cli("preset", "show", f), "5.0 MB")
    with zipfile.ZipFile(tmp_path / "huge.zip", "w", zipfile.ZIP_DEFLATED) as z:  # 5 MB that zips to KB
        z.writestr("preset.json", json.dumps(doc))
    refused(cli("preset", "import", tmp_path / "huge.zip", "--force"), "5.0 MB")
    assert snapshot(home) == kept


def test_an_exported_file_that_was_truncated(home, kept, tmp_path):
    bundle = tmp_path / "keep.zip"
    presets.export_preset("keep", bundle)
    data = bundle.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        (tmp_path / "cut.zip").write_bytes(data[:cut])
        refused(cli("preset", "import", tmp_path / "cut.zip", "--force"), "truncated or damaged")
    # a bit flipped inside the weights: the zip's CRC says so
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flip.zip").write_bytes(bytes(flipped))
    r = cli("preset", "import", tmp_path / "flip.zip", "--force")
    refused(r, "")
    assert "damaged" in r.output or "checksum" in r.output
    assert snapshot(home) == kept


def test_a_bundle_is_imported_not_used_in_place(home, kept, tmp_path):
    presets.export_preset("keep", tmp_path / "keep.zip")
    refused(cli("render", tmp_path / "keep.zip", "--out", tmp_path / "r"), "evoart preset import")
    assert not (tmp_path / "r").exists()


def test_a_bundle_with_unexpected_members(home, kept, tmp_path):
    with zipfile.ZipFile(tmp_path / "odd.zip", "w") as z:
        z.writestr("preset.json", (SHIPPED_DIR / "lsgan.json").read_text())
        z.writestr("../../evil.sh", "rm -rf /")
    refused(cli("preset", "import", tmp_path / "odd.zip"), "not an evoart preset bundle")
    assert snapshot(home) == kept


def test_weights_file_names_cannot_point_elsewhere(home, tmp_path):
    doc = json.loads((SHIPPED_DIR / "lsgan.json").read_text())
    doc["weights"] = {"file": "../../secret.pt", "resolution": 32, "sha256": "0" * 64, "bytes": 10}
    refused(cli("preset", "import", write_json(tmp_path / "p.json", doc)), "plain file name")


def test_unknown_preset(home):
    refused(cli("preset", "show", "nope"), "no preset named 'nope'", "dcgan-classic")
    refused(cli("preset", "delete", "nope"), "no preset named 'nope'")


# ---- evolving from presets -------------------------------------------------------------

def test_generation_zero_starts_from_the_presets_and_their_mutants():
    from evoart import ga
    from evoart.config import EvolveConfig

    cfg = EvolveConfig(population=5, resolution=16, samples=16)
    tb = ga.make_toolbox(cfg, SimpleNamespace(map=map))
    seeds = [("a", small_genome()), ("b", dcgan_genome())]
    members = ga.initial_members(tb, cfg, random.Random(0), seeds, weighted={"a"})
    assert [m.origin for m in members] == ["preset:a", "preset:b", "mutant:a", "mutant:b", "random"]
    assert members[0].genome == small_genome() and members[1].genome == dcgan_genome()
    assert [ga.seed_parent(m) for m in members] == ["a", "b", "a", "b", None]
    # only the weighted seed and its mutant inherit, and never a discriminator
    assert members[0].inheritance.blocks == [(0, 0), (0, 1)] and members[0].inheritance.discriminator is None
    assert members[2].inheritance is not None and members[2].inheritance.discriminator is None
    assert members[1].inheritance is None and members[3].inheritance is None
    cfg.inherit = False
    members = ga.initial_members(tb, cfg, random.Random(0), seeds, weighted={"a"})
    assert all(m.inheritance is None for m in members)


def test_too_many_presets_for_the_population(home):
    from evoart.config import ConfigError, EvolveConfig
    from evoart.runner import preset_seeds

    cfg = EvolveConfig(population=2, from_presets=["lsgan", "cppn-like", "dcgan-classic"])
    with pytest.raises(ConfigError, match="3 presets"):
        preset_seeds(cfg)


def test_evolve_from_an_unknown_preset_is_refused_before_any_work(home, tmp_path):
    r = cli("evolve", "--from-preset", "nope", "--out", tmp_path / "g")
    refused(r, "no preset named 'nope'")
    assert not (tmp_path / "g").exists()


@pytest.mark.slow
def test_evolve_from_presets_puts_their_genomes_and_weights_in_generation_zero(home, tmp_path):
    src = make_run(tmp_path / "old", [small_genome()], resolution=16)
    presets.save_from_run(src, "g000-i00", "mine", with_weights=True)
    out = tmp_path / "g"
    proc = evoart("evolve", *TINY, "--generations", "1", "--workers", "1", "--out", str(out),
                  "--from-preset", "mine", "--from-preset", "cppn-like", env={"EVOART_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Seeding generation 0 with preset mine" in proc.stdout and "weights: used" in proc.stdout
    run_dir = only_run(out)
    with ledger(run_dir) as c:
        rows = {r["id"]: r for r in c.execute("SELECT * FROM individual WHERE born = 0")}
    assert rows["g000-i00"]["origin"] == "preset:mine"
    assert rows["g000-i01"]["origin"] == "preset:cppn-like"
    assert {rows["g000-i02"]["origin"], rows["g000-i03"]["origin"]} == {"mutant:mine", "mutant:cppn-like"}
    assert json.loads(rows["g000-i00"]["genome"]) == small_genome().to_dict()
    assert json.loads(rows["g000-i01"]["genome"]) == presets.load_preset(SHIPPED_DIR / "cppn-like.json").genome.to_dict()
    # the weighted preset started from its weights: every generator tensor was inherited
    inherited = json.loads(rows["g000-i00"]["stats"])["inherited"]["g"]
    assert inherited[0] == inherited[1] > 0
    assert "g" not in (json.loads(rows["g000-i01"]["stats"]).get("inherited") or {})
    record = json.loads((run_dir / "config.json").read_text())["config"]
    assert record["evolve"]["from_presets"] == ["mine", "cppn-like"]
    assert [p["weights"] for p in record["presets"]] == ["used", "none"]


# ---- installed, not a checkout ---------------------------------------------------------

@pytest.mark.slow
def test_the_shipped_presets_are_found_from_an_installed_wheel(tmp_path):
    """Build the wheel as `pip install .` does, install it into a fresh virtual
    environment (never this one: pip would replace the editable install), and look for
    the shipped presets (and the gallery's templates) from there, with the checkout out
    of sight."""
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                  ".hypothesis", "renders")

    def ignore(folder, names):  # the runs folder gallery/ at the top, not the evoart.gallery package
        return set(skip(folder, names)) | ({"gallery"} if Path(folder) == REPO else set())

    shutil.copytree(REPO, src, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("evoart-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(pip + ["--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # Finding the user's presets needs platformdirs, evoart's one dependency that is
    # imported here; it is pure Python: copy it in rather than ask an index for it.
    import platformdirs

    purelib = subprocess.run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    shutil.copytree(Path(platformdirs.__file__).parent, Path(purelib) / "platformdirs")
    shutil.rmtree(src)  # nothing may come from a checkout
    code = ("import sys, evoart, evoart.presets as p;"
            "assert evoart.__file__.startswith(sys.prefix), evoart.__file__;"
            "from pathlib import Path; g = Path(evoart.__file__).parent / 'gallery';"
            "assert (g / 'templates' / 'run.html').is_file() and (g / 'static' / 'gallery.css').is_file(), g;"
            "print(p.shipped_dir()); print(','.join(i.name for i in p.list_presets() if i.error is None))")
    proc = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"EVOART_HOME": str(tmp_path / "home"), "PATH": os.environ["PATH"]}, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    where, names = proc.stdout.split()
    # package data inside the installed package, read with importlib.resources
    assert Path(where).is_relative_to(venv) and Path(where).parts[-3:] == ("evoart", "presets", "shipped")
    assert names.split(",") == SHIPPED


def test_resuming_a_preset_seeded_run_needs_the_same_presets(home, run, tmp_path):
    from evoart.config import ConfigError, EvolveConfig
    from evoart.runner import _resume_seeds, preset_seeds

    presets.save_from_run(run, "g000-i00", "mine", with_weights=True)
    cfg = EvolveConfig(population=4, resolution=16, from_presets=["mine", "lsgan"])
    seeds, states, record = preset_seeds(cfg)
    assert [n for n, _ in seeds] == ["mine", "lsgan"] and set(states) == {"mine"}
    assert [p["weights"] for p in record] == ["used", "none"]
    assert preset_seeds(EvolveConfig(population=4, resolution=32, from_presets=["mine"]))[2][0]["weights"] \
        == "not used (trained at 16 px, the run is 32 px)"

    unfinished = SimpleNamespace(last_finished_generation=lambda: None, run_dir=tmp_path / "run-z")
    again, again_states = _resume_seeds(cfg, unfinished, {"presets": record})
    assert again == seeds and torch.equal(again_states["mine"]["g"]["stem.weight"], states["mine"]["g"]["stem.weight"])
    finished = SimpleNamespace(last_finished_generation=lambda: 0, run_dir=tmp_path / "run-z")
    assert _resume_seeds(cfg, finished, {"presets": record}) == ((), None)  # generation 0 is done: not needed

    presets.save_from_run(run, "g000-i01", "mine", with_weights=True, force=True)  # a different genome now
    with pytest.raises(ConfigError, match="preset mine changed"):
        _resume_seeds(cfg, unfinished, {"presets": record})
    presets.delete_preset("mine")
    with pytest.raises(ConfigError, match="Restore the preset"):
        _resume_seeds(cfg, unfinished, {"presets": record})
