"""The pyramid scan (issue 18): next-scale prediction over palette token maps.

What a user relies on: every scale is the image at that size, the model at scale s reads
only coarser scales and the earlier tokens of its own scale (checked with gradients), it
learns, it samples fast, and the genes that switch it on leave older genomes alone."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from evoart.ar_genes import (ARGenes, GEO_SEEDS, LATER_AR_GENES, SCAN_ORDERS, WITHIN_ORDERS, crossover_ar_genes,
                             describe_ar,
                             mutate_ar_genes, pyramid_sizes, random_ar_genes, scan_label,
                             scan_steps, validate_ar)
from evoart.autoregressive import sample_ar, train_ar
from evoart.autoregressive.pyramid import (PyramidModel, downsample, layout, make_model, pyramid_canvas,
                                           pyramid_orders, pyramid_picture)
from evoart.autoregressive.palette import quantise
from evoart.autoregressive.render import RenderError, render_ar
from evoart.autoregressive.sampling import noise_for, sample_tokens
from evoart.data import load_images
from evoart.genome_limits import GenomeError
from evoart.presets import load_preset

SMALL = ARGenes(palette=16, scan="pyramid", width=32, layers=2, heads=2, mlp_ratio=2, context=64, batch_size=4)


def _model(genes: ARGenes, size: int) -> PyramidModel:
    torch.manual_seed(0)
    model = make_model(genes, size)
    assert isinstance(model, PyramidModel)
    return model.eval()


# ---- layout and token maps ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [8, 24, 32])
def test_every_cell_of_every_scale_has_one_position_and_its_ancestors_hold_its_centre(size):
    lay = layout(size)
    assert lay.sizes == pyramid_sizes(size) and lay.sizes[0] == 1 and lay.sizes[-1] == size
    assert lay.total == sum(n * n for n in lay.sizes)
    for s, n in enumerate(lay.sizes):
        a, e = lay.span(s)
        assert (lay.scale[a:e] == s).all()
        for k in range(len(lay.sizes)):
            anc = lay.ancestors[a:e, k]
            if k >= s:
                assert (anc == -1).all()
                continue
            m = lay.sizes[k]
            ay, ax = np.divmod(anc - lay.offsets[k], m)
            # the ancestor cell covers the cell's centre on the R x R grid
            assert (ay * size <= lay.centre_row[a:e] * m).all() and (lay.centre_row[a:e] * m < (ay + 1) * size).all()
            assert (ax * size <= lay.centre_col[a:e] * m).all() and (lay.centre_col[a:e] * m < (ax + 1) * size).all()
    assert layout(32).total == 1365


def test_each_scale_is_the_area_mean_of_the_image_quantised_with_the_palette():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    canvas = pyramid_canvas(images, palette)
    lay = layout(8)
    a, e = lay.span(len(lay.sizes) - 1)
    assert (canvas[:, a:e].reshape(3, 8, 8) == quantise(images, palette)).all()     # the finest scale is the image
    means = images.reshape(3, 2, 4, 2, 4, 3).astype(float).mean(axis=(2, 4))
    assert np.abs(downsample(images, 2).astype(float) - means).max() <= 0.5
    flat = np.full((1, 12, 12, 3), 77, np.uint8)                                     # an uneven size keeps flat colour
    assert (downsample(flat, 5) == 77).all() and downsample(flat, 5).shape == (1, 5, 5, 3)


# ---- what each token depends on -------------------------------------------------------------------

@pytest.mark.parametrize("within", ["parallel", "raster", "hilbert", "geodesic"])
def test_a_token_depends_on_coarser_scales_and_earlier_tokens_of_its_scale_only(within):
    """Gradients of the logits at each step with respect to one-hot tokens of every cell:
    zero for the cell itself, for later cells of its scale (every cell of it, when the
    scale comes at once) and for every finer scale; non-zero for its ancestors."""
    size = 8
    model = _model(SMALL.replace(within=within, context=64), size)
    lay = model.layout
    cells = torch.randint(0, 16, (2, lay.total), generator=torch.Generator().manual_seed(1))   # by position
    palette = np.random.default_rng(0).integers(0, 256, (16, 3), dtype=np.uint8)
    orders = torch.from_numpy(pyramid_orders(model.genes, size, cells.numpy(), palette))
    tokens = torch.gather(cells, 1, orders)                                          # in scan order
    canvas = torch.nn.functional.one_hot(cells, 16).double().requires_grad_(True)
    model.double()
    logits = model.forward_soft(canvas, orders)
    # the soft path is the real one: one-hot tokens give the logits of the token lookups
    assert torch.allclose(logits, model(tokens, orders).double(), atol=1e-9)
    step_of = torch.empty(lay.total, dtype=torch.long)
    step_of[orders[0]] = torch.arange(lay.total)
    for t in (1, 3, 8, 20, lay.total // 2, lay.total - 1):
        g = int(orders[0, t])
        s = int(lay.scale[g])
        (grad,) = torch.autograd.grad(logits[0, t].sum(), canvas, retain_graph=True)
        per_cell = grad[0].abs().sum(-1)
        a, e = lay.span(s)
        later = torch.zeros(lay.total, dtype=torch.bool)
        later[a:e] = True if within == "parallel" else step_of[a:e] >= t
        later[e:] = True                                                        # every finer scale
        assert (per_cell[later] == 0).all(), f"step {t} (scale {s}) depends on a later or finer token"
        anc = [int(x) for x in lay.ancestors[g, :s]]
        assert (per_cell[anc] > 0).all(), f"step {t} ignores a coarser scale"


# ---- sampling -------------------------------------------------------------------------------------

@pytest.mark.parametrize("within", ["raster", "hilbert"])
def test_cached_pyramid_sampling_draws_what_full_recomputation_draws(within):
    model = _model(SMALL.replace(within=within, context=64), 8)                 # 85 steps, cache reset every 32
    noise = noise_for(model, 3, 2)
    fast, orders = sample_tokens(model, noise)
    slow, _ = sample_tokens(model, noise, cached=False)
    assert torch.equal(fast, slow)
    assert sorted(orders[0].tolist()) == list(range(layout(8).total))


def test_a_geodesic_pyramid_orders_each_scale_from_the_scale_it_drew_above():
    """Sampling recomputes the order once per scale, from the coarser scale just drawn:
    each sample's order of scale s is the geodesic order of its own scale s - 1, the
    orders differ between samples, and the cache draws what recomputation draws."""
    from evoart.autoregressive.pyramid import scale_order

    genes = SMALL.replace(within="geodesic", context=64)
    model = _model(genes, 8)
    palette = np.random.default_rng(0).integers(0, 256, (16, 3), dtype=np.uint8)
    noise = noise_for(model, 5, 3)
    tokens, orders = sample_tokens(model, noise, palette=palette)
    slow, slow_orders = sample_tokens(model, noise, palette=palette, cached=False)
    assert torch.equal(tokens, slow) and torch.equal(orders, slow_orders)
    lay = model.layout
    canvas = model.canvas_of(tokens, orders).numpy()
    for n in range(3):
        for s in range(1, len(lay.sizes)):
            a, e = lay.span(s)
            assert orders[n, a:e].tolist() == scale_order(genes, lay, s, canvas[n], palette).tolist()
    assert len({tuple(o.tolist()) for o in orders}) > 1
    with pytest.raises(ValueError, match="palette"):
        sample_tokens(model, noise)


def test_geodesic_training_scans_are_made_as_batches_draw_images_and_kept_for_a_continuation():
    """A geodesic pyramid's training scans are computed for the images a batch draws,
    the same as scanning every image up front, and a second training on the same
    images, palette and genes (a continuation) reuses what the first computed."""
    from evoart.autoregressive.training import ImageOrders, scan_tokens

    genes = SMALL.replace(within="geodesic")
    images = load_images("shapes", resolution=8, count=24).images
    palette = np.random.default_rng(1).integers(0, 256, (16, 3), dtype=np.uint8)
    ImageOrders._kept.clear()
    lazy = ImageOrders.of(genes, images, palette)
    picks = np.array([5, 3, 5, 20])
    tokens, orders = lazy.batch(picks)
    want_tokens, want_orders = scan_tokens(images[picks], palette, genes)
    assert torch.equal(tokens, want_tokens) and torch.equal(orders, want_orders)
    assert lazy.ready.sum() == 3  # only the images drawn
    assert ImageOrders.of(genes, images, palette) is lazy
    assert ImageOrders.of(genes.replace(geo_lambda=50.0), images, palette) is not lazy
    assert ImageOrders.of(genes, images[::-1].copy(), palette) is not lazy
    assert len(ImageOrders._kept) == ImageOrders.KEEP


def test_a_parallel_pyramid_draws_each_scale_in_one_pass_per_block_from_the_noise():
    model = _model(SMALL, 16)
    palette = np.random.default_rng(0).integers(0, 256, (16, 3), dtype=np.uint8)
    a = sample_ar(model, noise_for(model, 1, 4), palette=palette)
    b = sample_ar(model, noise_for(model, 1, 4), palette=palette)
    c = sample_ar(model, noise_for(model, 2, 4), palette=palette)
    assert a.shape == (4, 16, 16, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(model.blocks_of_scan) == sum(-(-n * n // 64) for n in layout(16).sizes)
    with pytest.raises(ValueError, match="needs 341"):
        sample_tokens(model, np.zeros((1, 256)))


# ---- genes --------------------------------------------------------------------------------------

def test_the_pyramid_genes_leave_raster_and_hilbert_genomes_as_they_were():
    raster = ARGenes()
    assert set(raster.to_dict()) & set(LATER_AR_GENES) == set()                  # old JSON, old hash
    for name, old in (("ar-raster", "dcd60fd19279"), ("ar-hilbert", "e5bb0a02dd3e")):  # as before the genes
        genome = load_preset(name).genome
        assert genome.content_hash() == old and not set(genome.to_dict()["ar"]) & set(LATER_AR_GENES)
    geo = ARGenes(scan="pyramid", within="geodesic", geo_lambda=40.0)
    assert ARGenes.from_dict(geo.to_dict()) == geo and geo.to_dict()["within"] == "geodesic"
    assert scan_label(geo) == "geodesic" and scan_label(ARGenes(scan="pyramid")) == "pyramid"
    assert "lambda=40" in describe_ar(geo)
    assert scan_steps(geo, 32) == 1365 and scan_steps(raster, 32) == 1024
    for bad, match in ((dict(within="spiral"), "ar.within"), (dict(geo_lambda=-1.0), "ar.geo_lambda"),
                       (dict(geo_seeds="corners"), "ar.geo_seeds")):
        with pytest.raises(GenomeError, match=match):
            validate_ar(ARGenes(scan="pyramid", **bad))
    rng = random.Random(0)
    resting = tuple(LATER_AR_GENES.values())
    for _ in range(200):  # the pyramid's genes rest at their defaults wherever nothing reads them
        for g in (mutate_ar_genes(ARGenes(scan="hilbert"), rng), mutate_ar_genes(geo, rng),
                  crossover_ar_genes(geo, raster, rng)):
            if g.scan != "pyramid":
                assert (g.within, g.geo_lambda, g.geo_seeds) == resting
            elif g.within != "geodesic":
                assert (g.geo_lambda, g.geo_seeds) == resting[1:]
    drawn = [random_ar_genes(rng) for _ in range(300)]
    assert {g.scan for g in drawn} == set(SCAN_ORDERS)
    assert {g.within for g in drawn if g.scan == "pyramid"} == set(WITHIN_ORDERS)
    assert {g.geo_seeds for g in drawn if g.scan == "pyramid"} == set(GEO_SEEDS)


def test_the_scan_picture_lays_the_scales_side_by_side():
    genes = ARGenes(scan="pyramid", within="raster")
    pic = pyramid_picture(genes, 8, pyramid_orders(genes, 8)[0])
    assert pic.shape == (8, 4 * 9 - 1, 3)
    # raster within scales: each scale's first cell is the ramp's first colour, its last the last
    first, last = (13, 8, 135), (240, 249, 33)
    for k in range(1, 4):
        panel = pic[:, k * 9:k * 9 + 8]
        assert tuple(panel[0, 0]) == first and tuple(panel[-1, -1]) == last
    par = pyramid_picture(ARGenes(scan="pyramid"), 8, pyramid_orders(ARGenes(scan="pyramid"), 8)[0])
    assert len({tuple(c) for c in par[:, 27:].reshape(-1, 3)}) == 1                # one pass: one colour


# ---- training and rendering ----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["ar-pyramid", "ar-geodesic"])
def test_the_pyramid_presets_learn_and_render_larger_by_adding_finer_scales(name):
    """Each pyramid preset trained briefly at 16 px on shapes: held-out bits per pixel (all
    scales' tokens over the finest scale's pixels) fall well below knowing nothing, and a
    64 px render adds two finer scales in the palette's colours, the same for a seed."""
    torch.set_num_threads(1)
    train = load_images("shapes", 16, count=128, seed=0).images
    held = load_images("shapes", 16, count=32, seed=1).images
    genes = load_preset(name).genome.ar
    result = train_ar(genes, train, steps=60, seed=0, eval_images=held)
    uniform = np.log2(genes.palette) * layout(16).total / 256
    assert result.status == "ok" and result.bits_per_pixel < 0.6 * uniform, result.bits_per_pixel
    assert np.mean(result.curve[-10:]) < np.mean(result.curve[:10]) - 1.5
    images = sample_ar(result, noise_for(result.model(), 0, 8))
    assert images.shape == (8, 16, 16, 3)
    big, how = render_ar(result, 64, seed=0, count=2)
    assert how == "refined" and big.shape == (2, 64, 64, 3)
    palette = {tuple(c) for c in result.palette}
    assert {tuple(c) for c in big.reshape(-1, 3)} <= palette                       # the palette's colours only
    assert np.array_equal(big, render_ar(result, 64, seed=0, count=2)[0])          # the seed decides
    assert np.array_equal(big[:1], render_ar(result, 64, seed=0, count=1)[0])      # not how many are drawn
    with pytest.raises(RenderError, match="power of two"):
        render_ar(result, 48, seed=0)


