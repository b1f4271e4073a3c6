"""The whole render as one call: ``render(target, ...)`` resolves what is rendered,
trains it when it has no weights, keeps it as a preset when asked, and writes the grid,
the latent walk and the exports, refusing before any work to overwrite a file.

It is what ``evoart render`` runs, and what a notebook calls::

    from evoart.render import render
    result = render("cppn-like", out="renders", size=(512, 512), walk=True, steps=100)
    for f in result.files:
        print(f.kind, f.path, f.bytes)

Progress and messages flow out through callbacks, never to a console: ``progress(stage,
done, total)`` for the stages ``training``, ``rendering`` and ``walk``, ``message(text)``
for what is being done and written, ``note(text)`` for what the user should know (an
option that is ignored, a deprecated export, a format this Pillow cannot write). The
notes are also kept in ``RenderResult.notes``. Process-wide settings (torch's thread
count) are the caller's to make.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..files import atomic_write_bytes
from ..nets import build_generator
from .export import EXPORT_ALIASES, EXPORTERS, TORCHSCRIPT_NOTE, export_kind
from ..ar_genes import window_length
from .ar import (AR_EXPORT_NOTE, ar_export, ar_grid, ar_images, ar_plan, ar_result, ar_walk, check_ar_export,
                 is_ar)
from .sources import RenderError, Source, Training, load_generator, os_errors, resolve_source, train_source
from .spatial import (
    GROW_METHODS,
    GrowPlan,
    check_memory,
    check_size,
    grid_png,
    plan_size,
    render_images,
    view_scale,
)
from .walks import check_walk, gif_bytes, latent_walk, webp_bytes

DEFAULT_DATA = "shapes"
DEFAULT_STEPS = 300
DEFAULT_RESOLUTION = 32
TRAIN_RESOLUTIONS = (16, 32, 64, 128)
GRID_TILE_PX = 128   # the grid's tiles are zoomed to about this size
WALK_TILE_PX = 256   # and the walk's frames to about this
MAX_SAMPLES = 1024

Progress = Callable[[str, int, int], None]
Say = Callable[[str], None]


@dataclass
class RenderedFile:
    """One file ``render`` wrote: what it is (``grid``, ``gif``, ``webp``, ``onnx``,
    ``pt2``, ``preset``, ``preset-weights``), where, how large, and what else is known
    about it (samples, frames, seconds, the export's check)."""

    kind: str
    path: Path
    bytes: int
    facts: dict = field(default_factory=dict)


@dataclass
class RenderResult:
    source: Source                 # what was rendered (with its trained weights)
    plan: GrowPlan                 # how the image size was made
    files: list[RenderedFile]      # every file written, in the order written
    training: Training | None = None
    preset: Path | None = None     # the preset JSON kept with ``save_as``
    notes: list[str] = field(default_factory=list)

    def file(self, kind: str) -> RenderedFile | None:
        """The file of ``kind`` written, or None."""
        return next((f for f in self.files if f.kind == kind), None)

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self.files]


def output_stem(name: str, seed: int, size: tuple[int, int] | None) -> str:
    """``NAME-sSEED`` or ``NAME-sSEED-WxH``: what the grid and walk files are called."""
    return f"{name}-s{seed}" + (f"-{size[0]}x{size[1]}" if size else "")


def output_paths(name: str, out: Path, *, seed: int, size: tuple[int, int] | None, walk: bool,
                 exports: Iterable[str] = ()) -> dict[str, Path]:
    """Every file a render will write, by kind, known before any work is done."""
    out = Path(out)
    stem = output_stem(name, seed, size)
    outputs = {"grid": out / f"{stem}-grid.png"}
    if walk:
        outputs["gif"] = out / f"{stem}-walk.gif"
        outputs["webp"] = out / f"{stem}-walk.webp"
    for kind in dict.fromkeys(export_kind(k) for k in exports):
        outputs[kind] = out / f"{name}{EXPORTERS[kind][0]}"
    return outputs


def refuse_to_overwrite(paths: Iterable[Path], force: bool = False) -> None:
    """RenderError when any of ``paths`` exists, unless ``force``."""
    taken = [p for p in paths if p.exists()]
    if taken and not force:
        raise RenderError(f"{taken[0]} exists" + (f" (and {len(taken) - 1} more)" if len(taken) > 1 else "")
                          + "; pass --force to overwrite, or another --out or --seed")


