"""Training precision as a run relies on it: bf16 trains two shipped presets as fp32 does
(loss curves within a stated band, no divergence), ``auto`` picks bf16 only where the
CPU has bf16 units, a run records the precision it resolved and a resume reuses it,
``--precision bf16`` on a CPU without bf16 units is refused with the reason, and a
bad value is a configuration error."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from evoart import train
from evoart.cli import main
from evoart.config import ConfigError, EvolveConfig
from evoart.presets import load_preset
from evoart.runner import resume_run, start_run
from evoart.store import RunStore
from evoart.train import Init, PrecisionError, resolve_precision, train_briefly
from evoart.variation import Inheritance

from genomes import squares

STEPS = 200
# |mean of the last 50 steps' loss, bf16 - fp32|, same seed, D and G. Measured on 16 px
# squares over seeds 0-2 (2026-12-01): at most 0.03 for D and 0.084 for G (hinge-residual's
# G, seed 2), while fp32's own spread across those seeds was 0.15 (dcgan-classic D) and
# 0.30 (hinge-residual D). A band of 0.15 leaves room for another CPU's kernels and still
# catches a broken bf16 path (a loss in bf16 or an unscaled R1 moves these by far more).
LOSS_BAND = 0.15
TAIL = 12  # curve points covering the last 50 of 200 steps (curves keep 50 points)

NO_BF16 = {"fpu", "sse2", "avx2", "avx512f"}
BF16 = NO_BF16 | {"avx512_bf16", "amx_bf16"}


def tail_mean(curve: list[float]) -> float:
    return sum(curve[-TAIL:]) / TAIL


@pytest.fixture
def cpu_has(monkeypatch):
    """Pretend this CPU's flags are the ones given: tests must not depend on the machine."""
    def set_flags(flags: set[str]) -> None:
        monkeypatch.setattr(train, "cpu_flags", lambda: set(flags))
    return set_flags


# ---- bf16 trains -------------------------------------------------------------------------


@pytest.mark.slow  # 200 + 200 training steps of a preset: 15-30 s each on a 2-core machine
@pytest.mark.parametrize("preset", ["dcgan-classic", "hinge-residual"])
def test_bf16_trains_a_preset_like_fp32(preset):
    """Batch norm and transposed convolutions (dcgan-classic), spectral norm and a residual
    discriminator with the hinge loss (hinge-residual)."""
    genome = load_preset(preset).genome
    data = squares(256, 0)
    runs = {p: train_briefly(genome, data, steps=STEPS, seed=0, precision=p) for p in ("fp32", "bf16")}
    for p, t in runs.items():
        assert t.stats.status == "ok", (p, t.stats.reason)
        assert t.stats.steps == STEPS
        assert all(math.isfinite(v) for c in t.stats.curves.values() for v in c), p
    for key in ("d_loss", "g_loss"):
        fp32, bf16 = tail_mean(runs["fp32"].stats.curves[key]), tail_mean(runs["bf16"].stats.curves[key])
        assert abs(bf16 - fp32) <= LOSS_BAND, (key, fp32, bf16)
    # what bf16 leaves behind is fp32 and in the default layout: it saves, renders and
    # is inherited like any state
    t = runs["bf16"]
    for part in ("g", "d"):
        for name, v in t.state[part].items():
            assert v.dtype != torch.bfloat16 and v.is_contiguous(), (part, name)
    assert all(p.dtype == torch.float32 and p.is_contiguous() for p in t.generator.parameters())
    for st in t.state["opt_g"].values():
        assert st["exp_avg"].dtype == torch.float32


def test_a_bf16_parent_passes_its_training_on_to_an_fp32_child_and_back():
    genome = load_preset("hinge-residual").genome
    data = squares(64, 1)
    parent = train_briefly(genome, data, steps=4, seed=0, precision="bf16")
    whole = Inheritance(stem=0, blocks=[(0, i) for i in range(len(genome.generator.blocks))], discriminator=0)
    child = train_briefly(genome, data, steps=4, seed=1, precision="fp32", init=Init([parent.state], whole))
    assert child.stats.status == "ok"
    assert child.stats.inherited["g"][0] == child.stats.inherited["g"][1]  # every tensor
    assert child.stats.lineage_steps == 8
    grandchild = train_briefly(genome, data, steps=4, seed=2, precision="bf16", init=Init([child.state], whole))
    assert grandchild.stats.status == "ok" and grandchild.stats.lineage_steps == 12


def test_train_briefly_needs_a_resolved_precision():
    with pytest.raises(PrecisionError, match="resolved precision"):
        train_briefly(load_preset("dcgan-classic").genome, squares(32, 0), steps=1, precision="auto")


# ---- choosing the precision --------------------------------------------------------------


def test_auto_picks_bf16_only_where_the_cpu_has_bf16_units(cpu_has):
    cpu_has(BF16)
    assert resolve_precision("auto", "cpu") == "bf16"
    cpu_has({"amx_bf16"})
    assert resolve_precision("auto", "cpu") == "bf16"
    cpu_has(NO_BF16)
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_auto_picks_bf16_only_on_cards_with_bf16_units(monkeypatch):
    """Ampere (8.0) and later have bf16 units; a V100 (7.0) or a T4 (7.5) only emulates it,
    which torch.cuda.is_bf16_supported() counts as support. Each card is asked about itself."""
    capability = {0: (9, 0), 1: (7, 0)}  # an H200 beside a V100
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability",
                        lambda device=None: asked.append(device) or capability[device.index or 0])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what emulation says
    assert resolve_precision("auto", "cuda:0") == "bf16"
    assert resolve_precision("auto", "cuda:1") == "fp32"
    with pytest.raises(PrecisionError, match=r"cuda:1 has no bf16 units \(a card before Ampere"):
        resolve_precision("bf16", "cuda:1")
    assert [d.index for d in asked] == [0, 1, 1]


