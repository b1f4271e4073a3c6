"""The autoregressive family: genes, palette, scan orders, the any-order transformer, its
cache, training, sampling from fixed noise, renders, walks and the exported step network."""

from __future__ import annotations

import io
import json
import math
import random

import numpy as np
import pytest
import torch

from evoart.data import load_images
from evoart.ar_genes import FLAT_SCANS, scan_label
from evoart.autoregressive import (ARGenes, ARModel, PaletteError, SCAN_ORDERS, ScanError, crossover_ar_genes,
                                   dequantise, estimate_ar_step_macs, fit_palette, mutate_ar_genes, quantise,
                                   order_picture, random_ar_genes, sample_ar, sample_tokens,
                                   sampling_noise, scan_order, train_ar, validate_ar)
from evoart.ar_genes import MAX_SAMPLE_COST_32, estimate_ar_sample_cost, repair_ar
from evoart.presets import list_presets, load_preset
from evoart.autoregressive.render import (STEP_INPUTS, RenderError, StepNetwork, continues_scan, render_ar,
                                          sample_with_step_network, step_inputs, step_onnx_bytes,
                                          step_program_bytes, walk_ar, walk_noise)
from evoart.autoregressive.training import ARTrainResult
from evoart.genome import MAX_STEP_MACS_32, GenomeError

SMALL = ARGenes(palette=16, scan="raster", width=32, layers=2, heads=2, mlp_ratio=1, context=64, batch_size=2,
                lr=3e-3)


def _model(genes: ARGenes, size: int, seed: int = 0) -> ARModel:
    torch.manual_seed(seed)
    model = ARModel(genes, size)
    # larger weights than the initialisation so that outputs depend visibly on inputs
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


# ---- genes -------------------------------------------------------------------------------

def test_genes_round_trip_through_json_and_name_the_bad_field():
    g = load_preset("ar-hilbert").genome.ar
    assert ARGenes.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    with pytest.raises(GenomeError, match=r"ar\.palette"):
        ARGenes.from_dict({**g.to_dict(), "palette": 300})
    with pytest.raises(GenomeError, match=r"ar\.scan: 'spiral'"):
        ARGenes.from_dict({**g.to_dict(), "scan": "spiral"})
    with pytest.raises(GenomeError, match=r"ar\.heads"):
        validate_ar(g.replace(width=48, heads=8))
    with pytest.raises(GenomeError, match=r"ar\.colour: unknown field"):
        ARGenes.from_dict({"colour": 1})
    with pytest.raises(GenomeError, match="training step costs .* over the cap"):
        validate_ar(g.replace(width=256, layers=6, context=1024, batch_size=16))
    with pytest.raises(GenomeError, match=r"sampling one 32 px image costs .* \(64 samples in 10 s\)"):
        validate_ar(g.replace(width=256, layers=6, heads=8, mlp_ratio=4, context=64, batch_size=1))
    # repair brings the largest designs under both caps
    big = repair_ar(g.replace(width=256, layers=6, heads=8, mlp_ratio=4, context=1024, batch_size=16))
    assert validate_ar(big) and big.width >= 96


def test_random_mutated_and_crossed_genes_are_valid_and_under_the_cap():
    rng = random.Random(3)
    scans, palettes = set(), set()
    a = random_ar_genes(rng)
    for _ in range(200):
        b = random_ar_genes(rng)
        for g in (b, mutate_ar_genes(a, rng), crossover_ar_genes(a, b, rng)):
            validate_ar(g)
            assert estimate_ar_step_macs(g, 32) <= MAX_STEP_MACS_32
            assert estimate_ar_sample_cost(g, 32) <= MAX_SAMPLE_COST_32
            scans.add(g.scan)
            palettes.add(g.palette)
        a = mutate_ar_genes(a, rng)
    assert scans == set(SCAN_ORDERS) and len(palettes) > 5
    # the same seed gives the same genes
    assert random_ar_genes(random.Random(5)) == random_ar_genes(random.Random(5))
    # a mutation changes something
    g = load_preset("ar-raster").genome.ar
    assert all(mutate_ar_genes(g, random.Random(s)) != g for s in range(20))


