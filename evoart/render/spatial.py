"""Seeded latents, and images larger than the training resolution grown through the
generator.

Sizes above the training resolution grow *through the generator* (Spatial GAN, Jetchev
et al. 2016): the generator is a linear 4x4 "stem" followed only by convolutional
blocks, so a larger stem map gives a larger image. The larger map is made from a grid of
latents, one per 4x4 stem tile (one training-size image area), interpolated to one
latent per stem pixel (bilinear, norm-preserving), each pixel using the stem weights of
its position in the 4x4 tile. A one-tile grid is exactly the ordinary generator.
``grow="upscale"`` instead resizes training-size images (Lanczos), which adds no detail
and says so.

Everything is seeded per image (latent and noise), so an image does not depend on how
many are drawn with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..genome import Genome
from ..imaging import png_bytes, to_uint8
from ..nets import Generator
from ..seeds import derive_seed
from .sources import RenderError

MAX_PIXELS = 4096 * 4096  # one rendered image; beyond this a CPU render takes many minutes
GROW_METHODS = ("spatial", "upscale")


# ---- seeded latents ----------------------------------------------------------------------

def _sub_seed(seed: int, *parts) -> int:
    # sha256 of "seed:part:...", 63 bits: every rendered image of every release so far
    return derive_seed(seed, *parts, algorithm="sha256")


def latent_grid(latent: int, seed: int, index: int, cells: tuple[int, int] = (1, 1), kind: str = "sample") -> torch.Tensor:
    """The latents of image ``index``: (latent, rows, cols), from their own seed, so an
    image never depends on how many others are drawn."""
    g = torch.Generator().manual_seed(_sub_seed(seed, kind, index, latent, *cells))
    return torch.randn(latent, cells[0], cells[1], generator=g)


# ---- growing through the spatial latent --------------------------------------------------

class SpatialGenerator(nn.Module):
    """Runs a trained generator on a larger stem map made from a grid of latents.

    Input: latents (N, latent, rows, cols), one per training-size area. Output: images
    (N, 3, rows * R, cols * R) in [-1, 1]. With rows = cols = 1 it computes exactly what
    the generator computes for that latent.
    """

    def __init__(self, generator: Generator):
        super().__init__()
        self.g = generator

    def latent_field(self, grid: torch.Tensor) -> torch.Tensor:
        """One latent per stem pixel: anchors at the centres of the 4x4 tiles, bilinear in
        between, rescaled to the interpolated norm so no region fades to the mean."""
        rows, cols = grid.shape[-2:]
        field = F.interpolate(grid, size=(4 * rows, 4 * cols), mode="bilinear", align_corners=False)
        norms = F.interpolate(grid.norm(dim=1, keepdim=True), size=(4 * rows, 4 * cols), mode="bilinear",
                              align_corners=False)
        return field * (norms / field.norm(dim=1, keepdim=True).clamp_min(1e-8))

    def stem(self, grid: torch.Tensor) -> torch.Tensor:
        g = self.g
        n, l, rows, cols = grid.shape
        c = g.stem_channels
        field = self.latent_field(grid).view(n, l, rows, 4, cols, 4)
        weight = g.stem.weight.view(c, 4, 4, l)       # (stem_channels) x 4 x 4 x latent
        x = torch.einsum("nlipjq,cpql->ncipjq", field, weight).reshape(n, c, 4 * rows, 4 * cols)
        return x + g.stem.bias.view(c, 4, 4).repeat(1, rows, cols)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        g = self.g
        x = g.stem_act(self.stem(grid))
        if g.stem_size > 4:  # the genome's parameter-free upsampling of the stem map
            x = F.interpolate(x, scale_factor=g.stem_size // 4, mode="nearest")
        for block in g.blocks:
            x = block(x)
        x = g.to_rgb(x)
        return _output_activation(g.output, x)


def _output_activation(kind: str, x: torch.Tensor) -> torch.Tensor:
    # the same as nets.Generator.forward; test_render checks the two agree
    if kind == "tanh":
        return torch.tanh(x)
    if kind == "sigmoid":
        return torch.sigmoid(x) * 2 - 1
    if kind == "sin":
        return torch.sin(x)
    return torch.clamp(x, -1, 1)


def spatial_support(genome: Genome) -> tuple[bool, list[str]]:
    """Whether a genome's generator can grow larger images from a larger latent grid, and
    the caveats. Every generator of this genome schema can: only its stem is not
    convolutional. Instance and group norm normalise over the whole (larger) map, which
    is close to, but not the same as, what they saw in training."""
    caveats = []
    norms = sorted({b.norm for b in genome.generator.blocks if b.norm in ("instance", "group")})
    if norms:
        caveats.append(f"its {' and '.join(norms)} norm blocks normalise over the whole larger map, so tones "
                       "can differ a little from the training-size images")
    return True, caveats


@dataclass
class GrowPlan:
    method: str                  # "native", "spatial", "upscale", "downscale"
    size: tuple[int, int]        # (width, height) asked for
    cells: tuple[int, int]       # latent grid (rows, cols) for "spatial", else (1, 1)
    message: str


def check_size(size: tuple[int, int] | None) -> None:
    """Raise RenderError unless ``size`` is None or (width, height) within MAX_PIXELS."""
    if size is None:
        return
    side = int(math.sqrt(MAX_PIXELS))
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise RenderError(f"size {size!r} is not (width, height) in pixels") from None
    if w < 1 or h < 1 or w * h > MAX_PIXELS:
        raise RenderError(f"--size {w}x{h} is outside 1 to {side}x{side}")


def plan_size(genome: Genome, resolution: int, size: tuple[int, int] | None, grow: str = "spatial") -> GrowPlan:
    """How an image of ``size`` (width, height) is made from a generator trained at
    ``resolution``, with a sentence that says it plainly."""
    if grow not in GROW_METHODS:
        raise RenderError(f"grow {grow!r} is not one of {', '.join(GROW_METHODS)}")
    if size is None or tuple(size) == (resolution, resolution):
        return GrowPlan("native", (resolution, resolution), (1, 1), f"{resolution} px, the training resolution")
    check_size(size)
    w, h = (int(v) for v in size)
    size = (w, h)
    if w <= resolution and h <= resolution:
        return GrowPlan("downscale", size, (1, 1),
                        f"{w}x{h} px: downscaled from the training resolution ({resolution} px)")
    if grow == "upscale":
        return GrowPlan("upscale", size, (1, 1),
                        f"{w}x{h} px: only upscaled (Lanczos) from {resolution} px, as asked; no new detail")
    ok, caveats = spatial_support(genome)
    if not ok:  # pragma: no cover - every genome of this schema can grow
        return GrowPlan("upscale", size, (1, 1),
                        f"{w}x{h} px: this generator can only be upscaled (Lanczos) from {resolution} px")
    rows, cols = math.ceil(h / resolution), math.ceil(w / resolution)
    crop = "" if (rows * resolution, cols * resolution) == (h, w) else \
        f", centre-cropped from {cols * resolution}x{rows * resolution}"
    msg = (f"{w}x{h} px grown through the generator from a {cols}x{rows} grid of latents (Spatial GAN style: "
           f"one latent per {resolution} px area, blended in between){crop}")
    if caveats:
        msg += "; note: " + "; ".join(caveats)
    return GrowPlan("spatial", size, (rows, cols), msg)


# ---- memory ------------------------------------------------------------------------------

#: The share of the available memory one rendered image may take: the rest is for the
#: process itself, the other images of a grid and whatever else the machine runs.
MEMORY_SHARE = 0.75
#: What the layer-by-layer count misses (a residual block's resized skip, the allocator's
#: slack): measured peaks of the shipped presets at 1024 px were 0.7 to 1.3 times the count.
ESTIMATE_MARGIN = 1.3


@torch.no_grad()
def estimate_bytes(G: Generator, plan: GrowPlan) -> int:
    """Peak memory of rendering one image of ``plan``, in bytes, estimated from a forward
    pass at the training size: the tensors a stage holds at once (its input and every
    intermediate of its layers, none assumed freed early) grow with the image's area past
    the stem, so the largest stage is scaled by the plan's area over the training area."""
    rows, cols = plan.cells if plan.method == "spatial" else (1, 1)
    stage_bytes: dict[str, int] = {}
    hooks = []

    def count(stage: str):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor):
                stage_bytes[stage] = stage_bytes.get(stage, 0) + output.numel() * output.element_size()
        return hook

    stages = [("stem", G.stem), *((f"block{i}", b) for i, b in enumerate(G.blocks)), ("to_rgb", G.to_rgb)]
    for name, stage in stages:
        for module in stage.modules():
            hooks.append(module.register_forward_hook(count(name)))
        hooks.append(stage.register_forward_pre_hook(
            lambda module, inputs, name=name: stage_bytes.__setitem__(name, stage_bytes.get(name, 0) + sum(
                t.numel() * t.element_size() for t in inputs if isinstance(t, torch.Tensor)))))
    device = next(G.parameters()).device
    was_training = G.training
    try:
        G.eval()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            G(torch.zeros(1, G.latent, device=device))
    finally:
        G.train(was_training)
        for h in hooks:
            h.remove()
    area = rows * cols
    field = 3 * G.latent * 16 * area * 4  # the interpolated latent field, its norms, the stem map
    out = 3 * G.resolution * G.resolution * area * (4 + 1)  # the float image and its uint8 copy
    return int(ESTIMATE_MARGIN * max(stage_bytes.values(), default=0) * area + field + out)


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes this process may still use on ``device`` (None when it cannot be told): free
    memory on a CUDA device; else MemAvailable from /proc/meminfo, or the free physical
    pages."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    known = [n for n in (_meminfo_available(), _cgroup_available(), _address_space_left()) if n is not None]
    if known:
        return min(known)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """The memory limit of this container (cgroup v2) less what it uses: /proc/meminfo
    shows the whole host's memory."""
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int(open("/sys/fs/cgroup/memory.current").read()))
    except (OSError, ValueError):
        return None


