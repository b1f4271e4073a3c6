"""Behaviour of evoart.metrics that a user of the GA would notice, and the registry's
contract with its callers.

Image sets are random coloured rectangles and discs on flat backgrounds,
drawn with torch from fixed seeds, in [-1, 1].
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from evoart.errors import EvoartError
from evoart.metrics import (
    CONTEXT_OPTIONS,
    MetricError,
    MetricInfo,
    build_metric,
    get_metric,
    get_metric_info,
    laplacian_pyramid,
    list_metrics,
    make_diversity,
    make_swd,
    pairwise_realism,
    register_metric,
    swd_floor,
    wasserstein_1d_sorted,
)

torch.set_num_threads(1)


# ---------------------------------------------------------------------------
# Test images
# ---------------------------------------------------------------------------


def make_shapes(n: int, size: int, seed: int, max_shapes: int = 3) -> torch.Tensor:
    """n images of 1-3 coloured rectangles/discs on a flat background, (n, 3, size, size)."""
    g = torch.Generator().manual_seed(seed)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = coords[:, None], coords[None, :]
    img = ((torch.rand(n, 3, 1, 1, generator=g) * 2 - 1) * 0.6).expand(n, 3, size, size)
    for s in range(max_shapes):
        present = torch.rand(n, generator=g) < (1.0 if s == 0 else 0.6)
        cx, cy = torch.rand(n, generator=g), torch.rand(n, generator=g)
        rw = 0.1 + 0.25 * torch.rand(n, generator=g)
        rh = 0.1 + 0.25 * torch.rand(n, generator=g)
        is_disc = torch.rand(n, generator=g) < 0.5
        colour = torch.rand(n, 3, generator=g) * 2 - 1
        dx = xx[None] - cx[:, None, None]
        dy = yy[None] - cy[:, None, None]
        rect = (dx.abs() <= rw[:, None, None]) & (dy.abs() <= rh[:, None, None])
        disc = dx**2 + dy**2 <= rw[:, None, None] ** 2
        mask = torch.where(is_disc[:, None, None], disc, rect) & present[:, None, None]
        img = torch.where(mask[:, None], colour[:, :, None, None], img)
    return img.contiguous()


def add_noise(images: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=g)).clamp(-1, 1)


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.pad(images, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)


@pytest.fixture(scope="module")
def real() -> torch.Tensor:
    return make_shapes(768, 32, seed=0)


@pytest.fixture(scope="module")
def swd_scorer(real):
    return make_swd(real[:256], seed=0)


@pytest.fixture(scope="module")
def held_out(real) -> torch.Tensor:
    """Real-distribution images the scorer has not seen."""
    return real[256:512]


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


def test_registry_lists_swd_and_diversity_with_directions():
    infos = {info.name: info for info in list_metrics()}
    assert infos["swd"].direction == "lower"
    assert infos["diversity"].direction == "higher"
    for info in infos.values():
        assert isinstance(info, MetricInfo)
        assert isinstance(info.version, int) and info.description
    assert get_metric("swd") is make_swd
    assert get_metric("diversity") is make_diversity
    assert get_metric_info("swd") == infos["swd"]


def test_registry_refuses_unknown_duplicate_and_bad_direction():
    with pytest.raises(KeyError, match="swd"):  # the message lists known names
        get_metric("no-such-metric")
    with pytest.raises(ValueError, match="already registered"):
        register_metric("swd", direction="lower", version=1, description="x")(lambda r, *, seed: r)
    with pytest.raises(ValueError, match="direction"):
        register_metric("sideways", direction="up", version=1, description="x")  # type: ignore[arg-type]
    assert "sideways" not in {i.name for i in list_metrics()}


def test_build_metric_gives_each_metric_only_the_context_it_declares(real, held_out):
    """A caller passes everything it knows; swd takes no features, so a path that does not
    even exist is not looked at, and the numbers are those of the factory itself."""
    everything = {"features": "no/such/extractor.pt2", "floors": None}
    scorer = build_metric("swd", real[:128], seed=0, **everything)
    assert scorer.score(held_out[:64]) == make_swd(real[:128], seed=0).score(held_out[:64])
    assert get_metric_info("swd").context == ("device",)
    assert set(get_metric_info("perceptual").context) == {"floors", "floor_real", "n", "repeats", "features",
                                                          "device"}
    for info in list_metrics():
        assert set(info.context) <= set(CONTEXT_OPTIONS), info


def test_build_metric_refuses_an_option_that_is_no_context_option(real):
    with pytest.raises(TypeError, match="featurs"):  # a typo is not dropped silently
        build_metric("rkid", real[:64], seed=0, featurs="x.pt2")
    with pytest.raises(KeyError, match="swd"):
        build_metric("no-such-metric", real[:64], seed=0)


def test_a_metric_must_take_the_context_it_declares():
    with pytest.raises(ValueError, match="unknown context"):
        register_metric("odd", direction="lower", version=1, description="x", context=("colour",))
    with pytest.raises(ValueError, match="does not take"):
        register_metric("odd", direction="lower", version=1, description="x",
                        context=("features",))(lambda real, *, seed: None)
    assert "odd" not in {i.name for i in list_metrics()}


def test_every_reported_name_is_computed_by_a_registered_metric(real):
    """objectives.REPORTED is the one list of names; each is a metric or one of its parts."""
    from evoart.objectives import REPORTED

    context = {"floor_real": real[512:640], "n": 32, "repeats": 2}
    produced = set()
    for info in list_metrics():
        produced |= set(build_metric(info.name, real[:64], seed=0, **context).score(real[64:96]))
    assert set(REPORTED) <= produced, set(REPORTED) - produced


# ---------------------------------------------------------------------------
# SWD: agreement with the reference recipe
# ---------------------------------------------------------------------------


def _np_mirror_convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """scipy.ndimage.convolve(..., mode='mirror') for a symmetric 5x5 kernel, in plain numpy."""
    p = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    for i in range(5):
        for j in range(5):
            out += kernel[i, j] * p[:, :, i : i + h, j : j + w]
    return out


def _np_reference_pyramid(x: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """Transcription of the Progressive GAN reference's generate_laplacian_pyramid."""
    g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float64) / 256.0

    def down(a):
        return _np_mirror_convolve(a, g)[:, :, ::2, ::2]

    def up(a):
        n, c, h, w = a.shape
        res = np.zeros((n, c, 2 * h, 2 * w))
        res[:, :, ::2, ::2] = a
        return _np_mirror_convolve(res, g * 4.0)

    pyr = [x.astype(np.float64)]
    for _ in range(1, num_levels):
        pyr.append(down(pyr[-1]))
        pyr[-2] = pyr[-2] - up(pyr[-1])
    return pyr


