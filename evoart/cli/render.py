"""`evoart render`: sample grids, large images, latent walks and exports of a preset or
of an individual of a run."""

from __future__ import annotations

import re
import time
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from . import console, err_console, main

RENDER_HELP = """Render TARGET: a preset (name or .json file) or RUN:INDIVIDUAL.

Writes a grid of samples into --out. A target without trained weights (the shipped
presets, for example) is first trained on --data for --steps steps. --size larger than
the training resolution grows the image through the generator from a grid of latents
(Spatial GAN style); --grow upscale only resizes. --walk adds a looping latent walk as
GIF and WebP; --export writes the generator as ONNX or TorchScript to run without
evoart. Files are never overwritten without --force.

\b
Examples:
  evoart render dcgan-classic                       # train 300 steps on shapes, 64 samples
  evoart render cppn-like --size 512 --walk --save-as my-cppn
  evoart render my-cppn --export onnx               # my-cppn.onnx for TouchDesigner / the browser
  evoart render gallery/20261126-1405-shapes-s0:g003-i07 --samples 16 --seed 3
"""


def parse_size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x×]\s*(\d+))?\s*", value)
    if not m:
        raise click.BadParameter(f"{value!r}: give pixels (512) or width x height (768x512)")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) else w
    if not (1 <= w <= 4096 and 1 <= h <= 4096):
        raise click.BadParameter(f"{value!r}: width and height must be 1 to 4096")
    return (w, h)


class _Bars:
    """A rich progress bar on a terminal, a few plain lines otherwise."""

    def __init__(self):
        self.progress = None
        self.tasks: dict[str, int] = {}
        self.last: dict[str, float] = {}

    def __enter__(self):
        if console.is_terminal:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=console, transient=True)
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()

    def callback(self, label: str):
        self.last[label] = time.monotonic()

        def update(done: int, total: int) -> None:
            if self.progress is not None:
                if label not in self.tasks:
                    self.tasks[label] = self.progress.add_task(label, total=total)
                self.progress.update(self.tasks[label], completed=done, total=total)
            elif done == total or time.monotonic() - self.last.get(label, 0) > 10:
                self.last[label] = time.monotonic()
                console.print(f"{label}: {done}/{total}", highlight=False)
        return update


@main.command(help=RENDER_HELP)
@click.argument("target")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("renders"),
              show_default=True, help="Folder for the rendered files.")
@click.option("--samples", type=click.IntRange(1, 1024), help="Images in the grid.  [default: 64, or 4 with --size]")
@click.option("--seed", type=int, default=0, show_default=True, help="Latents (and training, if any).")
@click.option("--size", help="Image size: 512 or 768x512. Above the training resolution the generator grows it.")
@click.option("--grow", type=click.Choice(["spatial", "upscale"]), default="spatial", show_default=True,
              help="How a larger --size is made: through the generator, or by resizing.")
@click.option("--scale", type=click.IntRange(1, 32), help="Nearest-neighbour zoom of the grid's tiles.  [default: tiles about 128 px]")
@click.option("--walk", is_flag=True, help="Also write a looping latent walk (GIF and WebP).")
@click.option("--frames", type=click.IntRange(2, 2000), default=60, show_default=True, help="Frames of the walk.")
@click.option("--keyframes", type=click.IntRange(2, 100), default=4, show_default=True,
              help="Fixed latents the walk passes through.")
@click.option("--fps", type=click.FloatRange(1, 60), default=20, show_default=True, help="Frames per second of the walk.")
@click.option("--export", "exports", type=click.Choice(["onnx", "torchscript"]), multiple=True,
              help="Also write the generator as ONNX or TorchScript (repeatable).")
@click.option("--data", default="shapes", show_default=True, help="Dataset to train on when TARGET has no weights.")
@click.option("--steps", type=click.IntRange(1, 100000), default=300, show_default=True,
              help="Training steps when TARGET has no weights.")
@click.option("--resolution", type=click.Choice(["16", "32", "64", "128"]), default="32", show_default=True,
              help="Training resolution when TARGET has no weights.")
@click.option("--retrain", is_flag=True, help="Train anew even if TARGET has weights.")
@click.option("--save-as", metavar="NAME", help="Keep the trained generator as your preset NAME.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(1, 256),
              help="CPU threads for torch.  [default: half the cores, at least 1]")
