"""The genes of the shipped AR presets, as JSON-ready dicts (the lead wraps them in the
preset files with the family gene). Both cost 1.85 G multiply-adds per training step at
32 px (the cap is 3 G) and differ only in the scan, so they compare the orders.

Measured (benchmarks/ar_sampling.py, docs/FAMILIES.md): on ``shapes`` at 32 px, 600
steps bring ``ar-raster`` to about 0.6 bits per pixel over its 64 palette tokens
(uniform: 6 bits).
"""

from __future__ import annotations

from .genes import ARGenes

AR_PRESETS: dict[str, dict] = {
    "ar-raster": ARGenes(palette=64, scan="raster", width=96, layers=3, heads=4, mlp_ratio=2, context=256,
                         batch_size=8, lr=2e-3, temperature=1.0).to_dict(),
    "ar-hilbert": ARGenes(palette=64, scan="hilbert", width=96, layers=3, heads=4, mlp_ratio=2, context=256,
                          batch_size=8, lr=2e-3, temperature=1.0).to_dict(),
}


def preset_genes(name: str) -> ARGenes:
    """The validated genes of a shipped AR preset."""
    return ARGenes.from_dict(AR_PRESETS[name], where=name)
