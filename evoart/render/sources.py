"""What is rendered: a ``Source`` (a preset or an individual of a run) with its trained
generator when there is one, and ``train_source`` to train one briefly when there is
not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EvoartError
from ..errors import os_errors as _os_errors
from ..genome import Genome
from ..nets import Generator, build_generator


class RenderError(EvoartError):
    """A render that cannot be done as asked; the message is meant for the user."""


def os_errors(doing: str, path: object = None):
    """``errors.os_errors`` raising a RenderError."""
    return _os_errors(doing, path, error=RenderError)


@dataclass
class Source:
    name: str                      # used in file names
    genome: Genome
    state: dict | None             # generator state_dict, or None (train first)
    resolution: int | None         # the resolution ``state`` was trained at
    description: str               # where it comes from, for people
    provenance: dict = field(default_factory=dict)
    preset_name: str | None = None


def resolve_source(ref: str, runs_root: Path | None = None, *, weights: bool = True) -> Source:
    """``ref`` is a preset name, a preset JSON file, or ``RUN:INDIVIDUAL`` (RUN a run
    name under ``runs_root`` or a run folder). ``weights=False``: leave a run
    individual's saved generator unread (it is trained anew)."""
    from .. import presets

    ref = str(ref)
    looks_like_file = ref.endswith(presets.PRESET_SUFFIX) and Path(ref).exists()
    if ":" in ref and not looks_like_file:
        run_ref, _, ind = ref.rpartition(":")
        return _source_from_run(run_ref, ind, runs_root, weights=weights)
    preset = presets.load_preset(ref)
    state = presets.load_weights(preset)
    where = {"user": "your presets", "shipped": "shipped with evoart", "file": str(preset.path)}[preset.origin]
    return Source(preset.name, preset.genome, state, preset.resolution,
                  f"preset {preset.name} ({where})", dict(preset.provenance), preset.name)


def _source_from_run(run_ref: str, ind: str, runs_root: Path | None, *, weights: bool = True) -> Source:
    from ..genome import genome_from_dict
    from ..presets import check_state_fits
    from ..store import DamagedFile, RunStore, StoreError, resolve_run

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
        try:
            state = store.load_generator_state(ind) if row.status == "ok" and weights else None
        except DamagedFile as exc:
            raise RenderError(f"{exc} To render {ind}'s genome anyway, add --retrain: it is trained anew "
                              "on --data.") from None
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
    from ..data import load_images
    from ..families import of
    from ..imaging import to_float_tensor

    if source.genome.family != "ar":  # an AR model trains here and renders through render/ar.py
        check_renders(source)
    images = load_images(data, resolution, seed=seed)
    tensor = to_float_tensor(images.images)
    trained = of(source.genome).train(source.genome, tensor, steps=steps, device=device, seed=seed, progress=progress)
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


def check_renders(source: Source) -> None:
    """Refuse, with the reason, a genome whose family the generator pipeline cannot draw.
    A GAN's generator and a VAE's decoder both map latents to images, so both render,
    walk and export alike."""
    from ..families import of

    family = of(source.genome)
    if not family.renders:
        raise RenderError(f"{source.name} is {'an' if family.label[0] in 'AEIOU' else 'a'} {family.label}: the "
                          "generator pipeline draws models with a generator (GAN, VAE); "
                          + ("an AR model renders through evoart.render.ar" if family.name == "ar" else
                             "this family has no render path"))


def load_generator(source: Source, device: str = "cpu") -> Generator:
    check_renders(source)
    if source.state is None or source.resolution is None:
        raise RenderError(f"{source.name} has no trained weights; train it first")
    G = build_generator(source.genome, source.resolution)
    G.load_state_dict(source.state)
    return G.to(device).eval()
