"""Image-set metrics that score an individual's generator against the real data.

Why this module looks the way it does:

* The genetic algorithm scores a whole population (say 20 generators) against
  the *same* real image set, so every metric is a factory that does the
  real-side work once and returns a ``Scorer`` whose ``score(fake)`` is cheap.
* Metrics are looked up by name from a small registry (in the style of
  StyleGAN3's ``metric_main``) so configs and logs can name them, and every
  metric says whether lower or higher is better and carries a version number
  that changes whenever its values would change (so stored fitness values from
  different versions are never compared by accident).
* All randomness comes from explicit seeds; the same inputs and seed give the
  same numbers on every run, and every individual is scored with the same
  random projections and patch positions (common random numbers), which makes
  the differences *between* individuals much less noisy than each value alone.

Images everywhere are float tensors shaped (N, 3, H, W) with values in [-1, 1].

Metrics:

``swd``
    Multi-scale Sliced Wasserstein Distance on Laplacian-pyramid patches, the
    Progressive GAN metric (Karras et al. 2018), following the recipe of
    ``metrics/sliced_wasserstein.py`` in tkarras/progressive_growing_of_gans.
    Lower is better.
``diversity``
    Mean pairwise distance between generated images in a cheap embedding,
    relative to the same quantity for the real set. 1.0 means as varied as the
    data; a collapsed generator scores near 0. Higher is better.

Plus :func:`pairwise_realism`, the scale-free realism used when one
individual's discriminator judges another individual's generator, and
:func:`swd_floor`, the real-vs-real SWD to report beside a score.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MetricInfo",
    "Scorer",
    "MetricFactory",
    "register_metric",
    "get_metric",
    "get_metric_info",
    "list_metrics",
    "SWDScorer",
    "make_swd",
    "swd_floor",
    "swd_num_levels",
    "laplacian_pyramid",
    "wasserstein_1d_sorted",
    "pairwise_realism",
    "DiversityScorer",
    "make_diversity",
]

Direction = Literal["lower", "higher"]

# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricInfo:
    """What a caller needs to know about a metric without computing it.

    ``direction`` tells the GA whether to minimise or maximise; ``version``
    changes whenever the metric's numbers would change, so results stored by
    an older version are recognisably not comparable.
    """

    name: str
    direction: Direction
    version: int
    description: str


class Scorer(Protocol):
    """A metric bound to one real image set (real-side work already done)."""

    def score(self, fake: Tensor) -> dict[str, float]:
        """Score a set of generated images.

        Returns the main value under the metric's own name plus any parts
        (e.g. per-level values), all as plain floats.
        """
        ...


# factory(real, *, seed, **options) -> Scorer
MetricFactory = Callable[..., Scorer]

_REGISTRY: dict[str, tuple[MetricInfo, MetricFactory]] = {}


def register_metric(
    name: str, *, direction: Direction, version: int, description: str
) -> Callable[[MetricFactory], MetricFactory]:
    """Decorator that registers a metric factory under ``name``.

    The factory must have the signature ``factory(real, *, seed, **options)``
    and return a :class:`Scorer`. Registering a name twice is an error rather
    than a silent override, so two modules cannot fight over a metric name.
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"version must be a non-negative int, got {version!r}")
    if not name or not isinstance(name, str):
        raise ValueError(f"metric name must be a non-empty string, got {name!r}")

    def decorator(factory: MetricFactory) -> MetricFactory:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is already registered")
        info = MetricInfo(
            name=name, direction=direction, version=version, description=description
        )
        _REGISTRY[name] = (info, factory)
        factory.metric_info = info  # type: ignore[attr-defined]
        return factory

    return decorator


def _lookup(name: str) -> tuple[MetricInfo, MetricFactory]:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise KeyError(f"unknown metric {name!r}; known metrics: {known}") from None


def get_metric(name: str) -> MetricFactory:
    """The factory registered under ``name`` (``KeyError`` lists known names)."""
    return _lookup(name)[1]


def get_metric_info(name: str) -> MetricInfo:
    """The :class:`MetricInfo` registered under ``name``."""
    return _lookup(name)[0]


