"""The genes of the shipped AR presets, as JSON-ready dicts (the lead wraps them in the
preset files with the family gene). Both cost 1.62 G multiply-adds per training step at
32 px (the cap is 3 G) and differ only in the scan, so they compare the orders.

Context 128 with 16 windows per step: at 200 steps on ``shapes`` it gave 0.73 bits per
pixel (raster) against 0.86 for context 256 with 8 windows (the same tokens per step),
0.81 for context 64 x 16 and 0.93 for context 128 x 8 (docs/FAMILIES.md). In brief
training, more windows per step beat a longer view back.
"""

from __future__ import annotations

from ..ar_genes import ARGenes

AR_PRESETS: dict[str, dict] = {
    "ar-raster": ARGenes(palette=64, scan="raster", width=96, layers=3, heads=4, mlp_ratio=2, context=128,
                         batch_size=16, lr=2e-3, temperature=1.0).to_dict(),
    "ar-hilbert": ARGenes(palette=64, scan="hilbert", width=96, layers=3, heads=4, mlp_ratio=2, context=128,
                          batch_size=16, lr=2e-3, temperature=1.0).to_dict(),
}


def preset_genes(name: str) -> ARGenes:
    """The validated genes of a shipped AR preset."""
    return ARGenes.from_dict(AR_PRESETS[name], where=name)