def test_shipped_preset_genes_validate():
    shipped_ar = {p.name for p in list_presets() if p.origin == "shipped" and load_preset(p.name).genome.family == "ar"}
    assert shipped_ar == {"ar-raster", "ar-hilbert", "ar-pyramid", "ar-geodesic"}
    for name in shipped_ar:
        g = load_preset(name).genome.ar
        assert scan_label(g) == name.split("-")[1]
        assert estimate_ar_step_macs(g, 32) <= MAX_STEP_MACS_32


# ---- palette -------------------------------------------------------------------------------

def test_palette_quantises_an_image_of_k_colours_exactly_and_is_seeded():
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (16, 3)).astype(np.uint8)
    images = colours[rng.integers(0, 16, (4, 8, 8))]
    palette = fit_palette(images, 16, seed=1)
    assert palette.shape == (16, 3) and palette.dtype == np.uint8
    tokens = quantise(images, palette)
    assert tokens.shape == (4, 8, 8)
    assert np.array_equal(dequantise(tokens, palette), images)
    assert np.array_equal(fit_palette(images, 16, seed=1), palette)
    with pytest.raises(PaletteError, match="uint8"):
        fit_palette(images.astype(np.float32), 16)
    with pytest.raises(PaletteError, match="outside the palette"):
        dequantise(np.full((1, 2, 2), 16), palette)


# ---- scan orders -----------------------------------------------------------------------------

@pytest.mark.parametrize("scan", FLAT_SCANS)
@pytest.mark.parametrize("size", [1, 8, 12, 32])
def test_each_order_is_a_permutation_of_the_positions(scan, size):
    order = scan_order(scan, size)
    assert sorted(order.tolist()) == list(range(size * size))


def test_the_genes_name_every_registered_scan_and_the_registry_says_which_continue():
    from evoart.autoregressive import scan_names

    # a registered order the genes refuse is a mistake; the pyramid is not a permutation
    # of the pixels (evoart.autoregressive.pyramid), so it is not in the registry
    assert set(scan_names()) == set(FLAT_SCANS) == set(SCAN_ORDERS) - {"pyramid"}
    assert {s for s in FLAT_SCANS if continues_scan(s)} == {"raster"}


def test_hilbert_steps_are_neighbours_and_raster_is_rows():
    order = scan_order("hilbert", 16)
    y, x = order // 16, order % 16
    assert (np.abs(np.diff(y)) + np.abs(np.diff(x)) == 1).all()
    assert scan_order("raster", 4).tolist() == list(range(16))
    with pytest.raises(ScanError, match="unknown scan order 'zigzag'"):
        scan_order("zigzag", 8)