def list_metrics() -> list[MetricInfo]:
    """All registered metrics, sorted by name."""
    return [info for _, (info, _f) in sorted(_REGISTRY.items())]


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def _sub_seed(seed: int, purpose: str) -> int:
    """A stable 63-bit seed derived from ``seed`` for one purpose.

    Why: real patches, fake patches and projection directions each need their
    own stream, and the streams must not depend on call order or on Python's
    randomised ``hash``.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    digest = hashlib.blake2b(f"{int(seed)}:{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _generator(seed: int, purpose: str) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(_sub_seed(seed, purpose))


def _check_images(images: Tensor, what: str, *, min_count: int = 1) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{what} must be shaped (N, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{what} must be a float tensor in [-1, 1], got {images.dtype}")
    if images.shape[0] < min_count:
        raise ValueError(f"{what} needs at least {min_count} images, got {images.shape[0]}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{what} contain NaN or infinite values")


def _sort_rows_(x: Tensor) -> Tensor:
    """Sort each row ascending, in place where possible (``x`` must be a scratch tensor).

    Why numpy on CPU: its SIMD sort is ~3-4x faster than ``torch.sort`` on one
    thread, and sorting the projections is the dominant cost of SWD. Sorted
    values are the same whichever algorithm produced them.
    """
    if x.device.type == "cpu":
        x = x.detach().contiguous()
        x.numpy().sort(axis=-1)
        return x
    return torch.sort(x, dim=-1).values


# ---------------------------------------------------------------------------
# Laplacian pyramid (matches the reference's scipy/cv2-style pyrDown/pyrUp)
# ---------------------------------------------------------------------------

_BINOMIAL_5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16.0


def _blur_separable(x: Tensor, *, gain: float, stride: int = 1) -> Tensor:
    """Filter an already mirror-padded ``x`` with the 5x5 binomial kernel (/256) times ``gain``.

    The 5x5 kernel is the outer product of [1, 4, 6, 4, 1] / 16 with itself,
    so two 1-D passes give the same result as the reference's 2-D convolution
    (up to float rounding) at 2/5 of the cost.
    """
    c = x.shape[1]
    k = (_BINOMIAL_5 * math.sqrt(gain)).to(device=x.device, dtype=torch.float32)
    x = F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), stride=(stride, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), stride=(1, stride), groups=c)


def _pyr_down(x: Tensor) -> Tensor:
    """Blur with the 5x5 binomial filter (mirror borders) and keep every 2nd pixel.

    Same as the reference's ``pyr_down`` (scipy ``mode="mirror"`` is torch's
    ``"reflect"``); a stride-2 convolution computes exactly the kept pixels.
    """
    return _blur_separable(F.pad(x, (2, 2, 2, 2), mode="reflect"), gain=1.0, stride=2)


def _pyr_up(x: Tensor) -> Tensor:
    """Zero-insert to twice the size and blur with 4x the binomial filter.

    Same as the reference's ``pyr_up``: the zero-inserted image is mirror-padded
    *before* filtering, which is what makes the borders match cv2.pyrUp.
    """
    n, c, h, w = x.shape
    up = x.new_zeros((n, c, 2 * h, 2 * w))
    up[:, :, ::2, ::2] = x
    return _blur_separable(F.pad(up, (2, 2, 2, 2), mode="reflect"), gain=4.0)


def laplacian_pyramid(images: Tensor, *, num_levels: int) -> list[Tensor]:
    """Laplacian pyramid, finest level first, coarsest (a Gaussian level) last.

    Why a Laplacian pyramid: each level holds the detail of one octave of
    spatial frequency, so SWD per level says at which scale fakes differ from
    the data (fine texture vs. coarse layout).
    """
    if num_levels < 1:
        raise ValueError(f"num_levels must be >= 1, got {num_levels}")
    h, w = images.shape[-2:]
    factor = 2 ** (num_levels - 1)
    if h % factor or w % factor:
        raise ValueError(
            f"image size {h}x{w} must be divisible by {factor} for {num_levels} pyramid levels"
        )
    pyramid = [images.to(torch.float32)]
    for _ in range(1, num_levels):
        down = _pyr_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - _pyr_up(down)
        pyramid.append(down)
    return pyramid


def swd_num_levels(size: int, *, min_resolution: int = 16) -> int:
    """Number of pyramid levels: resolutions ``size, size/2, ...`` that are >= ``min_resolution``."""
    levels, res = 0, size
    while res >= min_resolution:
        levels += 1
        res //= 2
    return levels


# ---------------------------------------------------------------------------
# Sliced Wasserstein Distance
# ---------------------------------------------------------------------------


def _extract_descriptors(
    level: Tensor, *, nhood_size: int, nhoods_per_image: int, generator: torch.Generator
) -> Tensor:
    """Random ``nhood_size``² patches, ``nhoods_per_image`` per image, as (M, C, k, k).

    Like the reference, every patch lies fully inside the image and positions
    are uniform; unlike it, all patches are gathered with one advanced-indexing
    call rather than per image.
    """
    n, c, h, w = level.shape
    k = nhood_size
    if h < k or w < k:
        raise ValueError(f"pyramid level {h}x{w} is smaller than the {k}x{k} patch")
    m = n * nhoods_per_image
    y0 = torch.randint(0, h - k + 1, (m,), generator=generator).to(level.device)
    x0 = torch.randint(0, w - k + 1, (m,), generator=generator).to(level.device)
    offs = torch.arange(k, device=level.device)
    img = torch.arange(n, device=level.device).repeat_interleave(nhoods_per_image)
    chan = torch.arange(c, device=level.device)
    return level[
        img[:, None, None, None],
        chan[None, :, None, None],
        (y0[:, None] + offs)[:, None, :, None],
        (x0[:, None] + offs)[:, None, None, :],
    ]


# Smallest per-channel std a descriptor set is divided by. The reference
# divides by the raw std, which is 0 (-> NaN) for a generator that outputs a
# constant image -- common in a GA. 1e-5 is far below one 8-bit grey level
# (2/255) in [-1, 1] units, so real images are never affected.
_STD_FLOOR = 1e-5


def _finalize_descriptors(desc: Tensor) -> Tensor:
    """Normalise each channel to zero mean / unit std over the whole set, then flatten.

    As the reference's ``finalize_descriptors``: each set (real, fake) is
    normalised by its *own* statistics (population std).
    """
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True, correction=0).clamp_min(_STD_FLOOR)
    return ((desc - mean) / std).reshape(desc.shape[0], -1)


@dataclass(frozen=True)
class _MergePlan:
    """How to compare quantile functions of n and m sorted samples exactly."""

    block: tuple[str, int] | None  # ("a", k): n == k*m; ("b", k): m == k*n
    ia: Tensor | None
    ib: Tensor | None
    weights: Tensor | None


def _merge_plan(n: int, m: int, device: torch.device) -> _MergePlan:
    if n % m == 0:
        return _MergePlan(block=("a", n // m), ia=None, ib=None, weights=None)
    if m % n == 0:
        return _MergePlan(block=("b", m // n), ia=None, ib=None, weights=None)
    # Breakpoints of both quantile functions on the common grid 1/(n*m):
    # a's step i ends at i*m, b's step j ends at j*n.
    t = torch.unique(
        torch.cat([torch.arange(1, n + 1, dtype=torch.int64) * m,
                   torch.arange(1, m + 1, dtype=torch.int64) * n])
    )
    ia = (t + m - 1) // m - 1
    ib = (t + n - 1) // n - 1
    weights = torch.diff(t, prepend=t.new_zeros(1)).to(torch.float64) / (n * m)
    return _MergePlan(
        block=None,
        ia=ia.to(device),
        ib=ib.to(device),
        weights=weights.to(device=device, dtype=torch.float32),
    )


def _w1_rows(a: Tensor, b: Tensor, plan: _MergePlan) -> Tensor:
    if plan.block is not None:
        side, k = plan.block
        if side == "a":  # each b value faces a block of k consecutive a values
            return (a.reshape(a.shape[0], -1, k) - b[:, :, None]).abs().mean(dim=(1, 2))
        return (b.reshape(b.shape[0], -1, k) - a[:, :, None]).abs().mean(dim=(1, 2))
    assert plan.ia is not None and plan.ib is not None and plan.weights is not None
    return ((a[:, plan.ia] - b[:, plan.ib]).abs() * plan.weights).sum(dim=1)


def wasserstein_1d_sorted(
    a_sorted: Tensor, b_sorted: Tensor, *, chunk_rows: int = 32, _plan: _MergePlan | None = None
) -> Tensor:
    """Exact W1 between the empirical distributions in each row of two sorted matrices.

    ``a_sorted`` is (D, n), ``b_sorted`` is (D, m), each row ascending; returns (D,).
    For n == m this is the reference's ``mean(|sort(A) - sort(B)|)``; the
    reference requires equal counts, but here the real set is fixed while fake
    sets may be any size, so unequal counts are handled exactly by integrating
    the difference of the two quantile functions. Rows are processed in chunks
    to keep temporaries small.
    """
    if a_sorted.ndim != 2 or b_sorted.ndim != 2 or a_sorted.shape[0] != b_sorted.shape[0]:
        raise ValueError(
            f"expected (D, n) and (D, m), got {tuple(a_sorted.shape)} and {tuple(b_sorted.shape)}"
        )
    n, m = a_sorted.shape[1], b_sorted.shape[1]
    if n == 0 or m == 0:
        raise ValueError("cannot compare an empty sample")
    plan = _plan if _plan is not None else _merge_plan(n, m, a_sorted.device)
    out = [
        _w1_rows(a_sorted[i : i + chunk_rows], b_sorted[i : i + chunk_rows], plan)
        for i in range(0, a_sorted.shape[0], chunk_rows)
    ]
    return torch.cat(out)


@dataclass
class SWDScorer:
    """SWD against one real image set; real descriptors are projected and sorted once.

    Memory: per pyramid level the scorer keeps ``dirs x (n_real * nhoods_per_image)``
    float32 sorted projections, i.e. 128 MiB per level for 512 real images with
    the default settings.
    """

    seed: int
    image_size: tuple[int, int]
    resolutions: tuple[int, ...]
    nhood_size: int
    nhoods_per_image: int
    dir_repeats: int
    dirs_per_repeat: int
    device: torch.device
    directions: list[Tensor] = field(repr=False)  # per level, (D, C*k*k), unit rows
    real_sorted: list[Tensor] = field(repr=False)  # per level, (D, n_real_desc), ascending
    _plans: dict[int, _MergePlan] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return "swd"

    def _level_descriptors(self, images: Tensor, generator: torch.Generator) -> list[Tensor]:
        pyramid = laplacian_pyramid(images, num_levels=len(self.resolutions))
        return [
            _finalize_descriptors(
                _extract_descriptors(
                    level,
                    nhood_size=self.nhood_size,
                    nhoods_per_image=self.nhoods_per_image,
                    generator=generator,
                )
            )
            for level in pyramid
        ]

    def _project_sorted(self, desc: Tensor, level: int) -> Tensor:
        return _sort_rows_(self.directions[level] @ desc.T)

    def score(self, fake: Tensor) -> dict[str, float]:
        """SWD x 1e3 per pyramid level (``swd_<res>``) and their mean (``swd``).

        Fake patch positions come from a generator re-seeded on every call, so
        scoring is a pure function of (real set, seed, fake images).
        """
        _check_images(fake, "fake images")
        if tuple(fake.shape[-2:]) != self.image_size:
            raise ValueError(
                f"fake images are {tuple(fake.shape[-2:])} but real images are {self.image_size}"
            )
        with torch.no_grad():
            images = fake.detach().to(device=self.device, dtype=torch.float32)
            descs = self._level_descriptors(images, _generator(self.seed, "swd/fake-patches"))
            m = descs[0].shape[0]
            n = self.real_sorted[0].shape[1]
            if m not in self._plans:
                self._plans[m] = _merge_plan(n, m, self.device)
            result: dict[str, float] = {}
            per_level = []
            for lvl, (res, desc) in enumerate(zip(self.resolutions, descs)):
                fake_sorted = self._project_sorted(desc, lvl)
                dists = wasserstein_1d_sorted(
                    self.real_sorted[lvl], fake_sorted, _plan=self._plans[m]
                )
                # Reference: mean over directions within a repeat, then over
                # repeats -- the same as the mean over all directions.
                value = float(dists.mean()) * 1e3
                per_level.append(value)
                result[f"swd_{res}"] = value
        return {"swd": float(np.mean(per_level)), **result}


@register_metric(
    "swd",
    direction="lower",
    version=1,
    description=(
        "Multi-scale sliced Wasserstein distance (x1e3) between 7x7 Laplacian-pyramid "
        "patches of fake and real images (Karras et al. 2018); mean over levels."
    ),
)
def make_swd(
    real: Tensor,
    *,
    seed: int,
    nhood_size: int = 7,
    nhoods_per_image: int = 128,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    min_resolution: int = 16,
) -> SWDScorer:
    """Build an SWD scorer for ``real``; all real-side work happens here, once.

    ``seed`` fixes the projection directions and both sets' patch positions,
    so every individual scored by this scorer faces the same random choices.
    Pyramid levels run from the image size down to ``min_resolution`` (16 px,
    as in the reference), so a 16 px image has one level, 32 px two, 64 px three.
    """
    _check_images(real, "real images", min_count=2)
    for label, v in (
        ("nhood_size", nhood_size),
        ("nhoods_per_image", nhoods_per_image),
        ("dir_repeats", dir_repeats),
        ("dirs_per_repeat", dirs_per_repeat),
        ("min_resolution", min_resolution),
    ):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{label} must be a positive int, got {v!r}")
    h, w = real.shape[-2:]
    num_levels = swd_num_levels(min(h, w), min_resolution=min_resolution)
    if num_levels < 1:
        raise ValueError(f"images of {h}x{w} are smaller than min_resolution={min_resolution}")
    if min(h, w) // 2 ** (num_levels - 1) < nhood_size:
        raise ValueError(f"coarsest level is smaller than the {nhood_size}px patch")
    resolutions = tuple(h // 2**i for i in range(num_levels))

    device = real.device
    dir_gen = _generator(seed, "swd/directions")
    dim = 3 * nhood_size * nhood_size
    n_dirs = dir_repeats * dirs_per_repeat
    directions = []
    for _ in range(num_levels):
        d = torch.randn(n_dirs, dim, generator=dir_gen, dtype=torch.float32)
        directions.append((d / d.norm(dim=1, keepdim=True)).to(device))

    scorer = SWDScorer(
        seed=int(seed),
        image_size=(h, w),
        resolutions=resolutions,
        nhood_size=nhood_size,
        nhoods_per_image=nhoods_per_image,
        dir_repeats=dir_repeats,
        dirs_per_repeat=dirs_per_repeat,
        device=device,
        directions=directions,
        real_sorted=[],
    )
    with torch.no_grad():
        images = real.detach().to(dtype=torch.float32)
        descs = scorer._level_descriptors(images, _generator(seed, "swd/real-patches"))
        scorer.real_sorted = [scorer._project_sorted(d, lvl) for lvl, d in enumerate(descs)]
    return scorer


def swd_floor(
    real: Tensor,
    n: int,
    seed: int,
    *,
    repeats: int = 5,
    n_real: int | None = None,
    **options,
) -> tuple[float, float]:
    """Real-vs-real SWD: ``(mean, std)`` over ``repeats`` pairs of disjoint random subsets.

    Why: SWD of a finite sample is never 0, even for a perfect generator, and
    the floor depends on the sample sizes. Report this beside a score: a fake
    set at ``n`` images scoring within a few std of the floor is
    indistinguishable from real data by this metric.

    Each repeat builds a scorer (same ``seed`` as a real run would use, so the
    same directions and patch positions) on ``n_real`` images (default ``n``)
    and scores ``n`` other images. To match a run that scores 128 fakes
    against 512 reals, use ``n=128, n_real=512``. ``options`` go to
    :func:`make_swd`. ``std`` is the sample std (0.0 for one repeat).
    """
    _check_images(real, "real images", min_count=2)
    n_ref = n if n_real is None else n_real
    if n < 1 or n_ref < 2:
        raise ValueError(f"need n >= 1 and n_real >= 2, got n={n}, n_real={n_ref}")
    if n + n_ref > real.shape[0]:
        raise ValueError(
            f"need n + n_real = {n + n_ref} images for disjoint subsets, have {real.shape[0]}"
        )
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    subset_gen = _generator(seed, "swd/floor-subsets")
    values = []
    for _ in range(repeats):
        perm = torch.randperm(real.shape[0], generator=subset_gen).to(real.device)
        reference = real[perm[:n_ref]]
        other = real[perm[n_ref : n_ref + n]]
        values.append(make_swd(reference, seed=seed, **options).score(other)["swd"])
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if repeats > 1 else 0.0
    return float(arr.mean()), std


# ---------------------------------------------------------------------------
# Pairwise realism
# ---------------------------------------------------------------------------


def pairwise_realism(fake_scores: Tensor, real_scores: Tensor) -> float:
    """Share of (fake, real) pairs where the fake scores at least as "real" as the real.

    ``mean over all pairs of 1[f >= r]`` (ties count for the fake), computed
    exactly in O((F+R) log R) by sorting the real scores and counting with
    ``searchsorted`` -- no F x R matrix. Why this and not the raw scores:
    discriminators of different individuals output on arbitrary scales, but
    this rank statistic (an AUC) is scale-free: 0.5 means the discriminator
    cannot tell the generator's images from real ones, 0 means it separates
    them perfectly, 1 means the fakes all look *more* real than the data.

    Inputs are flattened, so (F,) and (F, 1) both work. NaN scores raise
    ``ValueError`` (a diverged discriminator must be handled by the caller,
    not silently ranked); infinities are ordered normally.
    """
    f = torch.as_tensor(fake_scores).detach().reshape(-1).to("cpu", torch.float64)
    r = torch.as_tensor(real_scores).detach().reshape(-1).to("cpu", torch.float64)
    if f.numel() == 0 or r.numel() == 0:
        raise ValueError("pairwise_realism needs at least one fake and one real score")
    if bool(torch.isnan(f).any()) or bool(torch.isnan(r).any()):
        raise ValueError("pairwise_realism got NaN discriminator scores")
    r_sorted = torch.sort(r).values
    at_or_below = torch.searchsorted(r_sorted, f, right=True)  # #reals <= each fake
    return int(at_or_below.sum()) / (f.numel() * r.numel())


# ---------------------------------------------------------------------------
# Diversity
# ---------------------------------------------------------------------------


def _embed(images: Tensor, grid: int) -> Tensor:
    """grid x grid average-pooled colour layout, flattened (3*grid*grid dims)."""
    return F.adaptive_avg_pool2d(images.detach().to(torch.float64), grid).flatten(1)


def _mean_pairwise_distance(emb: Tensor) -> float:
    return float(F.pdist(emb).mean())


def _subsample(images: Tensor, max_images: int, generator: torch.Generator) -> Tensor:
    if images.shape[0] <= max_images:
        return images
    idx = torch.randperm(images.shape[0], generator=generator)[:max_images]
    return images[idx.to(images.device)]


@dataclass
class DiversityScorer:
    """Diversity relative to one real image set (real spread computed once)."""

    seed: int
    grid: int
    max_images: int
    image_size: tuple[int, int]
    real_spread: float

    @property
    def name(self) -> str:
        return "diversity"

    def score(self, fake: Tensor) -> dict[str, float]:
        """``diversity`` = fake spread / real spread, plus both raw spreads."""
        _check_images(fake, "fake images", min_count=2)
        if tuple(fake.shape[-2:]) != self.image_size:
            raise ValueError(
                f"fake images are {tuple(fake.shape[-2:])} but real images are {self.image_size}"
            )
        with torch.no_grad():
            sample = _subsample(fake, self.max_images, _generator(self.seed, "diversity/fake"))
            spread = _mean_pairwise_distance(_embed(sample, self.grid))
        return {
            "diversity": spread / self.real_spread,
            "diversity_fake": spread,
            "diversity_real": self.real_spread,
        }


@register_metric(
    "diversity",
    direction="higher",
    version=1,
    description=(
        "Mean pairwise L2 distance between 4x4 average-pooled images, relative to the "
        "real set: 1.0 = as varied as the data, ~0 = mode collapse."
    ),
)
def make_diversity(
    real: Tensor, *, seed: int, grid: int = 4, max_images: int = 1024
) -> DiversityScorer:
    """Build a diversity scorer for ``real``.

    Why this embedding: a 4x4 colour layout is cheap, and a collapsed generator
    (the GA's most common failure besides noise) produces near-identical
    layouts. The ratio to the real set's spread makes the number readable
    without knowing the data. Sets larger than ``max_images`` are subsampled
    (seeded) to bound the O(N^2) pairwise cost.
    """
    _check_images(real, "real images", min_count=2)
    if not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid must be a positive int, got {grid!r}")
    if not isinstance(max_images, int) or max_images < 2:
        raise ValueError(f"max_images must be an int >= 2, got {max_images!r}")
    with torch.no_grad():
        sample = _subsample(real, max_images, _generator(seed, "diversity/real"))
        real_spread = _mean_pairwise_distance(_embed(sample, grid))
    if not real_spread > 0.0 or math.isnan(real_spread):
        raise ValueError("real images have no variation at this grid; diversity is undefined")
    return DiversityScorer(
        seed=int(seed),
        grid=grid,
        max_images=max_images,
        image_size=(int(real.shape[-2]), int(real.shape[-1])),
        real_spread=real_spread,
    )


# ---------------------------------------------------------------------------
# Feature embedding: fixed random CNNs, or the user's own extractor
# ---------------------------------------------------------------------------

#: Seed of the random CNNs. A constant, not the run's seed: the embedding is part of
#: the metric's definition, so ``rkid`` and ``coverage`` values compare across runs
#: and with ``evoart score``. Changing it (or the architecture) is a new version.
EMBEDDING_SEED = 1729
#: (kernel, widths) of each random CNN; each stage halves the resolution.
_RANDOM_CNNS = ((3, (32, 64, 128, 128)),)
_EMBED_BATCH = 128
#: The random embedding's name: part of cache keys and run records.
RANDOM_EMBEDDING = "random-cnn-v1"


class _RandomCNN(torch.nn.Module):
    """A randomly initialised convolutional net that is never trained.

    Why random weights work at all: a random conv layer followed by a nonlinearity is
    a bank of random local filters; the mean and the spread of each filter's response
    over the image describe texture and structure at that scale, and stacking stages
    (each after a 2x average pool) widens the receptive field. Such embeddings rank
    generative models much as trained ones do (Naeem et al. 2020; Lee et al. 2022),
    although they are blind to some changes a trained net sees (see docs/METRICS.md).
    """

    def __init__(self, kernel: int, widths: tuple[int, ...], generator: torch.Generator):
        super().__init__()
        convs = []
        c_in = 3
        for width in widths:
            conv = torch.nn.Conv2d(c_in, width, kernel, padding=kernel // 2, padding_mode="reflect")
            fan_in = c_in * kernel * kernel
            # He initialisation for a leaky ReLU of slope 0.2: activations keep their scale.
            std = math.sqrt(2.0 / ((1 + 0.2**2) * fan_in))
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.1)
            convs.append(conv)
            c_in = width
        self.convs = torch.nn.ModuleList(convs)

    def forward(self, x: Tensor) -> Tensor:
        feats = [x.mean(dim=(2, 3)), x.std(dim=(2, 3), correction=0)]
        for i, conv in enumerate(self.convs):
            if i > 0 and min(x.shape[-2:]) >= 2:
                x = F.avg_pool2d(x, 2)
            x = F.leaky_relu(conv(x), 0.2)
            feats += [x.mean(dim=(2, 3)), x.std(dim=(2, 3), correction=0)]
        return torch.cat(feats, dim=1)


@dataclass
class Embedding:
    """Images (N, 3, H, W) in [-1, 1] -> features (N, D) float64; ``name`` identifies it."""

    name: str
    module: Callable[[Tensor], Tensor] = field(repr=False)

    def __call__(self, images: Tensor) -> Tensor:
        out = []
        with torch.no_grad():
            for i in range(0, images.shape[0], _EMBED_BATCH):
                f = self.module(images[i : i + _EMBED_BATCH].to(torch.float32))
                if f.ndim == 4:  # a feature map: average over space
                    f = f.mean(dim=(2, 3))
                if f.ndim != 2:
                    raise ValueError(
                        f"the feature extractor {self.name} returned shape {tuple(f.shape)}; "
                        "expected (N, D) or (N, C, H, W)"
                    )
                out.append(f.detach().to("cpu", torch.float64))
        feats = torch.cat(out)
        if not bool(torch.isfinite(feats).all()):
            raise ValueError(f"the feature extractor {self.name} returned NaN or infinite features")
        return feats


def random_embedding() -> Embedding:
    """The default embedding: a fixed random CNN (3x3 kernels, four stages),
    per-channel mean and standard deviation pooled at the input and after every stage
    (710 dimensions)."""
    gen = torch.Generator().manual_seed(EMBEDDING_SEED)
    nets = [_RandomCNN(k, widths, gen).eval() for k, widths in _RANDOM_CNNS]

    def embed(x: Tensor) -> Tensor:
        return torch.cat([net(x) for net in nets], dim=1)

    return Embedding(RANDOM_EMBEDDING, embed)


def embedding_name(features: str | None) -> str:
    """The name ``load_embedding(features)`` would give, without loading a model."""
    if features is None:
        return RANDOM_EMBEDDING
    import os

    path = os.path.abspath(os.path.expanduser(str(features)))
    if not os.path.isfile(path):
        raise ValueError(f"feature extractor {features} does not exist (give a TorchScript .pt file)")
    return f"torchscript:{_file_digest(path)}"


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def load_embedding(features: str | None) -> Embedding:
    """The random-CNN embedding, or a local TorchScript (``.pt``) or ``torch.export``
    (``.pt2``) feature extractor: it gets images (N, 3, H, W) in [-1, 1] and returns
    (N, D) features or (N, C, H, W) maps (averaged over space). Nothing is downloaded."""
    if features is None:
        return random_embedding()
    import os
    import warnings

    path = os.path.abspath(os.path.expanduser(str(features)))
    if not os.path.isfile(path):
        raise ValueError(f"feature extractor {features} does not exist (give a TorchScript .pt file)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still works
            if path.endswith(".pt2"):
                module = torch.export.load(path).module()
            else:
                module = torch.jit.load(path, map_location="cpu")
                module.eval()
    except Exception as exc:  # a corrupt or foreign file: say so plainly
        raise ValueError(f"{features} is not a loadable TorchScript or torch.export model: {exc}") from None
    return Embedding(f"torchscript:{_file_digest(path)}", module)


# ---------------------------------------------------------------------------
# rkid: unbiased kernel distance in the embedding
# ---------------------------------------------------------------------------

# Smallest feature std a dimension is divided by when standardising (a feature that is
# constant on the real set must not turn into infinities).
_FEATURE_STD_FLOOR = 1e-6


@dataclass
class _EmbeddedReal:
    """Real-side work shared by ``rkid`` and ``coverage``: the embedding, the real set's
    per-dimension mean and std (to standardise every set) and its standardised features."""

    embedding: Embedding = field(repr=False)
    mean: Tensor = field(repr=False)
    std: Tensor = field(repr=False)
    real: Tensor = field(repr=False)        # (n, D) standardised
    image_size: tuple[int, int]

    def features(self, images: Tensor) -> Tensor:
        _check_images(images, "fake images", min_count=2)
        if tuple(images.shape[-2:]) != self.image_size:
            raise ValueError(
                f"fake images are {tuple(images.shape[-2:])} but real images are {self.image_size}"
            )
        return (self.embedding(images) - self.mean) / self.std


def _embed_real(real: Tensor, features: str | None, embedding: Embedding | None = None) -> _EmbeddedReal:
    _check_images(real, "real images", min_count=4)
    emb = embedding or load_embedding(features)
    f = emb(real)
    mean = f.mean(dim=0)
    std = f.std(dim=0).clamp_min(_FEATURE_STD_FLOOR)
    return _EmbeddedReal(emb, mean, std, (f - mean) / std, (int(real.shape[-2]), int(real.shape[-1])))


def _poly_kernel(x: Tensor, y: Tensor) -> Tensor:
    """k(x, y) = (x.y / d + 1)^3, the KID kernel (Binkowski et al. 2018)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mean_off_diagonal(k: Tensor) -> float:
    n = k.shape[0]
    return float((k.sum() - k.diagonal().sum()) / (n * (n - 1)))


#: rkid is reported x 1e3, as KID usually is.
RKID_SCALE = 1e3


@dataclass
class RKIDScorer:
    """Unbiased squared MMD with the cubic polynomial kernel, against one real set."""

    embedded: _EmbeddedReal = field(repr=False)
    real_term: float  # mean k(x, x') over distinct real pairs, computed once

    @property
    def name(self) -> str:
        return "rkid"

    def score_features(self, f: Tensor) -> dict[str, float]:
        if f.shape[0] < 2:
            raise ValueError("rkid needs at least 2 fake images")
        fake_term = _mean_off_diagonal(_poly_kernel(f, f))
        cross = float(_poly_kernel(f, self.embedded.real).mean())
        return {"rkid": (self.real_term + fake_term - 2.0 * cross) * RKID_SCALE}

    def score(self, fake: Tensor) -> dict[str, float]:
        return self.score_features(self.embedded.features(fake))


def _make_rkid(embedded: _EmbeddedReal) -> RKIDScorer:
    return RKIDScorer(embedded, _mean_off_diagonal(_poly_kernel(embedded.real, embedded.real)))


@register_metric(
    "rkid",
    direction="lower",
    version=1,
    description=(
        "Unbiased kernel distance (KID, cubic polynomial kernel, x1e3) between fake and real "
        "images in the embedding of two fixed random CNNs (or --features); 0 = same distribution."
    ),
)
def make_rkid(real: Tensor, *, seed: int, features: str | None = None) -> RKIDScorer:
    """Build an rkid scorer for ``real``. ``seed`` is accepted for the registry's sake:
    the embedding is fixed (:data:`EMBEDDING_SEED`) and KID uses every pair, so nothing
    here is random."""
    return _make_rkid(_embed_real(real, features))


# ---------------------------------------------------------------------------
# coverage (Naeem et al. 2020)
# ---------------------------------------------------------------------------


@dataclass
class CoverageScorer:
    """Share of real images whose k-nearest-neighbour ball holds at least one fake."""

    embedded: _EmbeddedReal = field(repr=False)
    radii: Tensor = field(repr=False)  # (n,) distance of each real image to its k-th real neighbour
    k: int

    @property
    def name(self) -> str:
        return "coverage"

    def score_features(self, f: Tensor) -> dict[str, float]:
        d = torch.cdist(f, self.embedded.real)               # (m, n)
        inside = d < self.radii[None, :]
        return {
            "coverage": float(inside.any(dim=0).double().mean()),
            # density (same paper): how many real balls each fake falls in, / k; ~1 for real data
            "density": float(inside.double().sum() / (self.k * f.shape[0])),
        }

    def score(self, fake: Tensor) -> dict[str, float]:
        return self.score_features(self.embedded.features(fake))


def _make_coverage(embedded: _EmbeddedReal, k: int) -> CoverageScorer:
    if not isinstance(k, int) or k < 1 or k >= embedded.real.shape[0]:
        raise ValueError(f"k must be an int in [1, {embedded.real.shape[0] - 1}], got {k!r}")
    d = torch.cdist(embedded.real, embedded.real)
    radii = torch.kthvalue(d, k + 1, dim=1).values  # k+1: the nearest is the image itself
    return CoverageScorer(embedded, radii, k)


@register_metric(
    "coverage",
    direction="higher",
    version=1,
    description=(
        "Coverage (Naeem et al. 2020, k=5) in the random-CNN embedding: share of real images "
        "with a generated image among their 5 nearest real neighbours. Falls with mode collapse."
    ),
)
def make_coverage(real: Tensor, *, seed: int, k: int = 5, features: str | None = None) -> CoverageScorer:
    """Build a coverage scorer for ``real`` (deterministic; ``seed`` is unused)."""
    return _make_coverage(_embed_real(real, features), k)


# ---------------------------------------------------------------------------
# color: per-channel colour statistics, which SWD normalises away
# ---------------------------------------------------------------------------

_COLOR_QUANTILES = 256


def _to_levels(images: Tensor) -> Tensor:
    """[-1, 1] -> 8-bit grey levels [0, 255] (float64)."""
    return (images.detach().to("cpu", torch.float64).clamp(-1, 1) + 1.0) * 127.5


def _quantiles(values: Tensor, q: int) -> Tensor:
    """Each row's values at the q mid-quantiles (i + 0.5) / q, by sorting (exact order
    statistics, no interpolation)."""
    s = torch.sort(values, dim=-1).values
    n = s.shape[-1]
    idx = ((torch.arange(q, dtype=torch.float64) + 0.5) * n / q).long().clamp_max(n - 1)
    return s[..., idx]


@dataclass
class ColorScorer:
    """Wasserstein-1 distances, in 8-bit grey levels, between real and fake per channel:
    of all pixel values and of per-image mean colours."""

    real_pixels: Tensor = field(repr=False)  # (3, Q) pixel-value quantiles per channel
    real_means: Tensor = field(repr=False)   # (3, n) per-image means per channel, sorted
    image_size: tuple[int, int]

    @property
    def name(self) -> str:
        return "color"

    def score(self, fake: Tensor) -> dict[str, float]:
        _check_images(fake, "fake images")
        if tuple(fake.shape[-2:]) != self.image_size:
            raise ValueError(
                f"fake images are {tuple(fake.shape[-2:])} but real images are {self.image_size}"
            )
        levels = _to_levels(fake)
        pixels = _quantiles(levels.transpose(0, 1).reshape(3, -1), self.real_pixels.shape[1])
        w_pixels = (pixels - self.real_pixels).abs().mean(dim=1)               # (3,)
        means = torch.sort(levels.mean(dim=(2, 3)).T.contiguous(), dim=1).values
        w_means = wasserstein_1d_sorted(self.real_means, means)               # (3,)
        result = {
            "color": float((w_pixels.mean() + w_means.mean()) / 2),
            "color_pixels": float(w_pixels.mean()),
            "color_means": float(w_means.mean()),
        }
        for c, name in enumerate("rgb"):
            result[f"color_{name}"] = float((w_pixels[c] + w_means[c]) / 2)
        return result


@register_metric(
    "color",
    direction="lower",
    version=1,
    description=(
        "Colour statistics distance in 8-bit grey levels: mean over R, G, B of the "
        "Wasserstein-1 distances between pixel values and between per-image mean colours. "
        "Sees global colour and contrast shifts that SWD's normalisation hides."
    ),
)
def make_color(real: Tensor, *, seed: int) -> ColorScorer:
    """Build a colour scorer for ``real`` (deterministic; ``seed`` is unused)."""
    _check_images(real, "real images", min_count=2)
    levels = _to_levels(real)
    pixels = _quantiles(levels.transpose(0, 1).reshape(3, -1), _COLOR_QUANTILES)
    means = torch.sort(levels.mean(dim=(2, 3)).T.contiguous(), dim=1).values
    return ColorScorer(pixels, means, (int(real.shape[-2]), int(real.shape[-1])))


# ---------------------------------------------------------------------------
# Real-vs-real floors and the combined perceptual distance
# ---------------------------------------------------------------------------

#: The parts of ``perceptual``, each a distance with a real-vs-real floor.
PERCEPTUAL_PARTS = ("swd", "rkid", "color")
#: Real-vs-real repeats behind each floor (mean and spread).
FLOOR_REPEATS = 10


@dataclass(frozen=True)
class Floor:
    """What a metric gives *real* images at a sample count: mean and sample std over
    ``repeats`` disjoint draws. A fake set within a few std of ``mean`` is, by this
    metric and at this sample count, indistinguishable from real data."""

    mean: float
    std: float
    n: int
    repeats: int

    def z(self, value: float) -> float:
        """How many real-vs-real standard deviations ``value`` lies above the floor."""
        spread = max(self.std, 1e-9 * max(1.0, abs(self.mean)))
        return (value - self.mean) / spread

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "n": self.n, "repeats": self.repeats}

    @classmethod
    def from_dict(cls, d: dict) -> "Floor":
        return cls(float(d["mean"]), float(d["std"]), int(d["n"]), int(d["repeats"]))


