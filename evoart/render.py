"""Rendering a kept genome: sample grids, large images, latent walks and exports.

What is rendered is a ``Source``: a preset or an individual of a run (``RUN:INDIVIDUAL``),
with its trained generator when there is one; ``train_source`` trains one briefly when
there is not. Then:

* ``render_images``: samples from fixed, seeded latents. Sizes above the training
  resolution grow *through the generator* (Spatial GAN, Jetchev et al. 2016): the
  generator is a linear 4x4 "stem" followed only by convolutional blocks, so a larger
  stem map gives a larger image. The larger map is made from a grid of latents, one per
  4x4 stem tile (one training-size image area), interpolated to one latent per stem
  pixel (bilinear, norm-preserving), each pixel using the stem weights of its position
  in the 4x4 tile. A one-tile grid is exactly the ordinary generator. ``grow="upscale"``
  instead resizes training-size images (Lanczos), which adds no detail and says so.
* ``latent_walk``: a seamless loop of spherical interpolations between fixed latents
  (or latent grids, for large sizes), saved as GIF and WebP.
* ``export_onnx`` / ``export_torchscript``: the generator as a file that runs without
  evoart: input ``z`` (N, latent) float32, output ``images`` (N, 3, R, R) float32 RGB in
  [0, 1].

Everything is seeded per image (latent and noise), so an image does not depend on how
many are drawn with it, and rendering a preset with weights twice on the CPU gives
byte-identical PNGs.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import __version__
from .genome import Genome
from .errors import EvoartError
from .imaging import png_bytes, to_uint8
from .nets import Generator, build_generator

ONNX_OPSET = 18          # what onnxruntime 1.14+ (TouchDesigner 2023+) and onnxruntime-web run
MAX_PIXELS = 4096 * 4096  # one rendered image; beyond this a CPU render takes many minutes


class RenderError(EvoartError):
    """A render that cannot be done as asked; the message is meant for the user."""


# ---- what is rendered --------------------------------------------------------------------

@dataclass
class Source:
    name: str                      # used in file names
    genome: Genome
    state: dict | None             # generator state_dict, or None (train first)
    resolution: int | None         # the resolution ``state`` was trained at
    description: str               # where it comes from, for people
    provenance: dict = field(default_factory=dict)
    preset_name: str | None = None


def resolve_source(ref: str, runs_root: Path | None = None) -> Source:
    """``ref`` is a preset name, a preset JSON file, or ``RUN:INDIVIDUAL`` (RUN a run
    name under ``runs_root`` or a run folder)."""
    from . import presets

    looks_like_file = ref.endswith(presets.PRESET_SUFFIX) and Path(ref).exists()
    if ":" in ref and not looks_like_file:
        run_ref, _, ind = ref.rpartition(":")
        return _source_from_run(run_ref, ind, runs_root)
    preset = presets.load_preset(ref)
    state = presets.load_weights(preset)
    where = {"user": "your presets", "shipped": "shipped with evoart", "file": str(preset.path)}[preset.origin]
    return Source(preset.name, preset.genome, state, preset.resolution,
                  f"preset {preset.name} ({where})", dict(preset.provenance), preset.name)


def _source_from_run(run_ref: str, ind: str, runs_root: Path | None) -> Source:
    from .genome import genome_from_dict
    from .presets import check_state_fits
    from .store import RunStore, StoreError, resolve_run

    if not run_ref or not ind:
        raise RenderError(f"{run_ref}:{ind} is not RUN:INDIVIDUAL (for example 20261126-1405-shapes-s0:g003-i07)")
    run_dir = resolve_run(run_ref, runs_root)
    store = RunStore.open(run_dir, readonly=True)
    try:
        try:
            row = store.individual(ind)
        except StoreError:
            raise RenderError(f"run {store.name} has no individual {ind!r}") from None
        genome = genome_from_dict(row.genome)
        record = store.config
        resolution = int(record.get("evolve", {}).get("resolution", 32))
        state = store.load_generator_state(ind) if row.status == "ok" else None
        if state is not None:
            check_state_fits(genome, resolution, state, f"{ind}'s generator.pt")
        prov = {"source": "run", "run": store.name, "individual": ind, "generation": row.born,
                "genome_hash": row.genome_hash, "dataset": record.get("dataset", {}).get("name"),
                "dataset_fingerprint": record.get("dataset", {}).get("fingerprint"),
                "resolution": resolution, "seed": row.seed}
        name = f"{store.name}-{ind}"
        return Source(name, genome, state, resolution if state is not None else None,
                      f"{ind} of run {store.name}" + ("" if state is not None else f" (no weights: {row.status})"),
                      {k: v for k, v in prov.items() if v is not None})
    finally:
        store.close()


@dataclass
class Training:
    seconds: float
    steps: int
    status: str
    dataset: str
    resolution: int


def train_source(source: Source, data: str = "shapes", *, resolution: int = 32, steps: int = 300,
                 seed: int = 0, device: str = "cpu",
                 progress: Callable[[int, int], None] | None = None) -> tuple[Source, Training]:
    """Train ``source``'s genome briefly on ``data`` (a built-in dataset or an image
    folder) and return it with the trained generator (the EMA one when the genome uses
    EMA). Deterministic on the CPU for a fixed seed."""
    from .data import load_images
    from .imaging import to_float_tensor
    from .train import train_briefly

    images = load_images(data, resolution, seed=seed)
    tensor = to_float_tensor(images.images)
    trained = train_briefly(source.genome, tensor, steps=steps, device=device, seed=seed, progress=progress)
    st = trained.stats
    if st.status != "ok":
        raise RenderError(f"training {source.name} diverged ({st.reason}); try another --seed, fewer --steps "
                          "or another dataset")
    state = {k: v.detach().cpu().clone() for k, v in trained.generator.state_dict().items()}
    prov = {**source.provenance, "dataset": images.name, "dataset_fingerprint": images.fingerprint,
            "resolution": resolution, "seed": seed, "steps": st.steps, "source": "render"}
    if source.preset_name:
        prov["derived_from"] = source.preset_name
    out = Source(source.name, source.genome, state, resolution, source.description, prov, source.preset_name)
    return out, Training(st.seconds, st.steps, st.status, images.name, resolution)


def load_generator(source: Source, device: str = "cpu") -> Generator:
    if source.state is None or source.resolution is None:
        raise RenderError(f"{source.name} has no trained weights; train it first")
    G = build_generator(source.genome, source.resolution)
    G.load_state_dict(source.state)
    return G.to(device).eval()


# ---- seeded latents ----------------------------------------------------------------------

def _sub_seed(seed: int, *parts) -> int:
    key = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


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


def plan_size(genome: Genome, resolution: int, size: tuple[int, int] | None, grow: str = "spatial") -> GrowPlan:
    """How an image of ``size`` (width, height) is made from a generator trained at
    ``resolution``, with a sentence that says it plainly."""
    if size is None or size == (resolution, resolution):
        return GrowPlan("native", (resolution, resolution), (1, 1), f"{resolution} px, the training resolution")
    w, h = size
    if w < 1 or h < 1 or w * h > MAX_PIXELS:
        raise RenderError(f"--size {w}x{h} is outside 1 to {int(math.sqrt(MAX_PIXELS))}x{int(math.sqrt(MAX_PIXELS))}")
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
def _forward_one(G: Generator, grid: torch.Tensor, plan: GrowPlan, noise_seed: int) -> np.ndarray:
    device = next(G.parameters()).device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(noise_seed)  # noise injection draws from the global RNG
        if plan.method == "spatial":
            out = SpatialGenerator(G)(grid[None].to(device))
        else:
            out = G(grid[:, 0, 0][None].to(device))
    return _crop_resize(out.float().cpu(), plan)


def render_images(G: Generator, n: int, *, seed: int = 0, plan: GrowPlan | None = None,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``n`` images as uint8 (n, H, W, 3); image i depends only on (seed, i)."""
    G.eval()
    plan = plan or GrowPlan("native", (G.resolution, G.resolution), (1, 1), "")
    out = []
    for i in range(n):
        grid = latent_grid(G.latent, seed, i, plan.cells)
        out.append(_forward_one(G, grid, plan, _sub_seed(seed, "noise", i)))
        if progress:
            progress(i + 1, n)
    return np.stack(out)


