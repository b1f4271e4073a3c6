"""The geodesic scan (issue 18): within one scale of the pyramid, the order in which the
tokens are generated follows the image's own structure.

The order is computed from the coarser scale, which is already known (the training
image's own coarser scale at training time, the scale just generated when sampling),
upsampled to the current size n. Numpy only; the model is told the next position at
each step, so the order may differ from image to image.

1. **Cost** (``edge_cost``): 1 + lam * |grad I| per pixel, with I the colour image in
   [0, 1] and |grad I| the Euclidean norm over R, G, B of the x and y central
   differences (one-sided at the border), in intensity per pixel. A flat pixel costs 1
   per pixel of path; a pixel on an edge costs more, so paths go round edges.
2. **Seeds** (``seed_points``, a gene with the values of ``SEED_MODES``):
   ``extrema``: the coarse image's local extrema of luminance, a plateau counting once
   (a connected region, flat up to ``PLATEAU_TOLERANCE``, whose neighbours are all
   darker, or all brighter), the ``MAX_EXTREMA`` that stand out most from their
   surroundings (the smallest step across the border, times the plateau's area);
   ``random``: ``RANDOM_SEEDS`` points drawn from ``default_rng(RANDOM_SEEDS_BASE + n)``,
   the same for every image of that size; ``centre``: the pixel (n // 2, n // 2).
3. **Distance** (``geodesic_distance``): multi-source Dijkstra on the 8-connected pixel
   grid, an edge costing the mean of its two pixels' costs times its length (1 or
   sqrt 2), giving each pixel its geodesic distance and its nearest seed. That heap is
   the definition; a batch of images is computed all at once by relaxation
   (``geodesic_distances``), to the same bits and about 1.5x faster an image.
4. **Order** (``geodesic_order``): the geodesic cells are filled one after another (in
   the order of their seeds), each in order of distance from its seed, ties by the
   flat index. Sorting all pixels by distance alone would interleave fronts growing
   from several seeds in different regions, and so jump across edges at every step;
   cell by cell, a region is filled along paths inside it before the scan moves on.
"""

from __future__ import annotations

import heapq
import math
from functools import lru_cache

import numpy as np

from ..ar_genes import GEO_LAMBDA, GEO_SEEDS, LATER_AR_GENES
from .scans import ScanError

SEED_MODES = GEO_SEEDS  # the genes' vocabulary (ar_genes), read here
# lam, a gene: 0 ignores the image (cells and rings of the plain grid distance). Across
# an edge of luminance contrast 0.2 (the weakest of the two-region test images) the
# central differences give ~0.1 per pixel over a band of ~2 pixels, so lam = 200 makes
# that edge cost ~40 flat pixels, more than a path round a region of a 32 px image;
# a full-contrast edge then costs ~350, more than the perimeter of a 64 px image. On
# the test images the crossings level off there (docs/GEODESIC.md: 3.3 at 100, 2.3 at
# 200, 2.2 at 400); above 400 nothing more is gained, so the range stops there.
LAMBDA_RANGE = GEO_LAMBDA                       # the gene's range (ar_genes)
DEFAULT_LAMBDA = LATER_AR_GENES["geo_lambda"]   # and its default
MAX_EXTREMA = 4
# luminance steps (0..255) up to which neighbouring pixels belong to one plateau: the
# rounding of an area mean and the ringing of a Lanczos-resampled flat area
PLATEAU_TOLERANCE = 4
RANDOM_SEEDS = 4
RANDOM_SEEDS_BASE = 1818  # the random seed points of size n come from default_rng(1818 + n)

# Rec. 709 luma weights as integers, so that equal colours give exactly equal luminance
_LUMA = np.array([2126, 7152, 722], np.int64)
# the 8 neighbours (dy, dx) and the length of the step to each
_STEPS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
_SQRT2 = math.sqrt(2.0)


def _check_image(image: np.ndarray) -> int:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = getattr(image, "dtype", type(image).__name__)
        raise ScanError(f"the geodesic scan needs a uint8 (n, n, 3) image, got {got}")
    if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] != 3 or image.shape[0] < 1:
        raise ScanError(f"the geodesic scan needs a square RGB image (n, n, 3), got shape {image.shape}")
    return int(image.shape[0])


def _check_lambda(lam: float) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)):
        raise ScanError(f"the geodesic scan's lambda must be a number, got {lam!r}")
    if not math.isfinite(float(lam)) or lam < 0:
        raise ScanError(f"the geodesic scan's lambda must be finite and at least 0, got {lam!r}")
    return float(lam)


