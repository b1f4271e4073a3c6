"""The autoregressive (AR) family: images as palette tokens, generated one token at a time
by a small causal transformer that is told which position comes next.

* ``evoart.ar_genes`` (below the genome, which holds them as ``Genome.ar``): ``ARGenes``,
  ranges, validation, cost, random / mutation / crossover (no torch), re-exported here;
* ``palette``: K colours fitted by seeded k-means; quantise and dequantise;
* ``scans``: scan orders as permutations (raster, Hilbert; a registry for more);
* ``pyramid``: the pyramid scan, next-scale prediction over token maps of 1 x 1 up to
  R x R, each scale conditioned on every coarser one, all at once or in an order;
* ``geodesic``: the geodesic order within a pyramid's scale, along edge-aware geodesic
  distance on the coarser scale already generated (numpy only);
* ``model``: the any-order causal transformer with windows and a KV cache;
* ``training``: ``train_ar`` and bits per pixel over palette tokens;
* ``sampling``: fixed sampling noise, ``sample_ar``, the scan order as a picture;
* ``render``: larger renders (raster continues its scan, a pyramid adds finer scales,
  Hilbert only upscales),
  walks through a Gaussian copula of the noise, the exported step network.

The shipped ``ar-raster``, ``ar-hilbert``, ``ar-pyramid`` and ``ar-geodesic`` presets are
preset files like any other
(``evoart/presets/shipped``).
"""

from ..ar_genes import (ARGenes, MAX_SAMPLE_COST_32, SCAN_ORDERS, crossover_ar_genes, describe_ar,
                    estimate_ar_sample_cost, estimate_ar_step_macs, mutate_ar_genes, random_ar_genes, repair_ar,
                    validate_ar)
from .render import (RenderError, continues_scan, render_ar, sample_with_step_network, step_onnx_bytes,
                     step_program_bytes, walk_ar, walk_noise)
from .model import ARModel
from .palette import PaletteError, dequantise, fit_palette, quantise
from .sampling import sample_ar, sample_tokens, sampling_noise
from .scans import ScanError, ScanOrder, order_picture, register_scan, scan_names, scan_order
from .training import ARTrainResult, nll_bits, train_ar

__all__ = [
    "MAX_SAMPLE_COST_32", "RenderError", "continues_scan", "describe_ar", "estimate_ar_sample_cost",
    "render_ar", "sample_with_step_network", "step_onnx_bytes", "step_program_bytes", "walk_ar",
    "walk_noise",
    "ARGenes", "ARModel", "ARTrainResult", "PaletteError", "SCAN_ORDERS", "ScanError", "ScanOrder",
    "crossover_ar_genes", "dequantise", "estimate_ar_step_macs", "fit_palette",
    "mutate_ar_genes", "nll_bits", "order_picture", "quantise", "random_ar_genes", "register_scan", "repair_ar",
    "sample_ar", "sample_tokens", "sampling_noise", "scan_names", "scan_order",
    "train_ar", "validate_ar",
]
