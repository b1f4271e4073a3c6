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
from rich.text import Text

from . import console, err_console, main
from .options import device_option, runs_root_option

RENDER_HELP = """Render TARGET: a preset (name or .json file) or RUN:INDIVIDUAL.

Writes a grid of samples into --out. A target without trained weights (the shipped
presets, for example) is first trained on --data for --steps steps. --size larger than
the training resolution grows the image through the generator from a grid of latents
(Spatial GAN style); --grow upscale only resizes. --walk adds a looping latent walk as
GIF and WebP; --export writes the generator as ONNX or a torch.export program
(.pt2) to run without evoart. Files are never overwritten without --force.

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
    """A rich progress bar per stage on a terminal, a few plain lines otherwise: the
    library's ``progress(stage, done, total)`` callback."""

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

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            if label not in self.tasks:
                self.tasks[label] = self.progress.add_task(label, total=total)
            self.progress.update(self.tasks[label], completed=done, total=total)
            return
        self.last.setdefault(label, time.monotonic())
        if done == total or time.monotonic() - self.last[label] > 10:
            self.last[label] = time.monotonic()
            console.print(f"{label}: {done}/{total}", highlight=False)


@main.command(help=RENDER_HELP)
@click.argument("target")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("renders"),
              show_default=True, help="Folder for the rendered files.")
@click.option("--samples", type=click.IntRange(1, 1024), help="Images in the grid.  [default: 64, or 4 with --size]")
@click.option("--seed", type=int, default=0, show_default=True, help="Latents (and training, if any).")
@click.option("--size", help="Image size: 512 or 768x512. Above the training resolution the generator grows it; "
                             "a size that needs over 75% of the available memory is refused, with the size that fits.")
@click.option("--grow", type=click.Choice(["spatial", "upscale"]), default="spatial", show_default=True,
              help="How a larger --size is made: through the generator, or by resizing.")
@click.option("--scale", type=click.IntRange(1, 32), help="Nearest-neighbour zoom of the grid's tiles.  [default: tiles about 128 px]")
@click.option("--walk", is_flag=True, help="Also write a looping latent walk (GIF and WebP).")
@click.option("--frames", type=click.IntRange(2, 2000), default=60, show_default=True, help="Frames of the walk.")
@click.option("--keyframes", type=click.IntRange(2, 100), default=4, show_default=True,
              help="Fixed latents the walk passes through.")
@click.option("--fps", type=click.FloatRange(1, 60), default=20, show_default=True, help="Frames per second of the walk.")
@click.option("--export", "exports", type=click.Choice(["onnx", "pt2", "torchscript"]), multiple=True,
              help="Also write the generator as ONNX or a torch.export program (.pt2), repeatable. "
                   "torchscript is a deprecated alias of pt2.")
@click.option("--data", default="shapes", show_default=True, help="Dataset to train on when TARGET has no weights.")
@click.option("--steps", type=click.IntRange(1, 100000), default=300, show_default=True,
              help="Training steps when TARGET has no weights.")
@click.option("--resolution", type=click.Choice(["16", "32", "64", "128"]), default="32", show_default=True,
              help="Training resolution when TARGET has no weights.")
@click.option("--retrain", is_flag=True, help="Train anew even if TARGET has weights.")
@click.option("--save-as", metavar="NAME", help="Keep the trained generator as your preset NAME.")
@device_option("auto")
@click.option("--threads", type=click.IntRange(1, 256),
              help="CPU threads for torch.  [default: half the cores, at least 1]")
@runs_root_option("Where RUN names are looked up.", name="--runs")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_context
def render(ctx, target, out, samples, seed, size, grow, scale, walk, frames, keyframes, fps, exports, data,
           steps, resolution, retrain, save_as, device, runs, threads, force):
    import os

    import torch

    from ..render import render as render_target
    from ..train import resolve_device

    wh = parse_size(size)
    device = resolve_device(device)
    if device == "cpu":
        # torch's default (a thread per core) collapses to a fraction of its speed as soon
        # as anything else keeps a core busy (measured 5x slower on a busy 2-core machine)
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) // 2))

    def given(name, value):  # training options count only when typed: the library notes them
        return value if ctx.get_parameter_source(name).name == "COMMANDLINE" else None

    with _Bars() as bars:
        render_target(
            target, out=out, samples=samples, seed=seed, size=wh, grow=grow, scale=scale, walk=walk,
            frames=frames, keyframes=keyframes, fps=fps, exports=exports, data=given("data", data),
            steps=given("steps", steps), resolution=given("resolution", int(resolution)), retrain=retrain,
            save_as=save_as, device=device, runs=runs, force=force, progress=bars,
            message=lambda text: console.print(text, markup=False, highlight=False),
            note=lambda text: err_console.print(Text.assemble(("Note:", "yellow"), " ", text), highlight=False))