def edge_cost(image: np.ndarray, lam: float) -> np.ndarray:
    """Cost of each pixel, float64 (n, n): 1 + lam * |grad I|.

    I is the uint8 image scaled to [0, 1] per channel; |grad I| is the Euclidean norm
    over R, G and B of the central differences along x and y (one-sided at the border),
    in intensity per pixel: at most sqrt(6)/2 ~ 1.22, and about sqrt(3)/2 across a
    black-to-white step. The cost is a length multiplier (a path through flat pixels
    costs its length in pixels), so lam is in pixels per unit of gradient."""
    n = _check_image(image)
    lam = _check_lambda(lam)
    if n == 1:
        return np.ones((1, 1), np.float64)
    return _edge_costs(image[None], lam)[0]


def _edge_costs(images: np.ndarray, lam: float) -> np.ndarray:
    """``edge_cost`` of each image of a checked batch (N, n, n, 3), n > 1: (N, n, n)."""
    values = images.astype(np.float64) / 255.0
    gy, gx = np.gradient(values, axis=(1, 2))
    return 1.0 + lam * np.sqrt((gx * gx + gy * gy).sum(axis=3))


@lru_cache(maxsize=16)
def _neighbours(n: int) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[float, ...], ...]]:
    """For each flat position of an n x n grid, its 8-connected neighbours and the
    lengths of the steps to them (cached: the grid is the same for every image)."""
    ys, xs = np.divmod(np.arange(n * n), n)
    nbrs: list[list[int]] = [[] for _ in range(n * n)]
    lengths: list[list[float]] = [[] for _ in range(n * n)]
    for dy, dx in _STEPS:
        ok = (ys + dy >= 0) & (ys + dy < n) & (xs + dx >= 0) & (xs + dx < n)
        length = _SQRT2 if dy and dx else 1.0
        for p in np.flatnonzero(ok).tolist():
            nbrs[p].append(p + dy * n + dx)
            lengths[p].append(length)
    return tuple(map(tuple, nbrs)), tuple(map(tuple, lengths))