def test_bf16_on_a_cpu_without_bf16_units_is_refused_with_the_reason(cpu_has):
    cpu_has(NO_BF16)
    with pytest.raises(PrecisionError, match="avx512_bf16 nor amx_bf16") as info:
        resolve_precision("bf16", "cpu")
    assert "--precision fp32" in str(info.value)


def test_the_cpu_flags_are_read_from_proc_cpuinfo():
    flags = train.cpu_flags()
    assert isinstance(flags, set)
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        assert flags == set()
    else:
        if "flags" in text:
            assert "fpu" in flags or flags  # an x86 CPU lists its features


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", None, 16])
def test_a_bad_precision_is_a_configuration_error(bad):
    with pytest.raises(ConfigError, match="precision must be auto, fp32 or bf16"):
        EvolveConfig(precision=bad).validate()
    with pytest.raises(ConfigError, match="precision"):
        EvolveConfig.from_dict({"precision": bad})


def test_the_command_line_refuses_bf16_without_bf16_units(cpu_has, tmp_path):
    cpu_has(NO_BF16)
    out = tmp_path / "g"
    result = CliRunner().invoke(main, ["evolve", "--precision", "bf16", "--device", "cpu", "--workers", "1",
                                       "--out", str(out)])
    assert result.exit_code != 0
    assert "avx512_bf16 nor amx_bf16" in result.output and "--precision fp32" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())  # refused before anything was written
    bad = CliRunner().invoke(main, ["evolve", "--precision", "fp16", "--out", str(out)])
    assert bad.exit_code == 2 and "fp16" in bad.output


# ---- recorded and reused -----------------------------------------------------------------


def tiny(generations: int, **kw) -> EvolveConfig:
    return EvolveConfig(data="shapes", population=2, generations=generations, steps=2, resolution=16,
                        samples=16, holdout=32, eval_holdout=0, workers=1, seed=0, device="cpu", **kw)


def recorded(run_dir) -> dict:
    return json.loads((run_dir / "config.json").read_text())["config"]


@pytest.mark.slow
def test_a_run_records_what_auto_resolved_to_and_a_resume_reuses_it(cpu_has, tmp_path):
    cpu_has(BF16)
    run = start_run(tiny(1), tmp_path, name="bf16-run")
    rec = recorded(run.run_dir)
    assert rec["evolve"]["precision"] == "bf16"
    assert rec["precision"] == {"asked": "auto", "used": "bf16"}

    # The same run on another machine with bf16 units would say fp32 still trains in bf16 ...
    cpu_has({"avx512_bf16"})
    resumed = resume_run(run.run_dir, overrides={"generations": 2})
    assert recorded(resumed.run_dir)["evolve"]["precision"] == "bf16"
    with RunStore.open(run.run_dir, readonly=True) as store:
        assert {r.stats["precision"] for r in store.individuals()} == {"bf16"}
        assert {r.born for r in store.individuals()} == {0, 1}
    # ... and one without bf16 units at all refuses to resume it, saying why
    cpu_has(NO_BF16)
    with pytest.raises(ConfigError, match="trains in bf16.*no bf16 units"):
        resume_run(run.run_dir, overrides={"generations": 3})
    # the precision cannot be changed on resume
    cpu_has(BF16)
    with pytest.raises(ConfigError, match="--precision cannot change"):
        resume_run(run.run_dir, overrides={"generations": 3, "precision": "fp32"})

    # A run recorded before runs had a precision trained in fp32, and resumes so even
    # where auto would pick bf16 (a finished run: the resume only re-reads its record).
    with RunStore.open(run.run_dir) as store:
        rec = store.config
        del rec["evolve"]["precision"], rec["precision"]
        store.update_config(rec)
    resumed = resume_run(run.run_dir)
    assert recorded(resumed.run_dir)["evolve"]["precision"] == "fp32"


def test_auto_follows_the_measured_table_and_a_slow_cpu_is_told_its_figure(cpu_has):
    # AVX-512 without its bf16 instructions: measured slower than fp32, so auto says fp32
    cpu_has(NO_BF16)
    assert train.cpu_bf16_level(NO_BF16) == "avx512_core"
    assert train.BF16_MEASURED["avx512_core"] < 1.0
    assert train.resolve_precision("auto", "cpu") == "fp32"
    with pytest.raises(train.PrecisionError, match=r"0\.58x fp32's speed"):
        train.resolve_precision("bf16", "cpu")
    # an AVX2-only CPU: the same, with its own figure
    cpu_has({"fpu", "sse2", "avx2"})
    with pytest.raises(train.PrecisionError, match=r"0\.12x"):
        train.resolve_precision("bf16", "cpu")
    # AMX tiles and AVX-512 BF16 without them: each its own row, both measured faster,
    # so auto says bf16
    cpu_has(BF16)
    assert train.cpu_bf16_level(BF16) == "amx_bf16"
    assert train.BF16_MEASURED["amx_bf16"] > 1.0
    assert train.resolve_precision("auto", "cpu") == "bf16"
    cpu_has(NO_BF16 | {"avx512_bf16"})
    assert train.cpu_bf16_level(NO_BF16 | {"avx512_bf16"}) == "avx512_bf16"
    assert train.BF16_MEASURED["avx512_bf16"] > 1.0
    assert train.resolve_precision("auto", "cpu") == "bf16"