@pytest.mark.parametrize("scan", FLAT_SCANS)
@pytest.mark.parametrize("size", [8, 16])  # 16 px: 256 steps, a window of 64 (blocks of 32)
def test_output_at_step_t_does_not_depend_on_tokens_at_t_or_later(scan, size):
    """Gradients of the logits at step t with respect to the token vectors of every step:
    zero at t and after, non-zero before (within the window)."""
    model = _model(SMALL.replace(scan=scan), size)
    steps = size * size
    orders = torch.from_numpy(scan_order(scan, size))[None].expand(2, -1)
    tokens = torch.randint(0, 16, (2, steps), generator=torch.Generator().manual_seed(0))
    vecs = model.token(tokens).detach().requires_grad_(True)
    logits = model.forward_vectors(vecs, orders)
    for t in (0, 1, 5, steps // 2, steps - 1):
        (grad,) = torch.autograd.grad(logits[:, t].sum(), vecs, retain_graph=True)
        per_step = grad.abs().sum(dim=(0, 2))
        assert (per_step[t:] == 0).all(), f"step {t} depends on later tokens"
        # item t reads the tokens of steps start - 1 .. t - 1 (each item reads the token before it)
        start = max(0, model.window_start(t) - 1)
        if t > 0:
            assert (per_step[start:t] > 0).all(), f"step {t} ignores its context"
        assert (per_step[:start] == 0).all(), f"step {t} sees beyond its window"


def test_the_kv_cache_samples_exactly_what_full_recomputation_samples():
    model = _model(SMALL.replace(context=64), 16)   # 256 steps: the cache is reset every 32 steps
    noise = sampling_noise(7, 3, 16)
    cached, _ = sample_tokens(model, noise, cached=True)
    full, _ = sample_tokens(model, noise, cached=False)
    assert torch.equal(cached, full)
    assert len(torch.unique(cached)) > 4


def test_same_noise_gives_the_same_samples_and_other_noise_others():
    model = _model(SMALL.replace(scan="hilbert"), 8)
    palette = fit_palette(load_images("shapes", 8, count=8, seed=0).images, 16, seed=0)
    a = sample_ar(model, sampling_noise(1, 4, 8), palette=palette)
    b = sample_ar(model, sampling_noise(1, 4, 8), palette=palette)
    c = sample_ar(model, sampling_noise(2, 4, 8), palette=palette)
    assert a.shape == (4, 8, 8, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # the first images' noise does not depend on how many are drawn
    assert np.array_equal(sampling_noise(1, 2, 8), sampling_noise(1, 4, 8)[:2])


def test_the_scan_order_picture_ramps_from_first_to_last():
    order = scan_order("hilbert", 8)
    pic = order_picture(order, 8)
    assert pic.shape == (8, 8, 3) and pic.dtype == np.uint8
    first, last = order[0], order[-1]
    assert pic.reshape(-1, 3)[first].sum() < pic.reshape(-1, 3)[last].sum()
    assert len(np.unique(pic.reshape(-1, 3), axis=0)) > 20


# ---- training ----------------------------------------------------------------------------------

def test_training_reports_progress_learns_and_children_inherit():
    images = load_images("shapes", 8, count=32, seed=0).images
    seen = []
    parent = train_ar(SMALL, images, steps=30, seed=0, progress=lambda s, n, b: seen.append((s, n)))
    assert seen[-1] == (30, 30) and parent.steps == 30 and len(parent.curve) == 30
    assert parent.bits_per_pixel < math.log2(16) - 1
    child = train_ar(SMALL, images, steps=0, seed=1, init=parent)
    assert child.inherited == [len(parent.state)] * 2
    assert np.array_equal(child.palette, parent.palette)
    assert child.bits_per_pixel == pytest.approx(parent.bits_per_pixel, abs=1e-6)
    wider = train_ar(SMALL.replace(palette=24), images, steps=0, seed=1, init=parent)
    assert 0 < wider.inherited[0] < wider.inherited[1]   # the blocks, not the token tables


def test_a_checkpoint_of_tensors_only_samples_the_same_after_a_weights_only_load(tmp_path):
    stub = _trained_stub("hilbert")
    torch.save(stub.checkpoint(), tmp_path / "ar.pt")
    again = ARTrainResult.from_checkpoint(stub.genes, torch.load(tmp_path / "ar.pt", weights_only=True))
    noise = sampling_noise(2, 3, 8)
    assert np.array_equal(sample_ar(again, noise), sample_ar(stub, noise))
    with pytest.raises(PaletteError, match="palette has 16 colours; the genes say 32"):
        ARTrainResult.from_checkpoint(stub.genes.replace(palette=32), stub.checkpoint())


def test_a_nan_model_is_reported_as_diverged():
    images = load_images("shapes", 8, count=8, seed=0).images
    parent = train_ar(SMALL, images, steps=1, seed=0)
    poisoned = {k: torch.full_like(v, float("nan")) if k == "head.weight" else v for k, v in parent.state.items()}
    result = train_ar(SMALL, images, steps=5, seed=0, init={"state": poisoned, "palette": parent.palette})
    assert result.status == "diverged" and "NaN" in result.reason and result.steps == 0


# ---- render, walks, export ---------------------------------------------------------------------

def _trained_stub(scan: str, size: int = 8) -> ARTrainResult:
    model = _model(SMALL.replace(scan=scan, context=64), size)
    palette = fit_palette(load_images("patterns", size, count=8, seed=0).images, 16, seed=0)
    return ARTrainResult(genes=model.genes, resolution=size, state=model.state_dict(), palette=palette)


def test_raster_continues_its_scan_and_hilbert_says_it_only_upscales():
    raster, hilbert = _trained_stub("raster"), _trained_stub("hilbert")
    assert continues_scan("raster") and not continues_scan("hilbert")
    big, how = render_ar(raster, 24, seed=3)
    assert how == "continued" and big.shape == (1, 24, 24, 3)
    # the continued canvas is new everywhere, not a tiled copy of one window
    assert not np.array_equal(big[0, :8, :8], big[0, 16:, 16:])
    again, _ = render_ar(raster, 24, seed=3)
    assert np.array_equal(big, again)
    up, how = render_ar(hilbert, 16, seed=3)
    assert how == "upscaled" and np.array_equal(up[0, ::2, ::2], up[0, 1::2, 1::2])
    with pytest.raises(RenderError, match="only upscales"):
        render_ar(hilbert, 12)
    with pytest.raises(RenderError, match="multiples of 4"):
        render_ar(raster, 26)


def test_the_continued_raster_keeps_each_windows_known_pixels():
    """The first window of a continued canvas is an ordinary sample from the same noise."""
    raster = _trained_stub("raster")
    big, _ = render_ar(raster, 16, seed=4)
    noise = sampling_noise(4, 1, 16).reshape(1, 16, 16)[:, :8, :8].reshape(1, 64)
    small = sample_ar(raster, noise)
    assert np.array_equal(big[0, :8, :8], small[0])


def test_a_walk_moves_the_noise_through_a_gaussian_copula():
    frames = walk_noise(0, 2, 8, frames=12, keyframes=3)
    assert len(frames) == 12 and all(f.shape == (2, 64) for f in frames)
    allu = np.concatenate(frames).ravel()
    assert 0 <= allu.min() and allu.max() < 1 and abs(allu.mean() - 0.5) < 0.05
    steps = [np.abs(frames[i + 1] - frames[i]).mean() for i in range(11)]
    assert max(steps) < 0.25   # neighbouring frames are close; independent noise differs by 1/3
    images = walk_ar(_trained_stub("raster"), frames=6, keyframes=2)
    assert len(images) == 6 and images[0].shape == (8, 8, 3)
    with pytest.raises(RenderError, match="at least 2 keyframes"):
        walk_noise(0, 1, 8, frames=4, keyframes=1)


def test_the_exported_step_network_samples_what_the_model_samples():
    stub = _trained_stub("hilbert", 16)          # 256 steps in windows of 64
    model = stub.model()
    noise = sampling_noise(5, 2, 16)
    want, orders = sample_tokens(model, noise)
    data = step_program_bytes(stub, name="t")
    extra = {"evoart.json": ""}
    program = torch.export.load(io.BytesIO(data), extra_files=extra).module()
    meta = json.loads(extra["evoart.json"])
    assert meta["genes"]["scan"] == "hilbert" and len(meta["palette"]) == 16
    shape = step_inputs(model, batch=2)[-1].shape
    got = sample_with_step_network(program, 16, meta["window"], shape, noise, orders[0].numpy(),
                                   temperature=model.genes.temperature)
    assert torch.equal(got, want)
    direct = sample_with_step_network(StepNetwork(model), 16, model.window, shape, noise, orders[0].numpy())
    assert torch.equal(direct, want)


@pytest.mark.slow
def test_the_step_network_exports_to_onnx_and_samples_the_same():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    stub = _trained_stub("raster", 16)
    model = stub.model()
    noise = sampling_noise(6, 2, 16)
    want, orders = sample_tokens(model, noise)
    data = step_onnx_bytes(stub, name="t")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["evoart.json"])
    assert meta["inputs"] == list(STEP_INPUTS) and meta["resolution"] == 16

    def run(*args):
        outs = session.run(None, {n: a.numpy() for n, a in zip(STEP_INPUTS, args)})
        return tuple(torch.from_numpy(o) for o in outs)

    shape = step_inputs(model, batch=2)[-1].shape
    got = sample_with_step_network(run, 16, meta["window"], shape, noise, orders[0].numpy())
    assert torch.equal(got, want)