def _shifted(a: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """``a`` (N, n, n) seen from each pixel's neighbour (dy, dx): out[:, y, x] is
    a[:, y + dy, x + dx], or ``fill`` where that is off the grid."""
    n = a.shape[1]
    out = np.full_like(a, fill)
    ys, yd = (slice(0, n - dy), slice(dy, n)) if dy >= 0 else (slice(-dy, n), slice(0, n + dy))
    xs, xd = (slice(0, n - dx), slice(dx, n)) if dx >= 0 else (slice(-dx, n), slice(0, n + dx))
    out[:, ys, xs] = a[:, yd, xd]
    return out


def geodesic_distances(cost: np.ndarray, seeds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``geodesic_distance`` of a batch, all at once: costs (N, n, n) and each image's
    seeds (flat positions) in; distances (N, n, n) and owners (N, n, n) out, equal to
    the heap's to the bit.

    The distances are the fixed point of d(q) = min over neighbours p of d(p) +
    (c(p) + c(q)) / 2 * length, found by relaxing all pixels of all images towards
    each of the 8 neighbours in turn until nothing changes; it is unique (every step
    costs at least 1), and each candidate is the same float sum as the heap's, so the
    distances are the heap's. The heap gives a pixel the seed of the first pixel it
    popped (smallest distance, then smallest position) among the neighbours whose step
    reaches the pixel's distance: that neighbour is its parent here, and each pixel's
    seed is read at the root of its chain of parents (pointer jumping)."""
    cost = np.asarray(cost, np.float64)
    count, n = cost.shape[0], cost.shape[1]
    half = 0.5 * cost
    weights = [(half + _shifted(half, dy, dx, np.inf)) * (_SQRT2 if dy and dx else 1.0) for dy, dx in _STEPS]
    dist = np.full((count, n * n), np.inf)
    first_seed = np.full((count, n * n), -1, np.int64)
    for i, points in enumerate(seeds):
        points = np.asarray(points, np.int64)
        unique, first = np.unique(points, return_index=True)
        dist[i, unique] = 0.0
        first_seed[i, unique] = first  # a point listed twice belongs to its first listing
    # relaxed in place inside a frame of infinity, so a neighbour is a view, not a copy
    framed = np.full((count, n + 2, n + 2), np.inf)
    inner = framed[:, 1:-1, 1:-1]
    inner[...] = dist.reshape(count, n, n)
    before = np.empty_like(inner)
    while True:
        before[...] = inner
        for (dy, dx), w in zip(_STEPS, weights):
            np.minimum(inner, framed[:, 1 + dy:1 + dy + n, 1 + dx:1 + dx + n] + w, out=inner)
        if np.array_equal(before, inner):
            break
    dist = inner.copy()
    flat = np.broadcast_to(np.arange(n * n).reshape(1, n, n), dist.shape)
    best_d = np.full(dist.shape, np.inf)
    best_p = np.full(dist.shape, n * n, np.int64)
    for (dy, dx), w in zip(_STEPS, weights):
        d_p = _shifted(dist, dy, dx, np.inf)
        p = _shifted(flat, dy, dx, n * n)
        take = (d_p + w == dist) & ((d_p < best_d) | ((d_p == best_d) & (p < best_p)))
        best_d = np.where(take, d_p, best_d)
        best_p = np.where(take, p, best_p)
    root = np.where(dist == 0.0, flat, best_p).reshape(count, n * n)
    while True:
        up = np.take_along_axis(root, root, axis=1)
        if np.array_equal(up, root):
            break
        root = up
    owner = np.take_along_axis(first_seed, root, axis=1)
    return dist, owner.reshape(count, n, n)


def geodesic_distance(cost: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multi-source Dijkstra on the 8-connected grid of ``cost`` (n, n): the geodesic
    distance of each pixel to its nearest seed (float64 (n, n)) and the index into
    ``seeds`` of that seed (int64 (n, n)). ``seeds`` are flat positions. Deterministic:
    of two equal distances the heap pops the smaller position, then the earlier seed."""
    n = cost.shape[0]
    nbrs, lengths = _neighbours(n)
    half = (0.5 * cost).ravel().tolist()
    dist = [math.inf] * (n * n)
    owner = [-1] * (n * n)
    done = [False] * (n * n)
    heap: list[tuple[float, int, int]] = []
    for s, p in enumerate(np.asarray(seeds, np.int64).tolist()):
        if dist[p] > 0.0:
            dist[p], owner[p] = 0.0, s
            heap.append((0.0, p, s))
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        d, p, s = pop(heap)
        if done[p]:
            continue
        done[p] = True
        hp = half[p]
        for q, length in zip(nbrs[p], lengths[p]):
            if done[q]:
                continue
            nd = d + (hp + half[q]) * length
            if nd < dist[q]:
                dist[q], owner[q] = nd, s
                push(heap, (nd, q, s))
    return np.array(dist, np.float64).reshape(n, n), np.array(owner, np.int64).reshape(n, n)


def _plateaus(luma: np.ndarray, tolerance: int) -> list[tuple[np.ndarray, int]]:
    """For each image of ``luma`` (N, n, n), the labels (n, n) of its plateaus:
    8-connected components whose neighbouring pixels differ in luminance by at most
    ``tolerance``, numbered by their first pixel in flat order, and their count. Every
    pixel takes the smallest flat position among the neighbours it is joined to, until
    nothing changes: then each holds its component's first pixel."""
    count, n = luma.shape[0], luma.shape[1]
    far = np.iinfo(np.int64).max // 4  # off the grid: joined to nothing
    joined = [np.abs(_shifted(luma, dy, dx, far) - luma) <= tolerance for dy, dx in _STEPS]
    framed = np.full((count, n + 2, n + 2), n * n, np.int64)
    labels = framed[:, 1:-1, 1:-1]
    labels[...] = np.arange(n * n).reshape(1, n, n)
    before = np.empty_like(labels)
    while True:
        before[...] = labels
        for (dy, dx), join in zip(_STEPS, joined):
            np.minimum(labels, np.where(join, framed[:, 1 + dy:1 + dy + n, 1 + dx:1 + dx + n], n * n), out=labels)
        if np.array_equal(before, labels):
            break
    out = []
    for image_labels in labels:
        first, numbered = np.unique(image_labels, return_inverse=True)
        out.append((numbered.reshape(n, n).astype(np.int64), len(first)))
    return out


def luminance_extrema(image: np.ndarray, limit: int = MAX_EXTREMA) -> np.ndarray:
    """Flat positions of the image's local extrema of luminance, at most ``limit``, the
    most prominent first.

    A plateau is a connected region whose neighbouring pixels differ in luminance by at
    most ``PLATEAU_TOLERANCE`` (so the rounding and ringing of a resampled flat area do
    not break it into pieces); it is an extremum, counted once, when every pixel next to
    it is darker than its neighbour inside (a maximum) or every one brighter (a minimum).
    Extrema are ranked by their weight: the smallest step across their border times
    their number of pixels, so a large region that stands out comes before a speck of
    anti-aliasing (ties: first position). A flat image, or a smooth ramp, is one plateau,
    so one point. The point of a plateau is its deepest pixel (the one farthest inside,
    ``_depth``), of those the nearest its centroid, then the first in flat order."""
    _check_image(image)
    return _extrema_of_batch(image[None], limit)[0]


def _extrema_of_batch(images: np.ndarray, limit: int = MAX_EXTREMA) -> list[np.ndarray]:
    """``luminance_extrema`` of each image of a batch (N, n, n, 3)."""
    lumas = images.astype(np.int64) @ _LUMA
    plateaus = _plateaus(lumas, PLATEAU_TOLERANCE * int(_LUMA.sum()))
    depths = _depth(np.stack([labels for labels, _ in plateaus]))
    return [_extrema(luma, labels, count, depth, limit)
            for luma, (labels, count), depth in zip(lumas, plateaus, depths)]


def _extrema(luma: np.ndarray, labels: np.ndarray, count: int, depth: np.ndarray, limit: int) -> np.ndarray:
    n = luma.shape[0]
    # for each plateau, the extreme steps from a pixel inside to a neighbour outside
    big = np.iinfo(np.int64).max
    rise = np.full(count, -big)  # the largest step (outside - inside)
    fall = np.full(count, big)  # the smallest
    padded_l = np.pad(labels, 1, constant_values=-1)
    padded_v = np.pad(luma, 1)
    for dy, dx in _STEPS:
        other_l = padded_l[1 + dy:1 + dy + n, 1 + dx:1 + dx + n]
        other_v = padded_v[1 + dy:1 + dy + n, 1 + dx:1 + dx + n]
        border = (other_l >= 0) & (other_l != labels)
        step = other_v[border] - luma[border]
        np.maximum.at(rise, labels[border], step)
        np.minimum.at(fall, labels[border], step)
    isolated = rise == -big  # the whole image is one plateau
    maximum = ~isolated & (rise < 0)  # every step out goes down
    minimum = ~isolated & (fall > 0)  # every step out goes up
    prominence = np.where(maximum, -rise, 0) + np.where(minimum, fall, 0)
    sizes = np.bincount(labels.ravel(), minlength=count)
    ids = np.flatnonzero(isolated | maximum | minimum)
    weight = prominence * sizes
    ids = ids[np.lexsort((ids, -weight[ids]))][:limit]
    depth = depth.ravel()
    points = []
    ys, xs = np.divmod(np.arange(n * n), n)
    for k in ids.tolist():
        members = np.flatnonzero(labels.ravel() == k)
        cy, cx = ys[members].mean(), xs[members].mean()
        d2 = (ys[members] - cy) ** 2 + (xs[members] - cx) ** 2
        # the deepest pixel, then the nearest the centroid, then the first
        points.append(int(members[np.lexsort((members, d2, -depth[members]))[0]]))
    return np.array(points, np.int64)


def _depth(labels: np.ndarray) -> np.ndarray:
    """How many 8-connected erosions each pixel survives inside its plateau, the image's
    border counting as the plateau's border, for each image of ``labels`` (N, n, n):
    the seed of a plateau is its deepest pixel, away from the edges, where the cost is
    high (a plateau's centroid may lie on its rim, or outside it)."""
    alive = np.ones(labels.shape, bool)
    depth = np.zeros(labels.shape, np.int64)
    same = [_shifted(labels, dy, dx, -1) == labels for dy, dx in _STEPS]
    while alive.any():
        keep = alive.copy()
        for (dy, dx), inside in zip(_STEPS, same):
            keep &= inside & _shifted(alive, dy, dx, False)
        depth += keep
        alive = keep
    return depth


def random_seed_points(n: int) -> np.ndarray:
    """``RANDOM_SEEDS`` distinct flat positions (fewer if the image has fewer pixels),
    drawn from ``default_rng(RANDOM_SEEDS_BASE + n)``: the same for every image of size n."""
    rng = np.random.default_rng(RANDOM_SEEDS_BASE + n)
    return rng.choice(n * n, size=min(RANDOM_SEEDS, n * n), replace=False).astype(np.int64)


def seed_points(image: np.ndarray, seeds: str = "extrema") -> np.ndarray:
    """The seed points of one of ``SEED_MODES``, as flat positions, in the order their
    cells are filled."""
    n = _check_image(image)
    if seeds == "extrema":
        return luminance_extrema(image)
    if seeds == "random":
        return random_seed_points(n)
    if seeds == "centre":
        return np.array([(n // 2) * n + n // 2], np.int64)
    raise ScanError(f"unknown geodesic seed mode {seeds!r}; evoart knows {', '.join(SEED_MODES)}")


def geodesic_order(image: np.ndarray, lam: float = DEFAULT_LAMBDA, seeds: str = "extrema") -> np.ndarray:
    """The geodesic scan of an image (n, n, 3) uint8, the coarser scale upsampled to the
    size of the scale being generated: an int64 permutation of the n * n flat positions
    y * n + x. Cells of the seeds one after another, each by geodesic distance from its
    seed, ties by position; the same image, lam and seeds always give the same order."""
    _check_image(image)
    return geodesic_orders(image[None], lam, seeds)[0]


def geodesic_orders(images: np.ndarray, lam: float = DEFAULT_LAMBDA, seeds: str = "extrema") -> np.ndarray:
    """``geodesic_order`` of each image of a batch (N, n, n, 3): int64 (N, n * n),
    computed for the whole batch at once (``geodesic_distances``)."""
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        raise ScanError(f"geodesic_orders needs a batch of images (N, n, n, 3), got {getattr(images, 'shape', images)!r}")
    if seeds not in SEED_MODES:
        raise ScanError(f"unknown geodesic seed mode {seeds!r}; evoart knows {', '.join(SEED_MODES)}")
    n = images.shape[1]
    if len(images) == 0:
        return np.zeros((0, n * n), np.int64)
    _check_image(images[0])
    lam = _check_lambda(lam)
    if n == 1:
        return np.zeros((len(images), 1), np.int64)
    cost = _edge_costs(images, lam)
    points = _extrema_of_batch(images) if seeds == "extrema" else [seed_points(images[0], seeds)] * len(images)
    dist, owner = geodesic_distances(cost, points)
    position = np.broadcast_to(np.arange(n * n), (len(images), n * n))
    return np.lexsort((position, dist.reshape(len(images), -1), owner.reshape(len(images), -1)), axis=-1).astype(np.int64)


def region_crossings(order: np.ndarray, regions: np.ndarray) -> int:
    """How many consecutive steps of ``order`` go from one region to another; ``regions``
    is an (n, n) array of integer labels, ``order`` a permutation of its n * n positions."""
    regions = np.asarray(regions)
    if regions.ndim != 2 or regions.shape[0] != regions.shape[1]:
        raise ScanError(f"regions must be an (n, n) array of labels, got shape {regions.shape}")
    order = np.asarray(order)
    size = regions.size
    if order.shape != (size,) or not np.array_equal(np.sort(order), np.arange(size)):
        raise ScanError(f"the order is not a permutation of the {size} positions of the regions")
    labels = regions.ravel()[order]
    return int(np.count_nonzero(labels[1:] != labels[:-1]))


def coarse_view(image: np.ndarray, factor: int = 2) -> np.ndarray:
    """What the model knows of an image before generating its scale: the image averaged
    over factor x factor blocks (area mean, rounded), upsampled back by nearest
    neighbour. uint8 (n, n, 3) in, the same out; n must be a multiple of ``factor``."""
    n = _check_image(image)
    if factor < 1 or n % factor:
        raise ScanError(f"cannot average a {n} px image over blocks of {factor}: the size must be a multiple of it")
    m = n // factor
    blocks = image.astype(np.float64).reshape(m, factor, m, factor, 3).mean(axis=(1, 3))
    coarse = np.rint(blocks).astype(np.uint8)
    return np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1)


def two_region_images(count: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Issue 18's test images: two flat colours split by a straight edge at a random
    orientation through a random point of the middle half of the image. Returns the
    images, uint8 (count, size, size, 3), and the region of each pixel, int64 (count,
    size, size): 0 or 1 by the side of the line its centre lies on."""
    rng = np.random.default_rng(seed)
    centres = (np.arange(size) + 0.5) / size
    yy, xx = centres[:, None], centres[None, :]
    images = np.empty((count, size, size, 3), np.uint8)
    regions = np.empty((count, size, size), np.int64)
    for i in range(count):
        angle = rng.uniform(0.0, 2.0 * math.pi)
        px, py = rng.uniform(0.25, 0.75, 2)
        side = ((xx - px) * math.cos(angle) + (yy - py) * math.sin(angle)) >= 0
        while True:  # two colours whose luminance differs by at least a fifth
            colours = rng.integers(0, 256, (2, 3))
            if abs(int((colours[0] - colours[1]) @ _LUMA)) >= 0.2 * 255 * 10000:
                break
        regions[i] = side
        images[i] = colours[side.astype(np.int64)]
    return images, regions