def _address_space_left() -> int | None:
    """What ``ulimit -v`` leaves this process."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        return max(0, soft - size)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_memory(G: Generator, plan: GrowPlan, device: torch.device | str = "cpu", *,
                 available: int | None = None) -> int:
    """Raise RenderError, with the figures and a size that fits, when one image of ``plan``
    would need more than ``MEMORY_SHARE`` of the memory available on ``device``. Returns
    the estimate in bytes."""
    need = estimate_bytes(G, plan)
    have = available if available is not None else available_memory(device)
    if have is None or plan.method != "spatial" or need <= MEMORY_SHARE * have:
        return need
    w, h = plan.size
    shrink = math.sqrt(MEMORY_SHARE * have / need)
    step = G.resolution
    fit_w, fit_h = max(step, int(w * shrink) // step * step), max(step, int(h * shrink) // step * step)
    where = "free on the GPU" if torch.device(device).type == "cuda" else "available"
    raise RenderError(
        f"--size {w}x{h} needs about {_gb(need)} of memory for one image (estimated from this generator's "
        f"layers), and {_gb(have)} is {where}: at most {int(MEMORY_SHARE * 100)}% of it is used for one "
        f"image. About {fit_w}x{fit_h} px fits; pass a smaller --size, or --grow upscale (no new detail)")


def _crop_resize(img: torch.Tensor, plan: GrowPlan) -> np.ndarray:
    """(1,3,H,W) in [-1,1] -> uint8 (H',W',3) at the plan's size."""
    w, h = plan.size
    arr = to_uint8(img)[0]
    if plan.method in ("upscale", "downscale"):
        return np.asarray(Image.fromarray(arr).resize((w, h), Image.LANCZOS))
    if plan.method == "spatial":
        top = (arr.shape[0] - h) // 2
        left = (arr.shape[1] - w) // 2
        return arr[top: top + h, left: left + w]
    return arr


