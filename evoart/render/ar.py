"""Rendering an autoregressive (AR) individual or preset: its own path beside the
generator pipeline, with the same files and messages.

* ``--size`` above the training size: a raster scan *continues* over the larger canvas
  (in half-overlapping windows of the training size, each window sampled with its
  known part as context); any other scan cannot continue (the model knows positions of
  the training grid only, and a Hilbert curve of the larger canvas visits them in another
  order), so it only upscales by nearest neighbour, and says so. ``--grow upscale``
  upscales a raster model too. AR renders are square.
* ``--walk``: the sampling noise moved smoothly through a Gaussian copula (great circles
  between keyframes of Gaussian noise, mapped to uniforms by the normal CDF), at the
  training size; since each token is an inverse-CDF draw, a small change of noise flips
  some tokens and the rest follow, so a walk flickers in one style rather than morphing.
* exports: the step network (one item in, the next token's probabilities and the cache
  out) as ONNX or a ``torch.export`` program, with the palette, genes and window in the
  file's ``evoart.json``; the sampling loop that drives it is documented in
  docs/FAMILIES.md and is ``autoregressive.render.sample_with_step_network``.
"""

from __future__ import annotations

import time

import numpy as np

from ..ar_genes import scan_label
from ..autoregressive import (ARTrainResult, continues_scan, render_ar, step_onnx_bytes, step_program_bytes,
                              walk_ar)
from ..autoregressive.render import EXPORT_REFUSAL, can_refine_to, refined_sizes, refines_scales
from ..autoregressive.render import RenderError as PackageRenderError
from ..errors import EvoartError
from .sources import RenderError, Source
from .spatial import GrowPlan, grid_png, view_scale

#: The largest side an AR render continues or upscales to: a continued raster scan costs
#: one step per pixel (a 256 px canvas is 64 times a 32 px sample).
MAX_AR_SIDE = 256


def is_ar(source: Source) -> bool:
    return source.genome.family == "ar"


def ar_result(source: Source) -> ARTrainResult:
    if source.state is None or source.resolution is None:
        raise RenderError(f"{source.name} has no trained weights; train it first")
    try:
        result = ARTrainResult.from_checkpoint(source.genome.ar, source.state)
    except EvoartError as exc:
        raise RenderError(f"{source.name}'s weights do not fit its AR genes: {exc}") from None
    return result


def ar_plan(source: Source, resolution: int, size: tuple[int, int] | None, grow: str) -> GrowPlan:
    """How an AR render makes its size, refused before any training when it cannot."""
    scan = source.genome.ar.scan
    label = scan_label(source.genome.ar)
    if size is None or size == (resolution, resolution):
        return GrowPlan("native", (resolution, resolution), (1, 1), f"{resolution} px: the training size")
    w, h = size
    if w != h:
        raise RenderError(f"an AR model renders square images; --size {w}x{h} is not (try {max(w, h)}x{max(w, h)})")
    if w > MAX_AR_SIDE:
        raise RenderError(f"--size {w}x{h}: AR renders go up to {MAX_AR_SIDE}x{MAX_AR_SIDE} (one scan step per pixel)")
    if w < resolution:
        raise RenderError(f"--size {w}x{h} is below the training size of {resolution} px; an AR model samples at "
                          f"{resolution} px or more")
    if refines_scales(scan) and grow != "upscale":
        if not can_refine_to(resolution, w):
            raise RenderError(f"a {label} AR model grows by finer scales, each twice the last: --size must be "
                              f"{refined_sizes(resolution)}, not {w}")
        return GrowPlan("refined", (w, h), (1, 1),
                        f"{w}x{h}: the {label} scan grown past the training size ({resolution} px) by finer "
                        f"scales, each drawn in tiles of {resolution} px given the scale above")
    if continues_scan(scan) and grow != "upscale":
        if w % (resolution // 2):
            raise RenderError(f"a continued {scan} scan covers the canvas in windows of {resolution} px overlapping "
                              f"by half: --size must be a multiple of {resolution // 2}, not {w}")
        return GrowPlan("continued", (w, h), (1, 1),
                        f"{w}x{h}: the {scan} scan continued beyond the training size ({resolution} px), each window "
                        "of the canvas sampled with what is already drawn as its context")
    if w % resolution:
        raise RenderError(f"a {scan} AR model only upscales beyond {resolution} px: --size must be a multiple of "
                          f"{resolution}, not {w}")
    why = (f"a {scan} scan cannot continue beyond the training size" if not (continues_scan(scan)
                                                                             or refines_scales(scan))
           else "--grow upscale")
    return GrowPlan("upscale", (w, h), (1, 1),
                    f"{w}x{h}: only upscaled ({why}): sampled at {resolution} px and enlarged {w // resolution}x "
                    "by nearest neighbour; raster scans continue and pyramids add finer scales")


def ar_images(result: ARTrainResult, plan: GrowPlan, n: int, seed: int) -> np.ndarray:
    """uint8 (n, S, S, 3) as ``plan`` says."""
    try:
        return render_ar(result, plan.size[0], seed=seed, count=n, upscale=plan.method == "upscale")[0]
    except PackageRenderError as exc:
        raise RenderError(str(exc)) from None


def ar_walk(result: ARTrainResult, *, frames: int, keyframes: int, seed: int) -> np.ndarray:
    try:
        return np.stack(walk_ar(result, frames=frames, keyframes=keyframes, seed=seed))
    except PackageRenderError as exc:
        raise RenderError(str(exc)) from None


#: What each export writes for an AR model: the step network, never a whole generator.
AR_EXPORTERS = {"onnx": step_onnx_bytes, "pt2": step_program_bytes}
AR_EXPORT_NOTE = ("the AR step network: inputs prev_token, prev_pos, next_pos, first, length, keys, values; "
                  "outputs probs, keys_out, values_out; the sampling loop is in docs/FAMILIES.md "
                  "(evoart.autoregressive.render.sample_with_step_network)")


def check_ar_export(source: Source, exports) -> None:
    """Refused before training: the step network does not cover a pyramid's scan."""
    if exports and source.genome.ar.scan == "pyramid":
        raise RenderError(f"--export: {source.name} is a {scan_label(source.genome.ar)} pyramid; {EXPORT_REFUSAL}")


def ar_export(result: ARTrainResult, kind: str, name: str) -> tuple[bytes, float]:
    t0 = time.perf_counter()
    try:
        data = AR_EXPORTERS[kind](result, name=name)
    except ImportError as exc:
        raise RenderError(f"the {kind} export of an AR model needs {exc.name or 'onnx and onnxscript'} "
                          "(pip install onnx onnxscript)") from None
    return data, time.perf_counter() - t0


def ar_grid(images: np.ndarray, scale: int | None, target: int) -> tuple[bytes, int]:
    zoom = scale or view_scale(images.shape[1], target)
    return grid_png(images, scale=zoom), zoom