@click.option("--runs", type=click.Path(file_okay=False, path_type=Path), default=Path("gallery"),
              show_default=True, help="Where RUN names are looked up.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_context
def render(ctx, target, out, samples, seed, size, grow, scale, walk, frames, keyframes, fps, exports, data,
           steps, resolution, retrain, save_as, device, runs, threads, force):
    import os

    import torch

    from .. import render as R
    from ..presets import check_name_free, save_trained
    from ..train import resolve_device

    wh = parse_size(size)
    device = resolve_device(device)
    if device == "cpu":
        # torch's default (a thread per core) collapses to a fraction of its speed as soon
        # as anything else keeps a core busy (measured 5x slower on a busy 2-core machine)
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) // 2))
    if save_as:
        check_name_free(save_as, force)
    source = R.resolve_source(target, runs)
    console.print(f"Rendering {source.description}", highlight=False)

    # Every output path is known before any work: refuse early rather than after training.
    stem = f"{source.name}-s{seed}" + (f"-{wh[0]}x{wh[1]}" if wh else "")
    outputs = {"grid": out / f"{stem}-grid.png"}
    if walk:
        outputs["gif"] = out / f"{stem}-walk.gif"
        outputs["webp"] = out / f"{stem}-walk.webp"
    for kind in dict.fromkeys(exports):
        outputs[kind] = out / f"{source.name}{R.EXPORTERS[kind][0]}"
    taken = [p for p in outputs.values() if p.exists()]
    if taken and not force:
        raise click.ClickException(f"{taken[0]} exists" + (f" (and {len(taken) - 1} more)" if len(taken) > 1 else "")
                                   + "; pass --force to overwrite, or another --out or --seed")

    with _Bars() as bars:
        explicit = [n for n in ("data", "steps", "resolution") if ctx.get_parameter_source(n).name == "COMMANDLINE"]
        if source.state is not None and not retrain:
            if explicit:
                err_console.print(f"[yellow]Note:[/] {source.name} has trained weights ({source.resolution} px); "
                                  f"ignoring --{', --'.join(explicit)} (pass --retrain to train anew)",
                                  highlight=False)
        else:
            why = "retraining" if source.state is not None else "no trained weights"
            console.print(f"{why}: training on {data} at {resolution} px for {steps} steps (seed {seed}, {device})",
                          highlight=False)
            source, training = R.train_source(source, data, resolution=int(resolution), steps=steps, seed=seed,
                                              device=device, progress=bars.callback("training"))
            console.print(f"trained in {training.seconds:.1f} s", highlight=False)
        if save_as:
            path = save_trained(save_as, source.genome, source.state, source.resolution,
                                notes=f"Kept by evoart render from {source.description}.",
                                provenance=source.provenance, force=force)
            console.print(f"Kept as preset [bold]{save_as}[/]: {path}", highlight=False)

        G = R.load_generator(source, device)
        plan = R.plan_size(source.genome, source.resolution, wh, grow)
        n = samples or (4 if wh else 64)
        t0 = time.perf_counter()
        images = R.render_images(G, n, seed=seed, plan=plan, progress=bars.callback("rendering"))
        render_s = time.perf_counter() - t0
        tile = max(plan.size)
        zoom = scale or R.view_scale(tile, 128)
        out.mkdir(parents=True, exist_ok=True)
        _write(outputs["grid"], R.grid_png(images, scale=zoom))
        zoom_note = f", tiles zoomed {zoom}x" if zoom > 1 else ""
        console.print(f"{plan.message}", highlight=False)
        console.print(f"Wrote {outputs['grid']} ({n} samples in {render_s:.1f} s{zoom_note})", highlight=False)

        if walk:
            t0 = time.perf_counter()
            movie = R.latent_walk(G, frames=frames, keyframes=keyframes, seed=seed, plan=plan,
                                  progress=bars.callback("walk"))
            wz = R.view_scale(tile, 256)
            _write(outputs["gif"], R.gif_bytes(movie, fps=fps, scale=wz))
            console.print(f"Wrote {outputs['gif']} ({frames} frames, {keyframes} keyframes, "
                          f"{time.perf_counter() - t0:.1f} s)", highlight=False)
            try:
                _write(outputs["webp"], R.webp_bytes(movie, fps=fps, scale=wz))
                console.print(f"Wrote {outputs['webp']}", highlight=False)
            except R.RenderError as exc:
                err_console.print(f"[yellow]Note:[/] {exc}", highlight=False)

        for kind in dict.fromkeys(exports):
            t0 = time.perf_counter()
            facts = R.EXPORTERS[kind][1](G, source.genome, outputs[kind], name=source.name)
            checked = f"; {facts['checked']}" if facts.get("checked") else ""
            console.print(f"Wrote {outputs[kind]} ({facts['bytes'] / 1e6:.1f} MB, "
                          f"{time.perf_counter() - t0:.1f} s{checked}): input z (batch, {G.latent}) float32, "
                          f"output images (batch, 3, {G.resolution}, {G.resolution}) RGB in [0, 1]",
                          highlight=False)


def _write(path: Path, data: bytes) -> None:
    from ..files import atomic_write_bytes

    atomic_write_bytes(path, data)