@pytest.mark.slow
def test_a_mixed_run_with_pyramid_and_geodesic_individuals_completes_and_shows_their_scans(tmp_path):
    import json

    from e2e import TINY, evoart, ledger, only_run

    out = tmp_path / "runs"
    proc = evoart("evolve", *TINY, "--generations", "1", "--families", "gan,ar", "--from-preset", "ar-pyramid",
                  "--from-preset", "ar-geodesic", "--out", str(out), "--seed", "2", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    run = only_run(out)
    with ledger(run) as c:
        rows = {r[0]: (json.loads(r[1]), r[2]) for r in c.execute("SELECT id, genome, born FROM individual")}
        bpp = {r[0] for r in c.execute("SELECT individual FROM score WHERE metric = 'bits_per_pixel'")}
    labels = {i: scan_label(ARGenes.from_dict(g["ar"])) for i, (g, _) in rows.items() if g.get("family") == "ar"}
    assert {"pyramid", "geodesic"} <= set(labels.values())
    assert set(labels) <= bpp                                                      # every AR model was measured
    geo = next(i for i, lab in labels.items() if lab == "geodesic")
    folder = run / f"gen-{rows[geo][1]:03d}" / geo
    assert ">AR geodesic<" in (run / "gen-000" / "index.html").read_text()
    page = (folder / "index.html").read_text()
    assert 'src="scan-order.png"' in page and "geodesic" in page
    from PIL import Image

    with Image.open(folder / "scan-order.png") as im:                              # the scales side by side
        assert im.width > 3 * im.height


@pytest.mark.slow  # two runs of the real command
def test_render_refuses_what_a_pyramid_cannot_make_before_training(tmp_path):
    from e2e import evoart

    out = tmp_path / "out"
    proc = evoart("render", "ar-pyramid", "--size", "48", "--steps", "2", "--resolution", "16", "--out", str(out))
    assert proc.returncode == 2 and "16 px times a power of two (32, 64, ...), not 48" in proc.stderr
    proc = evoart("render", "ar-geodesic", "--export", "onnx", "--steps", "2", "--resolution", "16", "--out", str(out))
    assert proc.returncode == 2 and "exports cover the raster and Hilbert scans" in proc.stderr
    assert "Traceback" not in proc.stderr and "training" not in proc.stdout and not out.exists()