def _check_options(*, samples, size, grow, scale, walk, frames, keyframes, fps, exports, steps,
                   resolution) -> None:
    """Everything a render can refuse without reading anything, refused first."""
    def count(value, name, low, high):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            raise RenderError(f"{name} {value!r} is not a whole number from {low} to {high}")

    count(samples, "--samples", 1, MAX_SAMPLES)
    count(scale, "--scale", 1, 32)
    count(steps, "--steps", 1, 100_000)
    check_size(size)
    if grow not in GROW_METHODS:
        raise RenderError(f"--grow {grow!r} is not one of {', '.join(GROW_METHODS)}")
    if resolution is not None and resolution not in TRAIN_RESOLUTIONS:
        raise RenderError(f"--resolution {resolution!r} is not one of {', '.join(map(str, TRAIN_RESOLUTIONS))}")
    if walk:
        count(frames, "--frames", 2, 2000)
        count(keyframes, "--keyframes", 2, 100)
        check_walk(frames, keyframes)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 1 <= fps <= 60:
            raise RenderError(f"--fps {fps!r} is not a number of frames per second from 1 to 60")
    if isinstance(exports, str):
        raise RenderError(f"exports is a list of kinds, such as [{exports!r}]")
    for kind in exports:
        export_kind(kind)


def _write(files: list[RenderedFile], kind: str, path: Path, data: bytes, **facts) -> RenderedFile:
    with os_errors("write", path):
        atomic_write_bytes(path, data)
    f = RenderedFile(kind, Path(path), len(data), facts)
    files.append(f)
    return f


def _write_walk(files: list[RenderedFile], outputs: dict, movie, *, frames: int, keyframes: int, fps: float,
                zoom: int, started: float, say, tell, what: str = "", **facts) -> None:
    """The walk as a GIF and, where Pillow can, an animated WebP (the same frames)."""
    walk_facts = {"frames": frames, "keyframes": keyframes, "fps": fps, "zoom": zoom, **facts}
    _write(files, "gif", outputs["gif"], gif_bytes(movie, fps=fps, scale=zoom), **walk_facts,
           seconds=time.perf_counter() - started)
    say(f"Wrote {outputs['gif']} ({frames} frames, {keyframes} keyframes, "
        f"{time.perf_counter() - started:.1f} s){what}")
    try:
        _write(files, "webp", outputs["webp"], webp_bytes(movie, fps=fps, scale=zoom), **walk_facts)
        say(f"Wrote {outputs['webp']}")
    except RenderError as exc:
        tell(str(exc))