@dataclass
class PerceptualScorer:
    """``perceptual`` = sum over swd, rkid and color of log(1 + max(0, z)), z the part's
    distance above its real-vs-real floor in units of that floor's spread, both measured
    on real images at the sample count the fakes are scored at
    (:func:`perceptual_from_parts`).

    One scorer computes every metric of the fixed protocol (``score_all``): the fake
    images are embedded once for both ``rkid`` and ``coverage``.
    """

    swd: SWDScorer = field(repr=False)
    rkid: RKIDScorer = field(repr=False)
    coverage: CoverageScorer = field(repr=False)
    color: ColorScorer = field(repr=False)
    floors: dict[str, Floor]

    @property
    def name(self) -> str:
        return "perceptual"

    @property
    def embedding_name(self) -> str:
        return self.rkid.embedded.embedding.name

    def _combine(self, parts: dict[str, float]) -> dict[str, float]:
        return perceptual_from_parts(parts, self.floors)

    def score(self, fake: Tensor) -> dict[str, float]:
        """``perceptual``, its parts and their z-scores."""
        parts: dict[str, float] = {}
        parts.update(self.swd.score(fake))
        parts.update(self.rkid.score(fake))
        parts.update(self.color.score(fake))
        return {**self._combine(parts), **parts}

    def score_all(self, fake: Tensor) -> dict[str, float]:
        """Every metric of the protocol: perceptual (with parts), coverage and density."""
        parts: dict[str, float] = {}
        parts.update(self.swd.score(fake))
        f = self.rkid.embedded.features(fake)
        parts.update(self.rkid.score_features(f))
        parts.update(self.coverage.score_features(f))
        parts.update(self.color.score(fake))
        return {**self._combine(parts), **parts}


