"""`evoart preset`: keep, list, show, share and tidy favourite genomes."""

from __future__ import annotations

from pathlib import Path

import click
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from . import console, main
from .options import runs_root_option

PRESET_HELP = """Keep favourite genomes as presets, to re-render, share and evolve from.

Shipped presets come with evoart; yours live in your data folder (EVOART_HOME/presets
when EVOART_HOME is set). Nothing is overwritten without --force.

\b
Examples:
  evoart preset list
  evoart preset show dcgan-classic
  evoart preset save gallery/20261126-1405-shapes-s0 g003-i07 moth-wings --with-weights
  evoart preset export moth-wings moth-wings.zip      # one file, weights included
  evoart preset import moth-wings.zip --name moth-wings-2
  evoart render moth-wings --size 512 --walk
  evoart evolve --from-preset moth-wings --from-preset dcgan-classic
"""


@main.group(help=PRESET_HELP)
def preset():
    pass


@preset.command("save")
@click.argument("run")
@click.argument("individual")
@click.argument("name")
@click.option("--with-weights", is_flag=True, help="Keep the trained generator too (renders without training).")
@click.option("--notes", default="", help="A note to keep with the preset.")
@click.option("--force", is_flag=True, help="Replace your preset of the same name.")
@runs_root_option("Where RUN names are looked up.")
def preset_save(run, individual, name, with_weights, notes, force, out):
    """Keep INDIVIDUAL of RUN (a name under --out or a run folder) as preset NAME."""
    from ..presets import save_from_run
    from ..store import resolve_run

    path = save_from_run(resolve_run(run, out), individual, name, with_weights=with_weights, notes=notes,
                         force=force)
    what = "genome and weights" if with_weights else "genome"
    console.print(f"Saved {individual} as preset [bold]{name}[/] ({what}): {path}", highlight=False)


@preset.command("list")
def preset_list():
    """List the shipped presets and yours."""
    from ..presets import list_presets, user_dir

    infos = list_presets()
    table = Table(title="Presets", title_justify="left")
    width = max([len(i.name) for i in infos] + [4])
    table.add_column("name", no_wrap=True, min_width=width)
    table.add_column("origin", no_wrap=True)
    table.add_column("weights", no_wrap=True)
    table.add_column("genome", overflow="fold")
    for i in infos:
        origin = i.origin + (" (hidden by yours)" if i.shadowed else "")
        if i.error:
            table.add_row(i.name, origin, "", Text(f"unusable: {i.error}", style="red"))
            continue
        weights = f"{i.resolution} px" if i.has_weights else "-"
        table.add_row(i.name, origin, weights, Text(i.summary))
    console.print(table)
    console.print(f"Your presets: {user_dir()}", highlight=False)


def _genome_tables(p) -> list[Table]:
    from ..genome import estimate_g_macs, layout
    from ..nets import build_generator, count_parameters

    genome = p.genome
    if genome.ar is not None:  # an AR model: its own genes; the GAN genes rest (docs/FAMILIES.md)
        return [_ar_table(genome.ar, p.resolution or 32)]
    g = genome.generator
    res = p.resolution or 32
    _, blocks = layout(genome, res)
    params = count_parameters(build_generator(genome, res))
    gen = Table(title=f"Generator: latent {g.latent} -> {g.stem_channels} x 4 x 4 -> blocks -> RGB ({g.output});"
                      f" {params / 1e6:.2f} M parameters, {estimate_g_macs(genome, res) / 1e6:.0f} M multiply-adds"
                      f" per image at {res} px. ch: channels, k: kernel, act: activation, skip: residual,"
                      f" map: size in and out at {res} px", title_justify="left", box=box.SIMPLE_HEAD)
    # short headers: the table fits an 80-column terminal
    for col in ("#", "ch", "upsample", "k", "norm", "act", "skip", "noise", "map"):
        gen.add_column(col, justify="right" if col in ("#", "ch") else "left", no_wrap=True)
    for b, bl in zip(g.blocks, blocks, strict=True):
        # at this resolution a block may act differently from its gene (see genome.layout)
        used = b.upsample if bl.upsample == b.upsample else f"{b.upsample}→{bl.upsample}"
        gen.add_row(str(bl.index), str(b.channels), used, f"{b.kernel}x{b.kernel}", b.norm, b.activation,
                    "yes" if b.residual else "", "yes" if b.noise else "", f"{bl.in_size}→{bl.out_size}")
    d = genome.discriminator
    disc = Table(title="Discriminator", title_justify="left", show_header=False)
    disc.add_row("family", d.family)
    disc.add_row("width", str(d.width))
    disc.add_row("norm", d.norm)
    disc.add_row("input", d.input)
    lo = genome.loss
    loss = Table(title="Loss weights", title_justify="left", show_header=False)
    adv = lo.adversarial()
    for term in ("nonsaturating", "hinge", "leastsquares"):
        share = f"  ({adv[term]:.0%} of the adversarial loss)" if term in adv else ""
        loss.add_row(term, f"{getattr(lo, term):g}{share}")
    for term in ("r1", "feature_matching", "mode_seeking"):
        loss.add_row(term, f"{getattr(lo, term):g}")
    t = genome.training
    train = Table(title="Training", title_justify="left", show_header=False)
    train.add_row("learning rates (G / D)", f"{t.lr_g:.1e} / {t.lr_d:.1e}")
    train.add_row("Adam betas", f"{t.beta1:g}, {t.beta2:g}")
    train.add_row("D steps per G step", str(t.d_steps))
    train.add_row("batch size", str(t.batch_size))
    train.add_row("generator EMA", f"{t.ema:g}" if t.ema else "off")
    tables = [gen, disc, loss, train]
    if genome.vae is not None:  # a VAE: the generator is its decoder (docs/FAMILIES.md)
        v = genome.vae
        vae = Table(title="VAE (the generator below is its decoder)", title_justify="left", show_header=False)
        vae.add_row("encoder", f"{v.encoder_family}, width {v.encoder_width}, norm {v.encoder_norm}")
        vae.add_row("reconstruction", v.reconstruction)
        vae.add_row("beta", f"{v.beta:g}")
        vae.add_row("adversarial weight", f"{v.adversarial:g}" + ("" if v.adversarial else
                                                                 "  (off: the discriminator and loss genes rest)"))
        tables.insert(0, vae)
    return tables