@torch.no_grad()
def forward_one(G: Generator, grid: torch.Tensor, plan: GrowPlan, noise_seed: int) -> np.ndarray:
    """One image from one latent grid, its noise injection seeded with ``noise_seed``."""
    device = next(G.parameters()).device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(noise_seed)  # noise injection draws from the global RNG
        if plan.method == "spatial":
            out = SpatialGenerator(G)(grid[None].to(device))
        else:
            out = G(grid[:, 0, 0][None].to(device))
    return _crop_resize(out.float().cpu(), plan)


def native_plan(G: Generator) -> GrowPlan:
    return GrowPlan("native", (G.resolution, G.resolution), (1, 1), "")


def render_images(G: Generator, n: int, *, seed: int = 0, plan: GrowPlan | None = None,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``n`` images as uint8 (n, H, W, 3); image i depends only on (seed, i)."""
    G.eval()
    plan = plan or native_plan(G)
    out = []
    for i in range(n):
        grid = latent_grid(G.latent, seed, i, plan.cells)
        out.append(forward_one(G, grid, plan, _sub_seed(seed, "noise", i)))
        if progress:
            progress(i + 1, n)
    return np.stack(out)


def view_scale(size: int, target: int) -> int:
    """Integer nearest-neighbour scale that shows ``size`` px images at about ``target``."""
    return max(1, target // max(1, size))


def grid_png(images: np.ndarray, *, scale: int = 1) -> bytes:
    from ..imaging import image_grid

    return png_bytes(image_grid(images, pad=2, scale=scale))
