"""The geodesic scan (issue 18): cost, seeds, the order itself, and the must-show: on
images of two flat regions split by a straight edge, the geodesic order crosses between
the regions far less often than raster and Hilbert."""

from __future__ import annotations

import numpy as np
import pytest

from evoart.autoregressive.geodesic import (DEFAULT_LAMBDA, LAMBDA_RANGE, SEED_MODES, coarse_view, edge_cost,
                                            geodesic_distance, geodesic_distances, geodesic_order, geodesic_orders,
                                            luminance_extrema, random_seed_points, region_crossings, seed_points,
                                            two_region_images)
from evoart.autoregressive.scans import ScanError, hilbert_order, raster_order
from evoart.data import load_images

SIZE = 32


@pytest.fixture(scope="module")
def test_images():
    """The 100 two-region images of the must-show, each with what the model sees of it
    (averaged to 16 px, upsampled back to 32 by nearest neighbour) and its regions."""
    images, regions = two_region_images(100, SIZE, seed=0)
    return [coarse_view(image) for image in images], regions


def _mean_crossings(orders, regions) -> float:
    return float(np.mean([region_crossings(o, r) for o, r in zip(orders, regions)]))


# ---- the must-show ---------------------------------------------------------------------------

def test_the_geodesic_order_crosses_an_edge_far_less_often_than_raster_and_hilbert(test_images):
    views, regions = test_images
    raster = _mean_crossings([raster_order(SIZE)] * len(regions), regions)
    hilbert = _mean_crossings([hilbert_order(SIZE)] * len(regions), regions)
    geodesic = _mean_crossings([geodesic_order(v, DEFAULT_LAMBDA) for v in views], regions)
    # measured (docs/GEODESIC.md): raster 44.95, Hilbert 22.79, geodesic 2.32 per image;
    # at least one crossing is needed to go from one region to the other
    assert 1.0 <= geodesic <= 3.0
    assert geodesic <= raster / 10
    assert geodesic <= hilbert / 7


def test_a_larger_lambda_crosses_no_more_often_than_lambda_zero(test_images):
    views, regions = test_images
    views, regions = views[:40], regions[:40]
    for mode in SEED_MODES:
        flat = _mean_crossings([geodesic_order(v, 0.0, mode) for v in views], regions)
        edgy = _mean_crossings([geodesic_order(v, DEFAULT_LAMBDA, mode) for v in views], regions)
        assert edgy <= flat, mode
        # and lambda is what makes it follow edges: without it, it crosses more than raster
        assert edgy < _mean_crossings([raster_order(SIZE)] * len(regions), regions) < flat, mode


def test_each_region_of_a_two_region_image_is_one_cell_filled_before_the_other():
    # an edge exactly between blocks of the coarse scale: nothing is ambiguous, so
    # the order fills one region completely, then the other (one crossing)
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[:, 12:] = (200, 180, 40)
    regions = (np.arange(SIZE)[None, :] >= 12).repeat(SIZE, axis=0)
    order = geodesic_order(coarse_view(image), DEFAULT_LAMBDA, "extrema")
    assert region_crossings(order, regions) == 1
    # ...whereas the rings of lambda 0 cross back and forth
    assert region_crossings(geodesic_order(coarse_view(image), 0.0, "extrema"), regions) > 10


# ---- the order -------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 12, 16])
@pytest.mark.parametrize("mode", SEED_MODES)
def test_the_order_is_a_permutation_of_the_positions_for_any_size(n, mode):
    rng = np.random.default_rng(n)
    image = rng.integers(0, 256, (n, n, 3)).astype(np.uint8)
    order = geodesic_order(image, 30.0, mode)
    assert order.dtype == np.int64 and order.shape == (n * n,)
    assert np.array_equal(np.sort(order), np.arange(n * n))
    if n == 1:
        assert order.tolist() == [0]


def test_the_same_image_always_gives_the_same_order_and_the_order_depends_on_the_image():
    shapes = load_images("shapes", 16, count=4, seed=0).images
    for mode in SEED_MODES:
        first = geodesic_orders(shapes, 50.0, mode)
        again = geodesic_orders(shapes.copy(), 50.0, mode)
        assert np.array_equal(first, again), mode
        assert first.shape == (4, 256)
        assert not np.array_equal(first[0], first[1]), mode
    # a flat image: the centre (2, 2), then its four neighbours at distance 1, which
    # tie and go by position, then the four diagonal ones at sqrt 2
    flat = np.full((4, 4, 3), 90, np.uint8)
    assert geodesic_order(flat, 10.0, "centre").tolist()[:9] == [10, 6, 9, 11, 14, 5, 7, 13, 15]


def test_each_cell_is_filled_outwards_from_its_seed_before_the_next_cell():
    image = load_images("shapes", 16, count=1, seed=3).images[0]
    seeds = seed_points(image, "random")
    order = geodesic_order(image, 50.0, "random")
    dist, owner = geodesic_distance(edge_cost(image, 50.0), seeds)
    cells, d = owner.ravel()[order], dist.ravel()[order]
    assert np.all(np.diff(cells) >= 0)  # cells one after another, in the order of the seeds
    for c in np.unique(cells):
        assert np.all(np.diff(d[cells == c]) >= 0)  # each from its seed outwards
        assert order[cells == c][0] == seeds[c]  # starting at the seed itself