def build_scorers(
    real: Tensor, *, seed: int, features: str | None = None, k: int = 5
) -> dict[str, Scorer]:
    """swd, rkid, coverage and color scorers for one real set, sharing one embedding."""
    embedded = _embed_real(real, features)
    return {
        "swd": make_swd(real, seed=seed),
        "rkid": _make_rkid(embedded),
        "coverage": _make_coverage(embedded, k),
        "color": make_color(real, seed=seed),
    }


def floor_draws(
    scorers: dict[str, Scorer], pool: Tensor, n: int, *, seed: int, repeats: int = FLOOR_REPEATS
) -> dict[str, list[float]]:
    """Real-vs-real values: every scorer's result on ``repeats`` draws of ``n`` images
    from ``pool`` (real images *not* in the scorers' reference set).

    Draws are disjoint while the pool lasts (then drawn afresh), and seeded."""
    _check_images(pool, "real images for the floor", min_count=2)
    if n < 2 or n > pool.shape[0]:
        raise ValueError(f"a floor at n={n} needs between 2 and {pool.shape[0]} pool images")
    if repeats < 2:
        raise ValueError(f"repeats must be >= 2 to measure a spread, got {repeats}")
    gen = _generator(seed, "floors/draws")
    per_draw = max(1, pool.shape[0] // n)
    values: dict[str, list[float]] = {}
    perm = torch.randperm(pool.shape[0], generator=gen)
    for r in range(repeats):
        if r and r % per_draw == 0:
            perm = torch.randperm(pool.shape[0], generator=gen)
        j = r % per_draw
        draw = pool[perm[j * n : (j + 1) * n].to(pool.device)]
        f = None
        for scorer in scorers.values():
            if hasattr(scorer, "score_features"):
                if f is None:
                    f = scorer.embedded.features(draw)  # type: ignore[attr-defined]
                result = scorer.score_features(f)  # type: ignore[attr-defined]
            else:
                result = scorer.score(draw)
            for key, value in result.items():
                values.setdefault(key, []).append(value)
    return values


def _summarise(values: dict[str, list[float]], n: int) -> dict[str, Floor]:
    return {
        key: Floor(float(np.mean(v)), float(np.std(v, ddof=1)), int(n), len(v))
        for key, v in values.items()
    }


def measure_floors(
    scorers: dict[str, Scorer], pool: Tensor, n: int, *, seed: int, repeats: int = FLOOR_REPEATS
) -> dict[str, Floor]:
    """Real-vs-real floors (mean and spread over draws) of every scorer's results, plus
    the floor of ``perceptual`` itself when swd, rkid and color are among them."""
    draws = floor_draws(scorers, pool, n, seed=seed, repeats=repeats)
    floors = _summarise(draws, n)
    if all(p in floors for p in PERCEPTUAL_PARTS):
        per_draw = [
            perceptual_from_parts({p: draws[p][r] for p in PERCEPTUAL_PARTS}, floors)["perceptual"]
            for r in range(repeats)
        ]
        floors.update(_summarise({"perceptual": per_draw}, n))
    return floors


def perceptual_from_parts(parts: dict[str, float], floors: dict[str, Floor]) -> dict[str, float]:
    """``perceptual`` and each part's z-score from swd, rkid and color values.

    perceptual = sum over parts of log(1 + max(0, z)), z = (value - floor mean) / floor std.

    Why z-scores: each part's real-vs-real spread at the sample count is its unit of
    "detectably different from real". Why the log: the parts' ranges differ by orders of
    magnitude in those units (a squared kernel distance such as rkid reaches thousands of
    spreads where SWD reaches tens), so a plain sum would be rkid alone; on a log scale
    halving any part's excess counts the same, and no single metric's quirks decide.
    Parts below their floor count 0: they are indistinguishable from real there.
    """
    out: dict[str, float] = {}
    total = 0.0
    for p in PERCEPTUAL_PARTS:
        z = floors[p].z(parts[p])
        out[f"{p}_z"] = z
        total += math.log1p(max(0.0, z))
    return {"perceptual": total, **out}


@register_metric(
    "perceptual",
    direction="lower",
    version=1,
    description=(
        "The fitness distance: swd, rkid and color, each as a z-score against its real-vs-real "
        "spread at the same sample count, summed as log(1 + max(0, z)). About 1 for real images."
    ),
)
def make_perceptual(
    real: Tensor,
    *,
    seed: int,
    floors: dict[str, Floor | dict] | None = None,
    floor_real: Tensor | None = None,
    n: int | None = None,
    repeats: int = FLOOR_REPEATS,
    features: str | None = None,
) -> PerceptualScorer:
    """Build the combined scorer. Either pass ``floors`` (measured before, e.g. read from
    a run's record) or ``floor_real`` -- real images outside ``real`` -- and the fake
    sample count ``n`` to measure them here."""
    scorers = build_scorers(real, seed=seed, features=features)
    if floors is None:
        if floor_real is None or n is None:
            raise ValueError(
                "perceptual needs the real-vs-real spread of its parts: pass floors, or floor_real "
                "(real images outside the reference set) and n (the fake sample count)"
            )
        floors = measure_floors(scorers, floor_real, n, seed=seed, repeats=repeats)
    floors = {k: v if isinstance(v, Floor) else Floor.from_dict(v) for k, v in floors.items()}
    missing = [p for p in PERCEPTUAL_PARTS if p not in floors]
    if missing:
        raise ValueError(f"floors lack {', '.join(missing)}")
    return PerceptualScorer(
        swd=scorers["swd"], rkid=scorers["rkid"], coverage=scorers["coverage"],  # type: ignore[arg-type]
        color=scorers["color"], floors=floors,  # type: ignore[arg-type]
    )


def metric_versions() -> dict[str, int]:
    """Every registered metric's version, for run records and caches."""
    return {info.name: info.version for info in list_metrics()}


def tensor_digest(images: Tensor) -> str:
    """A short content hash of an image tensor (shape, dtype and bytes)."""
    t = images.detach().to("cpu").contiguous()
    digest = hashlib.sha256(f"{tuple(t.shape)}:{t.dtype}".encode())
    digest.update(t.numpy().tobytes())
    return digest.hexdigest()[:16]
