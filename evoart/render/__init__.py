"""Rendering a kept genome: sample grids, large images, latent walks and exports.

``render(target, ...)`` is the whole pipeline in one call (``evoart render`` is a thin
layer over it); the pieces it is made of are here too:

* ``sources``: what is rendered, a ``Source`` (a preset or an individual of a run,
  ``RUN:INDIVIDUAL``) with its trained generator when there is one; ``train_source``
  trains one briefly when there is not.
* ``spatial``: ``render_images``, samples from fixed, seeded latents, with sizes above
  the training resolution grown through the generator from a grid of latents (Spatial
  GAN, Jetchev et al. 2016) or, as asked, only resized.
* ``walks``: ``latent_walk``, a seamless loop of spherical interpolations between fixed
  latents, saved as GIF and WebP.
* ``export``: ``export_onnx`` / ``export_pt2``, the generator as a file that runs
  without evoart: input ``z`` (N, latent) float32, output ``images`` (N, 3, R, R) float32
  RGB in [0, 1].
* ``pipeline``: ``render``, the file names, the refusal to overwrite, ``RenderResult``.

Everything is seeded per image (latent and noise), so an image does not depend on how
many are drawn with it, and rendering a preset with weights twice on the CPU gives
byte-identical PNGs.
"""

from __future__ import annotations

from .export import (
    EXPORT_ALIASES,
    EXPORT_KINDS,
    EXPORTERS,
    ONNX_OPSET,
    PT2_METADATA,
    TORCHSCRIPT_NOTE,
    ExportedGenerator,
    export_kind,
    export_onnx,
    export_pt2,
    pt2_bytes,
)
from .pipeline import (
    RenderedFile,
    RenderResult,
    output_paths,
    output_stem,
    refuse_to_overwrite,
    render,
)
from .sources import RenderError, Source, Training, load_generator, resolve_source, train_source
from .spatial import (
    GROW_METHODS,
    MAX_PIXELS,
    GrowPlan,
    SpatialGenerator,
    check_size,
    grid_png,
    latent_grid,
    plan_size,
    render_images,
    spatial_support,
    view_scale,
)
from .walks import gif_bytes, latent_walk, slerp, walk_latents, webp_bytes

__all__ = [
    "EXPORTERS", "EXPORT_ALIASES", "EXPORT_KINDS", "GROW_METHODS", "MAX_PIXELS", "ONNX_OPSET", "PT2_METADATA",
    "TORCHSCRIPT_NOTE", "ExportedGenerator", "GrowPlan", "RenderError", "RenderResult", "RenderedFile", "Source",
    "SpatialGenerator", "Training", "check_size", "export_kind", "export_onnx", "export_pt2", "gif_bytes",
    "grid_png", "latent_grid", "latent_walk", "load_generator", "output_paths", "output_stem", "plan_size",
    "pt2_bytes", "refuse_to_overwrite", "render", "render_images", "resolve_source", "slerp", "spatial_support",
    "train_source", "view_scale", "walk_latents", "webp_bytes",
]