@pytest.mark.parametrize("lam", [0.0, 200.0])
def test_a_batch_relaxed_at_once_has_the_heaps_distances_and_seeds_to_the_bit(lam):
    """The batched relaxation (how every order is computed) against the heap that
    defines it: equal distances, and ties between seeds settled as the heap settles them
    (flat images tie everywhere; a point listed twice belongs to its first listing)."""
    rng = np.random.default_rng(4)
    images = np.concatenate([two_region_images(6, 12, seed=2)[0], rng.integers(0, 256, (6, 12, 12, 3), dtype=np.uint8),
                             np.full((2, 12, 12, 3), 90, np.uint8), load_images("shapes", 12, count=6).images])
    seeds = [rng.choice(144, size=int(rng.integers(1, 6))) for _ in images]
    seeds[0] = np.array([5, 77, 5, 140])
    costs = np.stack([edge_cost(image, lam) for image in images])
    dist, owner = geodesic_distances(costs, seeds)
    for i, (cost, points) in enumerate(zip(costs, seeds)):
        want_dist, want_owner = geodesic_distance(cost, points)
        assert np.array_equal(dist[i], want_dist) and np.array_equal(owner[i], want_owner), i


def test_the_cost_is_one_on_flat_pixels_and_grows_with_lambda_across_an_edge():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, 4:] = 255
    assert np.array_equal(edge_cost(image, 0.0), np.ones((8, 8)))
    cost = edge_cost(image, 10.0)
    assert np.all(cost[:, [0, 1, 6, 7]] == 1.0)
    # central differences across a black-to-white step: sqrt(3)/2 per pixel each side
    assert np.allclose(cost[:, [3, 4]], 1 + 10.0 * np.sqrt(3) / 2)
    assert np.all(edge_cost(image, 40.0)[:, 3:5] > cost[:, 3:5])


# ---- seeds -----------------------------------------------------------------------------------

def test_extrema_seeds_are_one_point_per_flat_extremum_and_at_most_four():
    image = np.full((16, 16, 3), 128, np.uint8)
    image[2:6, 2:6] = 250  # a bright square: a maximum plateau of 16 pixels
    image[10:14, 9:13] = 5  # a dark square: a minimum plateau
    seeds = luminance_extrema(image)
    assert sorted(divmod(int(p), 16) for p in seeds) == [(3, 3), (11, 10)]
    # the grey background between them is neither, and is seeded by no point
    assert len(seed_points(np.full((5, 5, 3), 7, np.uint8), "extrema")) == 1  # a flat image: one plateau
    # a plateau's seed lies inside it, away from its edges, even when its centroid does
    # not: a dark background round a bright disc is seeded where it is flat (cost 1)
    yy, xx = np.mgrid[:16, :16]
    disc = np.where(((yy - 7.5) ** 2 + (xx - 7.5) ** 2 < 20)[..., None], 230, 20).astype(np.uint8).repeat(3, axis=2)
    seeds = luminance_extrema(disc)
    assert len(seeds) == 2 and np.all(edge_cost(disc, 50.0).ravel()[seeds] == 1.0)
    # a flat area with the small wobble of resampling is still one plateau: two noisy
    # halves give one seed each, not a seed per speck
    halves = np.where((xx < 8)[..., None], 60, 190) + np.random.default_rng(1).integers(-1, 2, (16, 16, 3))
    seeds = luminance_extrema(halves.astype(np.uint8))
    assert sorted(int(p) % 16 < 8 for p in seeds) == [False, True]
    many = np.random.default_rng(0).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    assert 1 <= len(luminance_extrema(many)) <= 4


def test_random_seeds_are_the_same_for_every_image_of_a_size_and_centre_is_the_middle():
    a, b = (np.random.default_rng(s).integers(0, 256, (12, 12, 3)).astype(np.uint8) for s in (1, 2))
    assert np.array_equal(seed_points(a, "random"), seed_points(b, "random"))
    assert np.array_equal(random_seed_points(12), seed_points(a, "random"))
    assert not np.array_equal(random_seed_points(12), random_seed_points(13))
    assert len(set(random_seed_points(2).tolist())) == 4 and len(random_seed_points(1)) == 1
    assert seed_points(a, "centre").tolist() == [6 * 12 + 6]


# ---- bad input -------------------------------------------------------------------------------

def test_bad_input_is_refused_with_a_message_that_names_it():
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ScanError, match="uint8"):
        geodesic_order(image.astype(np.float32), 1.0)
    with pytest.raises(ScanError, match=r"square RGB image .* shape \(4, 5, 3\)"):
        geodesic_order(np.zeros((4, 5, 3), np.uint8), 1.0)
    with pytest.raises(ScanError, match=r"shape \(4, 4\)"):
        geodesic_order(np.zeros((4, 4), np.uint8), 1.0)
    with pytest.raises(ScanError, match="at least 0, got -1"):
        geodesic_order(image, -1.0)
    with pytest.raises(ScanError, match="finite"):
        edge_cost(image, float("nan"))
    with pytest.raises(ScanError, match="unknown geodesic seed mode 'corners'; evoart knows extrema, random, centre"):
        geodesic_order(image, 1.0, "corners")
    with pytest.raises(ScanError, match="not a permutation"):
        region_crossings(np.zeros(16, np.int64), np.zeros((4, 4), np.int64))
    with pytest.raises(ScanError, match=r"\(n, n\)"):
        region_crossings(np.arange(16), np.zeros(16, np.int64))
    with pytest.raises(ScanError, match="multiple"):
        coarse_view(np.zeros((5, 5, 3), np.uint8), 2)


def test_the_lambda_range_holds_the_default_and_region_crossings_counts_steps():
    assert LAMBDA_RANGE[0] == 0.0 <= DEFAULT_LAMBDA <= LAMBDA_RANGE[1]
    regions = np.array([[0, 1], [0, 1]])
    assert region_crossings(np.array([0, 1, 2, 3]), regions) == 3  # 0 1 | 0 1
    assert region_crossings(np.array([0, 2, 1, 3]), regions) == 1  # 0 0 | 1 1
