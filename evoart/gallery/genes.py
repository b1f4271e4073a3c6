"""The genome as the individual page shows it: the generator's blocks, the
discriminator, the loss weights as bars, the training genes, and what changed from each
parent (``gene_diff``)."""

from __future__ import annotations

import json
from typing import Any

from dataclasses import asdict

from ..ar_genes import LATER_AR_GENES, scan_label
from ..genome import LATER_GENES, LATER_PARTS, ORNAMENTS, Genome, GenomeError, describe, layout
from .text import fmt

GENE_RANGES = {  # for the loss-weight bars: (lo, hi) from the genome's schema
    "nonsaturating": (0.0, 1.0), "hinge": (0.0, 1.0), "leastsquares": (0.0, 1.0),
    "r1": (0.0, 100.0), "feature_matching": (0.0, 10.0), "mode_seeking": (0.0, 1.0),
}


def genome_view(genome: Genome | None, raw: dict, resolution: int) -> dict:
    """What ``templates/genome.html`` draws; ``raw`` alone when the genome did not parse."""
    if genome is None:
        return {"raw": json.dumps(raw, indent=2, sort_keys=True)}
    g, d, lo, t = genome.generator, genome.discriminator, genome.loss, genome.training
    try:
        stem, lay = layout(genome, resolution)
    except GenomeError:
        stem, lay = None, []
    sizes = {bl.index: bl for bl in lay}
    blocks = []
    for i, b in enumerate(g.blocks):
        bl = sizes.get(i)
        used = bl.upsample if bl else b.upsample
        blocks.append({"index": i, "channels": b.channels, "upsample": b.upsample,
                       "acts_as": used if used != b.upsample else None, "kernel": f"{b.kernel}×{b.kernel}",
                       "norm": b.norm, "activation": b.activation, "residual": b.residual, "noise": b.noise,
                       "size": f"{bl.in_size}→{bl.out_size}" if bl else "–"})
    bars = []
    adv = lo.adversarial()
    for name, (a, b) in GENE_RANGES.items():
        v = getattr(lo, name)
        frac = 0 if b == a else max(0.0, min(1.0, (v - a) / (b - a)))
        bars.append({"label": name.replace("_", " "), "width": f"{frac * 100:.1f}%", "value": fmt(v), "of": fmt(b),
                     "share": f"{adv[name] * 100:.0f}% of adversarial" if name in adv else ""})
    stem_text = f"{g.stem_channels} at 4×4" + (f", upsampled to {stem}×{stem}" if stem and stem > 4 else "")
    return {
        "describe": describe(genome), "resolution": resolution, "blocks": blocks,
        "generator": kv([("latent", g.latent), ("stem channels", stem_text), ("output", g.output)]),
        "discriminator": kv([("family", d.family), ("width", d.width), ("norm", d.norm), ("input", d.input)])
        + ([{"key": "used", "value": "no: this VAE has no adversarial term (the genes rest)", "muted": True}]
           if genome.vae is not None and genome.vae.adversarial == 0 else []),
        "vae": kv([("encoder", f"{genome.vae.encoder_family}, width {genome.vae.encoder_width}, "
                               f"norm {genome.vae.encoder_norm}"),
                   ("reconstruction", genome.vae.reconstruction), ("beta", genome.vae.beta),
                   ("adversarial weight", genome.vae.adversarial)]) if genome.vae is not None else None,
        "ar": kv([("scan order", scan_label(genome.ar)), ("palette colours (K)", genome.ar.palette),
                  ("width", genome.ar.width), ("layers", genome.ar.layers), ("heads", genome.ar.heads),
                  ("MLP ratio", genome.ar.mlp_ratio), ("context (steps)", genome.ar.context),
                  ("windows per step", genome.ar.batch_size), ("learning rate", genome.ar.lr),
                  ("temperature", genome.ar.temperature)]
                 + ([("geodesic edge weight (lambda)", genome.ar.geo_lambda), ("geodesic seeds", genome.ar.geo_seeds)]
                    if genome.ar.within == "geodesic" and genome.ar.scan == "pyramid" else []))
        if genome.ar is not None else None,
        "bars": bars,
        "training": kv([("lr G", t.lr_g), ("lr D", t.lr_d), ("Adam β1", t.beta1), ("Adam β2", t.beta2),
                        ("D steps per G step", t.d_steps), ("batch size", t.batch_size)])
                    + [{"key": "EMA of G", "value": fmt(t.ema) if t.ema else "off", "muted": not t.ema}],
        # the mate genes, where drawn (--mate-choice runaway): taste per ornament, choosiness
        "mate": kv([(f"taste for {k}", f"{getattr(genome.mate, k):+.2f}") for k in ORNAMENTS]
                   + [("choosiness", genome.mate.choosiness)]) if genome.mate.active else None,
    }


