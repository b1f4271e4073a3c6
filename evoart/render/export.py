"""Exports: the generator as a file that runs without evoart.

Input ``z`` (N, latent) float32, output ``images`` (N, 3, R, R) float32 RGB in [0, 1],
with a dynamic batch dimension, evoart's description inside, and each file checked
against torch after it is written:

* ``export_onnx``: one ONNX file (opset 18) for onnxruntime, TouchDesigner and browsers;
  needs the optional extra ``evoart[onnx]``.
* ``export_pt2``: a ``torch.export`` program (``.pt2``), loaded with
  ``torch.export.load(path).module()``; needs only torch. It replaces TorchScript, which
  torch deprecates: the ``torchscript`` kind is kept one release as an alias that writes
  the ``.pt2`` file (``EXPORT_ALIASES``, ``TORCHSCRIPT_NOTE``).
"""

from __future__ import annotations

import io
import json
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..files import atomic_write_bytes
from ..genome import Genome
from ..nets import Generator, build_generator
from .sources import RenderError, os_errors

ONNX_OPSET = 18          # what onnxruntime 1.14+ (TouchDesigner 2023+) and onnxruntime-web run
PT2_METADATA = "evoart.json"  # the extra file of a .pt2 that holds evoart's description
CHECK_TOLERANCE = 1e-3   # an exported file that differs from torch by more is not written off as rounding


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


def _has_noise(genome: Genome) -> bool:
    return any(b.noise for b in genome.generator.blocks)


def _metadata(name: str, genome: Genome, G: Generator) -> dict[str, str]:
    return {
        "evoart.name": name,
        "evoart.version": __version__,
        "evoart.genome": genome.to_json(),
        "evoart.latent": str(G.latent),
        "evoart.resolution": str(G.resolution),
        "evoart.input": f"z: float32 (batch, {G.latent}), standard normal",
        "evoart.output": f"images: float32 (batch, 3, {G.resolution}, {G.resolution}), RGB in [0, 1]",
        "evoart.noise": "random per call" if _has_noise(genome) else "none",
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _check_against_torch(run, wrapper: ExportedGenerator, genome: Genome, what: str) -> str:
    """Run the written file (``run``: z as numpy -> images as numpy) on fresh latents and
    compare it with the generator; returns what was checked, raises RenderError when it
    differs by more than rounding."""
    H = wrapper.g
    zc = torch.randn(3, H.latent, generator=torch.Generator().manual_seed(1))
    got = run(zc.numpy())
    if _has_noise(genome):
        ok = got.shape == (3, 3, H.resolution, H.resolution) and np.isfinite(got).all()
        if not ok:
            raise RenderError(f"the exported {what} gives images of shape {got.shape} or non-finite values; "
                              "not trusting it")
        return "shape (noise differs per call)"
    with torch.no_grad():
        want = wrapper(zc).numpy()
    diff = float(np.abs(got - want).max())
    if not diff < CHECK_TOLERANCE:
        raise RenderError(f"the exported {what} differs from the generator by {diff:.3g}; not trusting it")
    return f"max difference to torch {diff:.1e}"


@contextmanager
def _removed_if_untrusted(path: Path):
    """The file just written is checked inside; a file that fails its check is removed, so
    that no untrusted export is left behind."""
    try:
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _to_export(G: Generator, genome: Genome) -> tuple[Generator, ExportedGenerator, torch.Tensor]:
    """A CPU copy of the generator, its export wrapper and a fixed example batch."""
    H = _cpu_copy(G, genome)
    return H, ExportedGenerator(H).eval(), torch.randn(2, H.latent, generator=torch.Generator().manual_seed(0))


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

    H, wrapper, z = _to_export(G, genome)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                wrapper, (z,), dynamo=True, opset_version=ONNX_OPSET, input_names=["z"],
                output_names=["images"], dynamic_shapes=({0: torch.export.Dim("batch")},),
                external_data=False, verbose=False)
        except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; keep the first line
            raise RenderError(f"ONNX export failed: {_first_line(exc)}") from None
    model = program.model_proto
    for key, value in _metadata(name, genome, H).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "evoart"
    model.producer_version = __version__
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    path = Path(path)
    with os_errors("write", path):
        atomic_write_bytes(path, data)
    facts = {"path": str(path), "bytes": len(data), "opset": ONNX_OPSET, "checked": None}
    try:
        import onnxruntime as ort
    except ImportError:
        return facts
    with _removed_if_untrusted(path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        facts["checked"] = _check_against_torch(lambda z: session.run(["images"], {"z": z})[0], wrapper, genome,
                                                "ONNX model")
    return facts


def pt2_bytes(G: Generator, genome: Genome, *, name: str) -> bytes:
    """The generator as a ``torch.export`` program, serialised (``torch.export.save``),
    with evoart's description as the extra file ``evoart.json``."""
    H, wrapper, z = _to_export(G, genome)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.export.export(wrapper, (z,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
            buf = io.BytesIO()
            torch.export.save(program, buf, extra_files={PT2_METADATA: json.dumps(_metadata(name, genome, H),
                                                                                  indent=2)})
        except Exception as exc:  # noqa: BLE001 - torch.export raises many kinds; keep the first line
            raise RenderError(f"torch.export of {name} failed with torch {torch.__version__}: "
                              f"{_first_line(exc)}; use --export onnx") from None
    return buf.getvalue()


def export_pt2(G: Generator, genome: Genome, path: Path, *, name: str) -> dict:
    """Write the generator as a ``torch.export`` program (``.pt2``: dynamic batch, weights
    inside, evoart's description in the extra file ``evoart.json``), then load the file
    back and check it against the generator (a file that fails is removed). Without evoart
    it runs as ``torch.export.load(path).module()(z)``. Returns facts about the file."""
    data = pt2_bytes(G, genome, name=name)
    path = Path(path)
    with os_errors("write", path):
        atomic_write_bytes(path, data)
    wrapper = ExportedGenerator(_cpu_copy(G, genome)).eval()
    with _removed_if_untrusted(path):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = torch.export.load(path).module()
        except Exception as exc:  # noqa: BLE001 - a program that does not load back is not kept
            raise RenderError(f"the torch.export program {path} does not load back: {_first_line(exc)}") from None

        def run(z: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(z)).numpy()

        checked = _check_against_torch(run, wrapper, genome, "torch.export program")
    return {"path": str(path), "bytes": len(data), "checked": checked, "load": "torch.export.load(path).module()"}


EXPORTERS = {"onnx": (".onnx", export_onnx), "pt2": (".pt2", export_pt2)}
# Kept one release: TorchScript is deprecated in torch; the old kind writes the .pt2 file.
EXPORT_ALIASES = {"torchscript": "pt2"}
EXPORT_KINDS = tuple(EXPORTERS) + tuple(EXPORT_ALIASES)
TORCHSCRIPT_NOTE = ("TorchScript is deprecated in torch, so --export torchscript now writes {path} with "
                    "torch.export instead; use --export pt2 (load it with torch.export.load(path).module())")


def export_kind(kind: str) -> str:
    """The exporter a ``--export`` kind names (an alias names its replacement)."""
    kind = EXPORT_ALIASES.get(kind, kind)
    if kind not in EXPORTERS:
        raise RenderError(f"unknown export {kind!r}; evoart exports {', '.join(EXPORT_KINDS)}")
    return kind