def render(target: str | Path | Source, *, out: str | Path = "renders", samples: int | None = None, seed: int = 0,
           size: tuple[int, int] | None = None, grow: str = "spatial", scale: int | None = None,
           walk: bool = False, frames: int = 60, keyframes: int = 4, fps: float = 20,
           exports: Iterable[str] = (), data: str | None = None, steps: int | None = None,
           resolution: int | None = None, retrain: bool = False, save_as: str | None = None,
           device: str = "auto", runs: str | Path | None = "gallery", force: bool = False,
           progress: Progress | None = None, message: Say | None = None,
           note: Say | None = None) -> RenderResult:
    """Render ``target`` (a preset name or JSON file, ``RUN:INDIVIDUAL`` with RUN looked
    up under ``runs``, or a ``Source``) into the folder ``out`` and return every file
    written.

    ``samples`` images (default 64, or 4 with ``size``) go into one grid PNG; ``size``
    (width, height) above the training resolution grows through the generator (``grow=
    "spatial"``) or is resized (``"upscale"``); ``walk`` adds a looping latent walk of
    ``frames`` through ``keyframes`` as GIF and WebP; ``exports`` names ``"onnx"`` and
    ``"pt2"`` files (``"torchscript"``, deprecated, writes the ``.pt2`` with a note). A
    target without weights, or any with ``retrain``, is first trained on ``data`` for
    ``steps`` steps at ``resolution`` px (defaults: shapes, 300, 32); given for a target
    with weights, those are ignored with a note. ``save_as`` keeps the trained generator
    as a user preset. Nothing is overwritten without ``force``: every output is checked
    before any work. Raises ``RenderError`` (or ``PresetError``, ``StoreError``,
    ``DataError``) with a message meant for the user."""
    from ..train import resolve_device

    exports = list(exports) if not isinstance(exports, str) else exports
    _check_options(samples=samples, size=size, grow=grow, scale=scale, walk=walk, frames=frames,
                   keyframes=keyframes, fps=fps, exports=exports, steps=steps, resolution=resolution)
    size = (int(size[0]), int(size[1])) if size is not None else None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RenderError(f"--out {out} is a file; give a folder for the rendered files")
    notes: list[str] = []

    def say(text: str) -> None:
        if message:
            message(text)

    def tell(text: str) -> None:
        notes.append(text)
        if note:
            note(text)

    def stage(label: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(label, done, total)

    device = resolve_device(device)
    if save_as:
        from ..presets import check_name_free

        check_name_free(save_as, force)
    if isinstance(target, Source):
        source = target
    else:  # with --retrain a run's saved generator is not read (it may be the damaged file)
        source = resolve_source(str(target), Path(runs) if runs else None, weights=not retrain)
    say(f"Rendering {source.description}")

    # Every output path is known before any work: refuse early rather than after training.
    outputs = output_paths(source.name, out, seed=seed, size=size, walk=walk, exports=exports)
    refuse_to_overwrite(outputs.values(), force)

    # An image too large for the memory is refused now, with the figures, not after training
    # (or halfway through taking the machine's memory).
    will_train = source.state is None or retrain
    at = int(resolution if resolution is not None else DEFAULT_RESOLUTION) if will_train else source.resolution
    ar = is_ar(source)  # an AR model renders through its own path (render/ar.py)
    if ar:
        ar_plan(source, at, size, grow)  # a size it cannot make is refused before training
        check_ar_export(source, exports)
    else:
        check_memory(build_generator(source.genome, at).eval(), plan_size(source.genome, at, size, grow), device)

    files: list[RenderedFile] = []
    training = None
    explicit = [n for n, v in (("data", data), ("steps", steps), ("resolution", resolution)) if v is not None]
    if source.state is not None and not retrain:
        if explicit:
            tell(f"{source.name} has trained weights ({source.resolution} px); "
                 f"ignoring --{', --'.join(explicit)} (pass --retrain to train anew)")
    else:
        data = data if data is not None else DEFAULT_DATA
        steps = steps if steps is not None else DEFAULT_STEPS
        resolution = resolution if resolution is not None else DEFAULT_RESOLUTION
        why = "retraining" if source.state is not None or retrain else "no trained weights"
        say(f"{why}: training on {data} at {resolution} px for {steps} steps (seed {seed}, {device})")
        source, training = train_source(source, data, resolution=int(resolution), steps=steps, seed=seed,
                                        device=device, progress=stage("training"))
        say(f"trained in {training.seconds:.1f} s")

    kept = None
    if save_as:
        from ..presets import WEIGHTS_SUFFIX, save_trained

        kept = save_trained(save_as, source.genome, source.state, source.resolution,
                            notes=f"Kept by evoart render from {source.description}.",
                            provenance=source.provenance, force=force)
        files.append(RenderedFile("preset", kept, kept.stat().st_size, {"name": save_as}))
        weights = kept.with_name(f"{save_as}{WEIGHTS_SUFFIX}")
        if weights.is_file():
            files.append(RenderedFile("preset-weights", weights, weights.stat().st_size,
                                      {"resolution": source.resolution}))
        say(f"Kept as preset {save_as}: {kept}")

    if ar:
        return _render_ar(source, out=out, outputs=outputs, files=files, samples=samples, seed=seed, size=size,
                          grow=grow, scale=scale, walk=walk, frames=frames, keyframes=keyframes, fps=fps,
                          exports=exports, training=training, kept=kept, notes=notes, say=say, tell=tell)
    G = load_generator(source, device)
    plan = plan_size(source.genome, source.resolution, size, grow)
    n = samples or (4 if size else 64)
    t0 = time.perf_counter()
    images = render_images(G, n, seed=seed, plan=plan, progress=stage("rendering"))
    render_s = time.perf_counter() - t0
    tile = max(plan.size)
    zoom = scale or view_scale(tile, GRID_TILE_PX)
    with os_errors("create the folder"):
        out.mkdir(parents=True, exist_ok=True)
    _write(files, "grid", outputs["grid"], grid_png(images, scale=zoom), samples=n, seed=seed,
           size=plan.size, method=plan.method, zoom=zoom, seconds=render_s)
    zoom_note = f", tiles zoomed {zoom}x" if zoom > 1 else ""
    say(plan.message)
    say(f"Wrote {outputs['grid']} ({n} samples in {render_s:.1f} s{zoom_note})")

    if walk:
        t0 = time.perf_counter()
        movie = latent_walk(G, frames=frames, keyframes=keyframes, seed=seed, plan=plan, progress=stage("walk"))
        _write_walk(files, outputs, movie, fps=fps, zoom=view_scale(tile, WALK_TILE_PX), started=t0,
                    say=say, tell=tell, frames=frames, keyframes=keyframes)

    aliases = {export_kind(k): k for k in exports if k in EXPORT_ALIASES}
    for kind in dict.fromkeys(export_kind(k) for k in exports):
        if kind in aliases:
            tell(TORCHSCRIPT_NOTE.format(path=outputs[kind]))
        t0 = time.perf_counter()
        facts = EXPORTERS[kind][1](G, source.genome, outputs[kind], name=source.name)
        seconds = time.perf_counter() - t0
        files.append(RenderedFile(kind, outputs[kind], facts["bytes"],
                                  {**{k: v for k, v in facts.items() if k not in ("path", "bytes")},
                                   "seconds": seconds, "latent": G.latent, "resolution": G.resolution}))
        checked = f"; {facts['checked']}" if facts.get("checked") else ""
        say(f"Wrote {outputs[kind]} ({facts['bytes'] / 1e6:.1f} MB, {seconds:.1f} s{checked}): input z (batch, "
            f"{G.latent}) float32, output images (batch, 3, {G.resolution}, {G.resolution}) RGB in [0, 1]")
    return RenderResult(source, plan, files, training, kept, notes)


def _render_ar(source: Source, *, out: Path, outputs: dict, files: list, samples, seed, size, grow, scale, walk,
               frames, keyframes, fps, exports, training, kept, notes, say, tell) -> RenderResult:
    """``render`` for an AR model (render/ar.py): the grid continued or upscaled as its
    scan allows, the walk through a Gaussian copula of the noise, the step network."""
    result = ar_result(source)
    plan = ar_plan(source, source.resolution, size, grow)
    n = samples or (4 if size else 64)
    t0 = time.perf_counter()
    images = ar_images(result, plan, n, seed)
    render_s = time.perf_counter() - t0
    png, zoom = ar_grid(images, scale, GRID_TILE_PX)
    with os_errors("create the folder"):
        out.mkdir(parents=True, exist_ok=True)
    _write(files, "grid", outputs["grid"], png, samples=n, seed=seed, size=plan.size, method=plan.method,
           zoom=zoom, seconds=render_s)
    if plan.method == "upscale":
        tell(plan.message)
    else:
        say(plan.message)
    say(f"Wrote {outputs['grid']} ({n} samples in {render_s:.1f} s{f', tiles zoomed {zoom}x' if zoom > 1 else ''})")

    if walk:
        if size is not None and plan.method != "native":
            tell(f"an AR walk is drawn at the training size ({source.resolution} px), not at --size")
        t0 = time.perf_counter()
        movie = ar_walk(result, frames=frames, keyframes=keyframes, seed=seed)
        _write_walk(files, outputs, movie, fps=fps, zoom=view_scale(source.resolution, WALK_TILE_PX), started=t0,
                    say=say, tell=tell, frames=frames, keyframes=keyframes, copula=True,
                    what=": the sampling noise moved through a Gaussian copula; AR walks flicker in one style "
                         "rather than morph")

    aliases = {export_kind(k): k for k in exports if k in EXPORT_ALIASES}
    for kind in dict.fromkeys(export_kind(k) for k in exports):
        if kind in aliases:
            tell(TORCHSCRIPT_NOTE.format(path=outputs[kind]))
        data, seconds = ar_export(result, kind, source.name)
        _write(files, kind, outputs[kind], data, seconds=seconds, family="ar", resolution=result.resolution,
               window=window_length(result.genes, result.resolution))
        say(f"Wrote {outputs[kind]} ({len(data) / 1e6:.1f} MB, {seconds:.1f} s): {AR_EXPORT_NOTE}")
    return RenderResult(source, plan, files, training, kept, notes)