def _ar_table(a, res: int) -> Table:
    from ..ar_genes import estimate_ar_sample_cost, estimate_ar_step_macs, scan_label
    from ..autoregressive.render import continues_scan

    t = Table(title=f"Autoregressive over a palette: {estimate_ar_step_macs(a, res) / 1e9:.2f} G multiply-adds per "
                    f"training step, {estimate_ar_sample_cost(a, res) / 1e9:.2f} G to sample one image at {res} px "
                    "(the generator, discriminator and loss genes rest)", title_justify="left", show_header=False)
    grows = ("  (continues beyond the training size)" if continues_scan(a.scan) else
             "  (adds finer scales beyond the training size)" if a.scan == "pyramid" else
             "  (only upscales beyond the training size)")
    t.add_row("scan order", scan_label(a) + grows)
    if a.scan == "pyramid":
        t.add_row("within a scale", "all at once, one pass per block" if a.within == "parallel" else
                  f"{a.within} order" + (f", edge weight lambda {a.geo_lambda:g}, seeds at the {a.geo_seeds}"
                                         if a.within == "geodesic" else ""))
    t.add_row("palette colours (K)", f"{a.palette}  (a model that knows nothing scores log2 K bits per pixel)")
    t.add_row("transformer", f"width {a.width}, {a.layers} layers, {a.heads} heads, MLP ratio {a.mlp_ratio}")
    t.add_row("context", f"{a.context} scan steps")
    t.add_row("windows per step", str(a.batch_size))
    t.add_row("learning rate", f"{a.lr:.1e}  (AdamW)")
    t.add_row("temperature", f"{a.temperature:g}")
    return t


@preset.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the preset file instead of tables.")
def preset_show(name, as_json):
    """Show a preset (a name or a preset file): its genome as tables, provenance, weights."""
    from ..presets import load_preset

    p = load_preset(name)
    if as_json:
        console.print_json(p.to_json())
        return
    console.print(f"[bold]{p.name}[/]  ({p.origin}: {escape(str(p.path))})", highlight=False)
    if p.notes:
        console.print(Text(p.notes))
    console.print()
    for t in _genome_tables(p):
        console.print(t)
    prov = Table(title="Provenance", title_justify="left", show_header=False)
    for k, v in p.provenance.items():
        if k == "metrics" and isinstance(v, dict):
            v = ", ".join(f"{m} {x:.4g}" for m, x in sorted(v.items()))
        prov.add_row(k, Text(str(v)))
    if p.weights:
        prov.add_row("weights", f"{p.weights.file}: trained at {p.weights.resolution} px, "
                                f"{p.weights.bytes / 1e6:.1f} MB, sha256 {p.weights.sha256[:12]}...")
    else:
        prov.add_row("weights", "none: `evoart render` trains the genome first")
    console.print(prov)


@preset.command("delete")
@click.argument("name")
def preset_delete(name):
    """Delete one of your presets (and its weights)."""
    from ..presets import delete_preset

    removed = delete_preset(name)
    console.print(f"Deleted preset {name} ({', '.join(p.name for p in removed)})", highlight=False)


@preset.command("rename")
@click.argument("old")
@click.argument("new")
@click.option("--force", is_flag=True, help="Replace your preset called NEW.")
def preset_rename(old, new, force):
    """Rename one of your presets."""
    from ..presets import rename_preset

    path = rename_preset(old, new, force=force)
    console.print(f"Renamed {old} to {new}: {path}", highlight=False)


@preset.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Keep it under this name instead of its own.")
@click.option("--force", is_flag=True, help="Replace your preset of the same name.")
def preset_import(file, name, force):
    """Add a preset from FILE: an exported bundle (.zip) or a preset .json."""
    from ..presets import import_preset, read_preset_file

    path = import_preset(file, name=name, force=force)
    p = read_preset_file(path, origin="user", name_from_file=True)
    what = f"with weights ({p.resolution} px)" if p.weights else "genome only"
    console.print(f"Imported preset [bold]{p.name}[/] ({what}): {path}", highlight=False)


@preset.command("export")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE.")
def preset_export(name, file, force):
    """Write preset NAME to FILE: one zip with the preset and its weights, for sharing."""
    from ..presets import export_preset

    path = export_preset(name, file, force=force)
    console.print(f"Exported {name} to {path} ({path.stat().st_size / 1e3:.0f} KB); "
                  f"import it with: evoart preset import {path.name}", highlight=False)