# ---- latent walks ------------------------------------------------------------------------

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


def walk_latents(latent: int, *, frames: int, keyframes: int, seed: int,
                 cells: tuple[int, int] = (1, 1)) -> list[torch.Tensor]:
    """A loop through ``keyframes`` fixed latent grids, ``frames`` in all; the frame after
    the last is the first again."""
    if keyframes < 2:
        raise RenderError("a latent walk needs at least 2 keyframes")
    if frames < keyframes:
        raise RenderError(f"a latent walk needs at least as many frames ({frames}) as keyframes ({keyframes})")
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
    plan = plan or GrowPlan("native", (G.resolution, G.resolution), (1, 1), "")
    grids = walk_latents(G.latent, frames=frames, keyframes=keyframes, seed=seed, cells=plan.cells)
    out = []
    for i, grid in enumerate(grids):
        out.append(_forward_one(G, grid, plan, _sub_seed(seed, "walk-noise")))
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


def view_scale(size: int, target: int) -> int:
    """Integer nearest-neighbour scale that shows ``size`` px images at about ``target``."""
    return max(1, target // max(1, size))


def grid_png(images: np.ndarray, *, scale: int = 1) -> bytes:
    from .imaging import image_grid

    return png_bytes(image_grid(images, pad=2, scale=scale))


# ---- export ------------------------------------------------------------------------------

class ExportedGenerator(nn.Module):
    """The generator as exported: z (N, latent) -> RGB images (N, 3, R, R) in [0, 1], the
    range TouchDesigner's ONNX operators and browser canvases expect."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.g = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return ((self.g(z) + 1) * 0.5).clamp(0, 1)


def _cpu_copy(G: Generator, genome: Genome) -> Generator:
    H = build_generator(genome, G.resolution)
    H.load_state_dict({k: v.detach().cpu() for k, v in G.state_dict().items()})
    return H.eval()


def _metadata(name: str, genome: Genome, G: Generator) -> dict[str, str]:
    return {
        "evoart.name": name,
        "evoart.version": __version__,
        "evoart.genome": genome.to_json(),
        "evoart.latent": str(G.latent),
        "evoart.resolution": str(G.resolution),
        "evoart.input": f"z: float32 (batch, {G.latent}), standard normal",
        "evoart.output": f"images: float32 (batch, 3, {G.resolution}, {G.resolution}), RGB in [0, 1]",
        "evoart.noise": "random per call" if any(b.noise for b in genome.generator.blocks) else "none",
    }


def export_onnx(G: Generator, genome: Genome, path: Path, *, name: str) -> dict:
    """Write the generator as one ONNX file (opset 18, weights inside, dynamic batch) with
    evoart's description in its metadata, and check it with onnxruntime when installed.
    Needs the optional extra ``evoart[onnx]``; returns facts about the file."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's ONNX exporter is built on it)
    except ImportError:
        raise RenderError("ONNX export needs the optional extra: pip install 'evoart[onnx]' "
                          "(onnx, onnxscript, onnxruntime)") from None
    import onnx

    H = _cpu_copy(G, genome)
    wrapper = ExportedGenerator(H).eval()
    z = torch.randn(2, H.latent, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                wrapper, (z,), dynamo=True, opset_version=ONNX_OPSET, input_names=["z"],
                output_names=["images"], dynamic_shapes=({0: torch.export.Dim("batch")},),
                external_data=False, verbose=False)
        except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; keep the first line
            raise RenderError(f"ONNX export failed: {str(exc).strip().splitlines()[0][:300]}") from None
    model = program.model_proto
    for key, value in _metadata(name, genome, H).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "evoart"
    model.producer_version = __version__
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    from .files import atomic_write_bytes

    atomic_write_bytes(Path(path), data)
    facts = {"path": str(path), "bytes": len(data), "opset": ONNX_OPSET, "checked": None}
    try:
        import onnxruntime as ort
    except ImportError:
        return facts
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    zc = torch.randn(3, H.latent, generator=torch.Generator().manual_seed(1))
    got = session.run(["images"], {"z": zc.numpy()})[0]
    if any(b.noise for b in genome.generator.blocks):
        ok = got.shape == (3, 3, H.resolution, H.resolution) and np.isfinite(got).all()
        facts["checked"] = "shape (noise differs per call)" if ok else "FAILED"
    else:
        with torch.no_grad():
            want = wrapper(zc).numpy()
        diff = float(np.abs(got - want).max())
        facts["checked"] = f"max difference to torch {diff:.1e}"
        if not diff < 1e-3:
            raise RenderError(f"the exported ONNX model differs from the generator by {diff:.3g}; not trusting it")
    return facts


def export_torchscript(G: Generator, genome: Genome, path: Path, *, name: str) -> dict:
    """Write a traced TorchScript module (``torch.jit.load`` runs it without evoart),
    where the installed torch still supports tracing."""
    trace = getattr(torch.jit, "trace", None)
    if trace is None:
        raise RenderError(f"torch {torch.__version__} no longer supports TorchScript; use --export onnx")
    H = _cpu_copy(G, genome)
    wrapper = ExportedGenerator(H).eval()
    z = torch.randn(2, H.latent, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated in recent torch, still works
        try:
            with torch.no_grad():
                traced = trace(wrapper, z, check_trace=False)
        except Exception as exc:  # noqa: BLE001 - tracing raises many kinds
            raise RenderError(f"TorchScript tracing failed with torch {torch.__version__}: "
                              f"{str(exc).strip().splitlines()[0][:300]}; use --export onnx") from None
        buf = io.BytesIO()
        extra = {"evoart.json": json.dumps(_metadata(name, genome, H), indent=2)}
        torch.jit.save(traced, buf, _extra_files=extra)
    data = buf.getvalue()
    from .files import atomic_write_bytes

    atomic_write_bytes(Path(path), data)
    return {"path": str(path), "bytes": len(data)}


EXPORTERS = {"onnx": (".onnx", export_onnx), "torchscript": (".torchscript.pt", export_torchscript)}
