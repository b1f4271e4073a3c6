"""Latent walks: a seamless loop of spherical interpolations between fixed latents (or
latent grids, for large sizes), saved as GIF and WebP."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from ..nets import Generator
from .sources import RenderError
from .spatial import GrowPlan, _sub_seed, forward_one, latent_grid, native_plan


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, dim: int = 0) -> torch.Tensor:
    """Spherical interpolation along ``dim`` (White 2016): stays on the shell where
    Gaussian latents live instead of cutting through the low-norm middle."""
    an = a / a.norm(dim=dim, keepdim=True).clamp_min(1e-8)
    bn = b / b.norm(dim=dim, keepdim=True).clamp_min(1e-8)
    omega = torch.acos((an * bn).sum(dim=dim, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    small = so.abs() < 1e-6
    wa = torch.where(small, torch.full_like(so, 1 - t), torch.sin((1 - t) * omega) / so.where(~small, torch.ones_like(so)))
    wb = torch.where(small, torch.full_like(so, t), torch.sin(t * omega) / so.where(~small, torch.ones_like(so)))
    return wa * a + wb * b


def check_walk(frames: int, keyframes: int) -> None:
    """Raise RenderError unless a walk of ``frames`` through ``keyframes`` can be made."""
    if keyframes < 2:
        raise RenderError("a latent walk needs at least 2 keyframes")
    if frames < keyframes:
        raise RenderError(f"a latent walk needs at least as many frames ({frames}) as keyframes ({keyframes})")


def walk_latents(latent: int, *, frames: int, keyframes: int, seed: int,
                 cells: tuple[int, int] = (1, 1)) -> list[torch.Tensor]:
    """A loop through ``keyframes`` fixed latent grids, ``frames`` in all; the frame after
    the last is the first again."""
    check_walk(frames, keyframes)
    keys = [latent_grid(latent, seed, k, cells, kind="walk") for k in range(keyframes)]
    out = []
    for f in range(frames):
        pos = f * keyframes / frames
        k = int(pos)
        out.append(slerp(keys[k], keys[(k + 1) % keyframes], pos - k, dim=0))
    return out


def latent_walk(G: Generator, *, frames: int = 60, keyframes: int = 4, seed: int = 0,
                plan: GrowPlan | None = None,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Frames of a looping latent walk, uint8 (frames, H, W, 3). Noise injection uses
    the same noise in every frame, so only the latents move."""
    G.eval()
    plan = plan or native_plan(G)
    grids = walk_latents(G.latent, frames=frames, keyframes=keyframes, seed=seed, cells=plan.cells)
    out = []
    for i, grid in enumerate(grids):
        out.append(forward_one(G, grid, plan, _sub_seed(seed, "walk-noise")))
        if progress:
            progress(i + 1, frames)
    return np.stack(out)


def _upscaled(frames: np.ndarray, scale: int) -> list[Image.Image]:
    return [Image.fromarray(f.repeat(scale, 0).repeat(scale, 1) if scale > 1 else f) for f in frames]


def gif_bytes(frames: np.ndarray, *, fps: float = 20, scale: int = 1) -> bytes:
    """A looping GIF. One palette for the whole loop (from a sample of its frames) and no
    dithering, so colours neither flicker nor crawl between frames."""
    images = _upscaled(frames, scale)
    step = max(1, len(images) // 16)
    sample = images[::step]
    strip = Image.new("RGB", (sample[0].width, sample[0].height * len(sample)))
    for i, im in enumerate(sample):
        strip.paste(im, (0, i * im.height))
    palette = strip.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    quantized = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    buf = io.BytesIO()
    quantized[0].save(buf, format="GIF", save_all=True, append_images=quantized[1:],
                      duration=max(20, round(1000 / fps)), loop=0, optimize=False, disposal=1)
    return buf.getvalue()


def webp_bytes(frames: np.ndarray, *, fps: float = 20, scale: int = 1) -> bytes:
    """A looping animated WebP (lossy, quality 90: full colour, smaller than the GIF)."""
    images = _upscaled(frames, scale)
    buf = io.BytesIO()
    try:
        images[0].save(buf, format="WEBP", save_all=True, append_images=images[1:],
                       duration=max(1, round(1000 / fps)), loop=0, quality=90, method=4)
    except (OSError, KeyError, ValueError) as exc:
        raise RenderError(f"this Pillow cannot write animated WebP ({exc}); the GIF was written") from None
    return buf.getvalue()