def kv(items) -> list[dict]:
    """Rows of a key-value table, values formatted."""
    return [{"key": k, "value": fmt(v, k), "muted": False} for k, v in items]


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            if k == "schema_version" or k == "blocks":
                continue
            out.update(_flat(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


def gene_diff(child: dict, parent: dict, slot: int, inheritance: dict | None,
              parent_ids: list[str]) -> list[tuple[str, str, str]]:
    """What changed from ``parent`` (the child's parent number ``slot``) to ``child``,
    gene by gene: (gene, parent's value, child's value). Blocks are matched through the
    inheritance map (a child's block may come from either parent, or be new); without one,
    by position."""
    rows = []
    fc, fp = _flat(child), _flat(parent)
    for flat, raw in ((fc, child), (fp, parent)):
        # a genome written before a gene existed has the value that reproduces it
        for (part, name), old in LATER_GENES.items():
            if isinstance(raw.get(part), dict):
                flat.setdefault(f"{part}.{name}", old)
        for part, cls in LATER_PARTS.items():
            for name, old in asdict(cls()).items():
                flat.setdefault(f"{part}.{name}", old)
        if isinstance(raw.get("ar"), dict):  # the pyramid's genes, left out at their defaults
            for name, old in LATER_AR_GENES.items():
                flat.setdefault(f"ar.{name}", old)
    for k in sorted(set(fc) | set(fp)):
        if fc.get(k) != fp.get(k):
            rows.append((k, fmt(fp.get(k), k.rsplit(".", 1)[-1]), fmt(fc.get(k), k.rsplit(".", 1)[-1])))
    cb = child.get("generator", {}).get("blocks", [])
    pb = parent.get("generator", {}).get("blocks", [])
    if inheritance and len(inheritance.get("blocks", [])) == len(cb):
        sources = inheritance["blocks"]
    else:
        sources = [[slot, i] if i < len(pb) else None for i in range(len(cb))]
    used = set()
    for i, src in enumerate(sources):
        name = f"block {i}"
        if src is None:
            rows.append((name, "–", "new block: " + _block_text(cb[i])))
            continue
        p, j = src
        if p != slot:
            other = parent_ids[p] if p < len(parent_ids) else f"parent {p + 1}"
            rows.append((name, "–", f"from {other}'s block {j}"))
            continue
        used.add(j)
        if j >= len(pb):
            continue
        moved = f" (was block {j})" if j != i else ""
        changed = [k for k in cb[i] if cb[i].get(k) != pb[j].get(k)]
        for k in changed:
            rows.append((f"{name}.{k}{moved}", fmt(pb[j][k]), fmt(cb[i][k])))
        if moved and not changed:
            rows.append((name, f"block {j}", "moved, unchanged"))
    if len(parent_ids) == 1 or not inheritance:
        for j in range(len(pb)):
            if j not in used:
                rows.append((f"parent's block {j}", _block_text(pb[j]), "removed"))
    if inheritance:
        for part, label in (("stem", "latent projection"), ("discriminator", "discriminator weights")):
            if inheritance.get(part) == slot:
                rows.append((label, "trained", "continued from this parent"))
    return rows


def _block_text(b: dict) -> str:
    extras = [x for x in ("residual", "noise") if b.get(x)]
    return (f"{b.get('channels')} ch, {b.get('upsample')}, {b.get('kernel')}×{b.get('kernel')}, "
            f"{b.get('norm')}, {b.get('activation')}" + (", " + ", ".join(extras) if extras else ""))