def test_laplacian_pyramid_matches_reference_recipe():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    ours = laplacian_pyramid(x, num_levels=3)
    ref = _np_reference_pyramid(x.double().numpy(), 3)
    assert [tuple(level.shape[-2:]) for level in ours] == [(32, 32), (16, 16), (8, 8)]
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-5)


@settings(deadline=None, max_examples=60)
@given(
    a=st.lists(st.integers(-5, 5), min_size=1, max_size=12),
    b=st.lists(st.integers(-5, 5), min_size=1, max_size=12),
)
def test_wasserstein_1d_is_exact_for_any_sample_sizes(a, b):
    """Equal counts: the reference's mean|sort(A)-sort(B)|; unequal: the same after
    replicating both samples to a common size (which leaves the distributions unchanged)."""
    n, m = len(a), len(b)
    lcm = n * m // math.gcd(n, m)
    a_rep = np.sort(np.repeat(np.asarray(a, dtype=np.float64), lcm // n))
    b_rep = np.sort(np.repeat(np.asarray(b, dtype=np.float64), lcm // m))
    expected = np.abs(a_rep - b_rep).mean()
    got = wasserstein_1d_sorted(
        torch.tensor(sorted(a), dtype=torch.float32)[None],
        torch.tensor(sorted(b), dtype=torch.float32)[None],
    )
    assert got.shape == (1,)
    assert float(got[0]) == pytest.approx(expected, rel=1e-5, abs=1e-5)


# ---------------------------------------------------------------------------
# SWD: behaviour
# ---------------------------------------------------------------------------


def test_swd_reports_levels_and_mean(swd_scorer, held_out):
    result = swd_scorer.score(held_out[:128])
    assert set(result) == {"swd", "swd_32", "swd_16"}
    assert result["swd"] == pytest.approx((result["swd_32"] + result["swd_16"]) / 2)
    assert all(math.isfinite(v) and v > 0 for v in result.values())


def test_swd_same_distribution_is_small_next_to_disturbed_sets(swd_scorer, held_out):
    same = swd_scorer.score(held_out)["swd"]
    disturbed = [swd_scorer.score(add_noise(held_out, 0.05, seed=1))["swd"]]
    disturbed += [swd_scorer.score(blur(held_out, 1.0))["swd"]]
    grey = held_out.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    disturbed += [swd_scorer.score(grey)["swd"]]
    assert same < 0.7 * min(disturbed), (same, disturbed)


def test_swd_ignores_global_contrast_like_the_reference(swd_scorer, held_out):
    """Each descriptor set is normalised per channel by its own mean/std (as the
    reference's finalize_descriptors), so a uniformly dimmer generator is not
    penalised by SWD; diversity does see it."""
    fakes = held_out[:128]
    assert swd_scorer.score(0.5 * fakes)["swd"] == pytest.approx(
        swd_scorer.score(fakes)["swd"], rel=1e-3
    )


def test_swd_grows_strictly_with_noise(swd_scorer, held_out):
    fakes = held_out[:128]
    values = [swd_scorer.score(add_noise(fakes, s, seed=1))["swd"] for s in (0.03, 0.1, 0.3)]
    base = swd_scorer.score(fakes)["swd"]
    assert base < values[0] < values[1] < values[2], (base, values)


def test_swd_grows_strictly_with_blur(swd_scorer, held_out):
    fakes = held_out[:128]
    values = [swd_scorer.score(blur(fakes, s))["swd"] for s in (0.7, 1.4, 2.8)]
    base = swd_scorer.score(fakes)["swd"]
    assert base < values[0] < values[1] < values[2], (base, values)


def test_swd_of_pure_noise_is_far_above_the_floor(real, swd_scorer):
    floor_mean, floor_std = swd_floor(real, 128, 0, repeats=3)
    assert 0 < floor_mean and floor_std >= 0
    noise = torch.rand(128, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    value = swd_scorer.score(noise)["swd"]
    assert value > 3 * floor_mean and value > floor_mean + 10 * floor_std, (
        value,
        floor_mean,
        floor_std,
    )


def test_swd_floor_needs_disjoint_subsets(real):
    with pytest.raises(ValueError, match="disjoint"):
        swd_floor(real[:100], 64, 0)


def test_swd_is_deterministic_and_leaves_inputs_alone(real, held_out):
    reals, fakes = real[:64].clone(), held_out[:48].clone()
    reals_before, fakes_before = reals.clone(), fakes.clone()
    a = make_swd(reals, seed=7, nhoods_per_image=32)
    b = make_swd(reals, seed=7, nhoods_per_image=32)
    first = a.score(fakes)
    assert a.score(fakes) == first  # scoring twice: identical
    assert b.score(fakes) == first  # a second scorer with the same seed: identical
    assert make_swd(reals, seed=8, nhoods_per_image=32).score(fakes) != first
    assert torch.equal(reals, reals_before) and torch.equal(fakes, fakes_before)


def test_swd_of_any_fake_count_matches_a_fresh_scorer_in_any_order(real, held_out):
    """A run's scorer faces fake sets a whole number of times smaller than its real set
    (compared block by block, with the real side stored as blocks) and others (compared
    row by row): whatever came before, each score is a fresh scorer's, to rounding."""
    reals = real[:64]
    used = make_swd(reals, seed=3, nhoods_per_image=16)
    for count in (16, 32, 24, 16, 64, 96, 32):   # blocks of 4, 2; rows; 4; 1; more fakes; 2
        fakes = held_out[:count]
        fresh = make_swd(reals, seed=3, nhoods_per_image=16).score(fakes)
        got = used.score(fakes)
        assert got.keys() == fresh.keys()
        for key in fresh:
            assert got[key] == pytest.approx(fresh[key], rel=1e-5), (count, key)


def test_w1_by_blocks_equals_the_row_formula():
    from evoart.metrics.swd import _merge_plan, _w1_blocks

    g = torch.Generator().manual_seed(0)
    for k in (1, 2, 4, 7):
        m = 33
        a = torch.sort(torch.randn(9, k * m, generator=g), dim=1).values
        b = torch.sort(torch.randn(9, m, generator=g) * 1.5 + 0.2, dim=1).values
        blocks = a.reshape(9, m, k).transpose(1, 2).contiguous()
        rows = wasserstein_1d_sorted(a, b, _plan=_merge_plan(k * m, m, a.device))
        torch.testing.assert_close(_w1_blocks(blocks, b), rows, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "size, levels", [(16, ["swd_16"]), (32, ["swd_32", "swd_16"]), (64, ["swd_64", "swd_32", "swd_16"])]
)
def test_swd_works_at_16_32_64_pixels(size, levels):
    reals = make_shapes(96, size, seed=10)
    same = make_shapes(48, size, seed=11)
    noise = torch.rand(48, 3, size, size, generator=torch.Generator().manual_seed(12)) * 2 - 1
    scorer = make_swd(reals, seed=0, nhoods_per_image=32, dirs_per_repeat=64)
    good, bad = scorer.score(same), scorer.score(noise)
    assert set(good) == {"swd", *levels}
    assert good["swd"] < bad["swd"]


def test_swd_refuses_mismatched_sizes_and_nan(swd_scorer):
    with pytest.raises(MetricError, match="real images are") as wrong_size:
        swd_scorer.score(torch.zeros(8, 3, 16, 16))
    assert isinstance(wrong_size.value, EvoartError)  # the command line shows it as a message
    with pytest.raises(ValueError, match="NaN"):
        swd_scorer.score(torch.full((8, 3, 32, 32), float("nan")))
    with pytest.raises(MetricError, match="min_resolution"):
        make_swd(torch.zeros(4, 3, 8, 8), seed=0)


def test_swd_of_a_constant_generator_is_finite_and_bad(swd_scorer, held_out):
    """A collapsed GA individual emitting one flat colour must get a poor number, not NaN."""
    flat = swd_scorer.score(torch.zeros(64, 3, 32, 32))["swd"]
    assert math.isfinite(flat)
    assert flat > 3 * swd_scorer.score(held_out[:64])["swd"]


# ---------------------------------------------------------------------------
# Pairwise realism
# ---------------------------------------------------------------------------


@settings(deadline=None, max_examples=150)
@given(
    fake=st.lists(st.integers(-4, 4) | st.floats(-3, 3, width=32), min_size=1, max_size=40),
    real=st.lists(st.integers(-4, 4) | st.floats(-3, 3, width=32), min_size=1, max_size=40),
)
def test_pairwise_realism_equals_brute_force_including_ties(fake, real):
    f = torch.tensor(fake, dtype=torch.float32)
    r = torch.tensor(real, dtype=torch.float32)
    wins = int((f[:, None] > r[None, :]).sum()) + 0.5 * int((f[:, None] == r[None, :]).sum())
    assert pairwise_realism(f, r) == pytest.approx(wins / (len(fake) * len(real)), abs=1e-12)


def test_pairwise_realism_is_half_when_d_cannot_tell():
    g = torch.Generator().manual_seed(0)
    fake, real = torch.randn(3000, generator=g), torch.randn(2000, generator=g)
    assert abs(pairwise_realism(fake, real) - 0.5) < 0.03


def test_pairwise_realism_extremes_and_shapes():
    real = torch.linspace(0, 1, 50)
    assert pairwise_realism(real - 2, real) == 0.0  # D separates perfectly
    assert pairwise_realism(real + 2, real) == 1.0
    assert pairwise_realism(torch.ones(7), torch.ones(9)) == 0.5  # a tie counts half (AUC)
    assert pairwise_realism((real - 2)[:, None], real[:, None]) == 0.0  # (N, 1) D outputs
    with pytest.raises(ValueError):
        pairwise_realism(torch.tensor([float("nan")]), real)
    with pytest.raises(ValueError):
        pairwise_realism(torch.tensor([]), real)


# ---------------------------------------------------------------------------
# Diversity
# ---------------------------------------------------------------------------


def test_diversity_of_a_collapsed_generator_is_near_zero(real):
    scorer = make_diversity(real[:512], seed=0)
    collapsed = real[600:601].expand(128, -1, -1, -1)
    assert scorer.score(collapsed)["diversity"] < 0.05
    slightly_varied = add_noise(collapsed, 0.02, seed=3)
    assert scorer.score(slightly_varied)["diversity"] < 0.1


def test_diversity_of_another_real_sample_is_near_one(real):
    scorer = make_diversity(real[:512], seed=0)
    result = scorer.score(real[512:])
    assert 0.9 < result["diversity"] < 1.1
    assert set(result) == {"diversity", "diversity_fake", "diversity_real"}
    other = make_shapes(256, 32, seed=99)
    assert 0.9 < scorer.score(other)["diversity"] < 1.1


def test_diversity_refuses_a_real_set_without_variation():
    with pytest.raises(MetricError, match="no variation"):
        make_diversity(torch.zeros(10, 3, 32, 32), seed=0)


# ---------------------------------------------------------------------------
# The embedding, rkid, coverage, color, perceptual
# ---------------------------------------------------------------------------

from evoart.metrics import (  # noqa: E402
    Floor,
    embedding_name,
    load_embedding,
    make_color,
    make_coverage,
    make_perceptual,
    make_rkid,
    measure_floors,
    metric_versions,
    perceptual_from_parts,
    random_embedding,
)


def test_registry_has_every_metric_of_the_protocol_with_its_direction():
    infos = {info.name: info for info in list_metrics()}
    expected = {"swd": "lower", "rkid": "lower", "coverage": "higher", "color": "lower",
                "perceptual": "lower", "diversity": "higher"}
    assert {k: infos[k].direction for k in expected} == expected
    assert set(metric_versions()) == set(infos) | {"realism"}
    assert metric_versions()["realism"] >= 2  # 2: ties count half, the judge panel


def test_random_embedding_is_fixed_and_per_image(held_out):
    """The same weights in every process and run (the seed is a constant), and an image's
    features do not depend on the batch it is embedded with."""
    a, b = random_embedding(), random_embedding()
    fa = a(held_out[:130])
    assert torch.equal(fa, b(held_out[:130]))
    assert torch.allclose(fa[129:], a(held_out[129:130]), atol=1e-5)  # float32 convolutions
    assert fa.dtype == torch.float64 and fa.shape == (130, 710)
    assert embedding_name(None) == a.name == "random-cnn-v1"


def _brute_kid(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_rkid_is_the_unbiased_mmd_with_the_cubic_kernel(real, held_out):
    scorer = make_rkid(real[:40], seed=0)
    fake = held_out[:25]
    f = scorer.embedded.features(fake)
    expected = _brute_kid(scorer.embedded.real.numpy(), f.numpy()) * 1e3
    assert scorer.score(fake)["rkid"] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_rkid_is_near_zero_for_the_same_distribution_and_large_for_noise(real, held_out):
    scorer = make_rkid(real[:256], seed=0)
    same = scorer.score(held_out)["rkid"]
    noisy = scorer.score(add_noise(held_out, 0.3, seed=1))["rkid"]
    assert abs(same) < 20 < noisy, (same, noisy)


def _brute_coverage(real_f: np.ndarray, fake_f: np.ndarray, k: int) -> float:
    covered = 0
    for i, x in enumerate(real_f):
        dists = sorted(np.linalg.norm(real_f - x, axis=1))
        radius = dists[k]  # dists[0] is the image itself
        covered += any(np.linalg.norm(y - x) < radius for y in fake_f)
    return covered / len(real_f)


def test_coverage_matches_its_definition_with_k_5(real, held_out):
    scorer = make_coverage(real[:60], seed=0)
    fake = held_out[:30]
    f = scorer.embedded.features(fake).numpy()
    got = scorer.score(fake)
    assert scorer.k == 5
    assert got["coverage"] == pytest.approx(_brute_coverage(scorer.embedded.real.numpy(), f, 5))
    assert got["density"] >= 0


def test_coverage_tells_a_collapsed_generator_from_a_varied_one(real, held_out):
    scorer = make_coverage(real[:256], seed=0)
    varied = scorer.score(held_out[:128])["coverage"]
    collapsed = scorer.score(held_out[:1].expand(128, -1, -1, -1))["coverage"]
    assert collapsed < 0.1 < 0.6 < varied, (collapsed, varied)


def test_color_measures_grey_levels_and_sees_what_swd_does_not(held_out, swd_scorer):
    flat = torch.zeros(32, 3, 32, 32)
    scorer = make_color(flat, seed=0)
    assert scorer.score(flat)["color"] == 0.0
    shifted = flat + 20 / 127.5  # every pixel 20 grey levels brighter
    result = scorer.score(shifted)
    assert result["color"] == pytest.approx(20.0, abs=1e-6)
    assert result["color_pixels"] == pytest.approx(20.0, abs=1e-6)
    # on real images: a global shift that SWD (per-channel normalised) barely notices
    color = make_color(held_out[:128], seed=0)
    fakes = held_out[128:]
    dimmer = 0.5 * fakes
    assert color.score(dimmer)["color"] > 3 * color.score(fakes)["color"]
    assert swd_scorer.score(dimmer)["swd"] == pytest.approx(swd_scorer.score(fakes)["swd"], rel=1e-3)


def test_floor_z_and_the_perceptual_formula():
    f = Floor(mean=10.0, std=2.0, n=64, repeats=5)
    assert f.z(14.0) == 2.0 and f.z(8.0) == -1.0
    assert Floor.from_dict(f.to_dict()) == f
    floors = {"swd": Floor(10, 2, 64, 5), "rkid": Floor(0, 1, 64, 5), "color": Floor(3, 1, 64, 5)}
    out = perceptual_from_parts({"swd": 14.0, "rkid": -3.0, "color": 3.0 + math.e - 1}, floors)
    assert out["swd_z"] == 2.0 and out["rkid_z"] == -3.0
    # below the floor counts 0; log(1 + z) otherwise
    assert out["perceptual"] == pytest.approx(math.log(3.0) + 0.0 + 1.0)


@pytest.fixture(scope="module")
def perceptual_scorer(real):
    return make_perceptual(real[:192], seed=0, floor_real=real[512:], n=64, repeats=4)


def test_perceptual_floors_come_from_real_images_outside_the_reference(perceptual_scorer, real):
    floors = perceptual_scorer.floors
    for key in ("swd", "rkid", "color", "coverage", "perceptual"):
        assert floors[key].n == 64 and floors[key].repeats == 4
    assert floors["swd"].mean > 0 and floors["swd"].std > 0
    assert floors["coverage"].mean > 0.5
    with pytest.raises(ValueError, match="floor_real"):
        make_perceptual(real[:64], seed=0)


def test_perceptual_ranks_real_above_blurred_above_noise(perceptual_scorer, real):
    fake = real[192:256]
    values = [perceptual_scorer.score(x)["perceptual"]
              for x in (fake, blur(fake, 1.0), add_noise(fake, 0.3, seed=2))]
    assert values[0] < values[1] < values[2], values
    assert values[0] < perceptual_scorer.floors["perceptual"].mean + 4 * perceptual_scorer.floors["perceptual"].std


def test_score_all_adds_coverage_to_the_same_numbers(perceptual_scorer, real):
    fake = real[192:256]
    everything = perceptual_scorer.score_all(fake)
    alone = perceptual_scorer.score(fake)
    assert {k: everything[k] for k in alone} == alone
    assert {"coverage", "density", "swd_32", "swd_16", "rkid_z"} <= set(everything)


def test_measure_floors_is_seeded_and_needs_a_spread(perceptual_scorer, real):
    scorers = {"color": perceptual_scorer.color}
    a = measure_floors(scorers, real[512:], 32, seed=3, repeats=3)
    assert a == measure_floors(scorers, real[512:], 32, seed=3, repeats=3)
    assert a != measure_floors(scorers, real[512:], 32, seed=4, repeats=3)
    with pytest.raises(ValueError, match="repeats"):
        measure_floors(scorers, real[512:], 32, seed=3, repeats=1)


# ---------------------------------------------------------------------------
# --features: the user's own extractor, as torch.export (.pt2) or TorchScript (.pt)
# ---------------------------------------------------------------------------


class _TinyExtractor(torch.nn.Module):
    """A stand-in for a pretrained network on disk: conv features, as a feature map."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def _save_export(path, *, dynamic: bool = True) -> str:
    example = torch.zeros(2, 3, 32, 32)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    torch.export.save(torch.export.export(_TinyExtractor().eval(), (example,), dynamic_shapes=shapes), str(path))
    return str(path)


@pytest.fixture(scope="module")
def extractor_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch's own note on torch.jit
        torch.jit.script(_TinyExtractor()).save(str(root / "tiny.pt"))
    return {"pt2": _save_export(root / "tiny.pt2"), "pt": str(root / "tiny.pt")}


def test_a_torch_export_extractor_replaces_the_random_embedding(extractor_files, real, held_out):
    path = extractor_files["pt2"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # .pt2 is the current format: no note
        emb = load_embedding(path)
    assert emb.name.startswith("export:") and emb.name == embedding_name(path)
    feats = emb(held_out[:130])  # two batches of different sizes: the batch size is dynamic
    assert feats.shape == (130, 16)  # the (N, 16, 16, 16) map, averaged over space
    scorer = make_rkid(real[:128], seed=0, features=path)
    assert scorer.score(held_out[:128])["rkid"] < scorer.score(add_noise(held_out[:128], 0.3, seed=1))["rkid"]
    cov = make_coverage(real[:128], seed=0, features=path)
    assert cov.score(held_out[:128])["coverage"] > cov.score(held_out[:1].expand(128, -1, -1, -1))["coverage"]


def test_a_torchscript_extractor_still_works_with_a_deprecation_note(extractor_files, held_out):
    path = extractor_files["pt"]
    with pytest.warns(FutureWarning, match=r"TorchScript .* deprecated.*torch\.export\.save"):
        emb = load_embedding(path)
    assert emb.name.startswith("torchscript:") and emb.name == embedding_name(path)  # as runs recorded it
    exported = load_embedding(extractor_files["pt2"])
    assert torch.allclose(emb(held_out[:10]), exported(held_out[:10]), atol=1e-6)  # the same model


def test_bad_feature_files_are_refused_clearly(tmp_path):
    with pytest.raises(MetricError, match="does not exist"):
        load_embedding(str(tmp_path / "missing.pt2"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(MetricError, match="not a loadable TorchScript") as bad:
        load_embedding(str(junk))
    assert isinstance(bad.value, EvoartError)
    (tmp_path / "junk.pt2").write_bytes(b"not a model")
    with pytest.raises(MetricError, match="not a loadable torch.export"):
        load_embedding(str(tmp_path / "junk.pt2"))


def test_an_export_with_a_fixed_batch_size_is_refused_with_the_fix(tmp_path, held_out):
    emb = load_embedding(_save_export(tmp_path / "static.pt2", dynamic=False))
    with pytest.raises(MetricError, match="dynamic batch size"):
        emb(held_out[:5])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="scoring on a GPU needs a CUDA device")
def test_scores_on_a_cuda_device_equal_the_cpus(perceptual_scorer, real):
    """A run on a card scores there (swd and the random-CNN embedding): the same numbers
    as on the CPU, to float rounding, with the same floors."""
    on_card = make_perceptual(real[:192], seed=0, floors=perceptual_scorer.floors, device="cuda")
    assert on_card.swd.real_sorted[0].device.type == "cuda"
    for fake in (real[192:256], blur(real[192:256], 1.0), add_noise(real[192:256], 0.3, seed=2)):
        cpu, card = perceptual_scorer.score_all(fake), on_card.score_all(fake)
        for key in ("swd", "rkid", "coverage", "color", "perceptual"):
            assert card[key] == pytest.approx(cpu[key], rel=1e-4, abs=1e-6), key


def test_scoring_on_a_card_turns_tf32_off_only_while_it_scores():
    """cuDNN's default TF32 would make a card's SWD and embedding differ from the CPU's by
    about 1e-3; the metrics turn it off while they run and give the training its setting back."""
    from evoart.metrics._common import full_fp32

    cudnn, cublas = torch.backends.cudnn, torch.backends.cuda.matmul
    before = cudnn.allow_tf32, cublas.allow_tf32
    cudnn.allow_tf32 = cublas.allow_tf32 = True
    try:
        for device in ("cuda", "cuda:1", torch.device("cuda:0")):
            with full_fp32(device):
                assert not cudnn.allow_tf32 and not cublas.allow_tf32
            assert cudnn.allow_tf32 and cublas.allow_tf32
        with pytest.raises(RuntimeError), full_fp32("cuda"):
            raise RuntimeError("a scorer failed")
        assert cudnn.allow_tf32 and cublas.allow_tf32
        for device in ("cpu", None):
            with full_fp32(device):
                assert cudnn.allow_tf32  # nothing to change off CUDA
    finally:
        cudnn.allow_tf32, cublas.allow_tf32 = before
