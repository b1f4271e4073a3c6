"""Networks as a genome's user meets them: every block kind builds at every resolution a
run supports and maps its sizes as ``genome.layout`` says, the generator draws images in
[-1, 1] with every output activation, the discriminator gives one logit per image,
spectral norm and every normalisation build and take effect, wider genes mean more
parameters, switching noise on leaves an inherited generator as it was, and tensors are
inherited wherever names and shapes match."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from evoart import genome as G
from evoart import nets
from evoart.genome import Block, DiscriminatorGenes, Genome, GeneratorGenes, layout

RESOLUTIONS = (16, 32, 64, 128)  # what a run accepts (EvolveConfig.resolution)
N = 2


def genome_with(blocks=None, *, output="tanh", stem_channels=32, latent=16,
                family="dcgan", width=8, d_norm="none") -> Genome:
    return Genome(
        generator=GeneratorGenes(latent=latent, stem_channels=stem_channels, output=output,
                                 blocks=tuple(blocks or (Block(16, "nearest"), Block(8, "nearest")))),
        discriminator=DiscriminatorGenes(family, width, d_norm),
    )


def z(genome: Genome, n: int = N, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, genome.generator.latent, generator=torch.Generator().manual_seed(seed))


def built(genome: Genome, resolution: int, seed: int = 0) -> tuple[nets.Generator, nets.Discriminator]:
    torch.manual_seed(seed)
    return nets.build_generator(genome, resolution), nets.build_discriminator(genome, resolution)


# ---- the generator follows the layout ----------------------------------------------------


def blocks_of_kind(kind: str) -> tuple[Block, ...]:
    """Four blocks of one upsampling kind with the other genes varied: every kernel,
    residual blocks that keep and that change the width, noise, and a refine block."""
    return (
        Block(32, kind, 3, "batch", "relu", residual=True),            # 32 -> 32: identity skip
        Block(16, kind, 5, "instance", "lrelu", residual=True, noise=True),  # 32 -> 16: 1x1 skip
        Block(16, kind, 1, "group", "sin"),
        Block(8, "none", 3, "none", "gelu", noise=True),
    )


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("kind", G.UPSAMPLE_KINDS)
def test_every_block_kind_maps_sizes_as_the_layout_says(kind, resolution):
    genome = genome_with(blocks_of_kind(kind), family="resnet" if kind in ("nearest", "none") else "dcgan")
    stem, plan = layout(genome, resolution)
    gen, disc = built(genome, resolution)
    seen = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append((tuple(i[0].shape), tuple(o.shape))))
             for b in gen.blocks]
    with torch.no_grad():
        images = gen(z(genome))
        logits = disc(images)
    for h in hooks:
        h.remove()
    assert seen == [((N, bl.in_channels, bl.in_size, bl.in_size), (N, bl.out_channels, bl.out_size, bl.out_size))
                    for bl in plan]
    assert plan[0].in_size == stem
    assert images.shape == (N, 3, resolution, resolution)
    assert torch.isfinite(images).all() and images.abs().max() <= 1
    assert logits.shape == (N,) and torch.isfinite(logits).all()


def test_the_built_generator_follows_the_layout_at_64_px():
    """Moved from test_genome: the default genome has one upsampling block too few for
    64 px, so its 4x4 map is enlarged to 8x8 before the first block."""
    genome = Genome()
    with torch.no_grad():
        g = nets.build_generator(genome, 64)
        assert g.stem_size == 8
        assert g(torch.randn(2, genome.generator.latent)).shape == (2, 3, 64, 64)
        assert nets.build_discriminator(genome, 64)(torch.zeros(2, 3, 64, 64)).shape == (2,)


@pytest.mark.parametrize("output", G.OUTPUT_ACTIVATIONS)
def test_every_output_activation_draws_images_across_minus_one_to_one(output):
    genome = genome_with(output=output)
    gen, _ = built(genome, 16)
    with torch.no_grad():
        gen.to_rgb.weight.mul_(100)  # drive the activation far into saturation
        images = gen(z(genome, 8))
    assert images.min() >= -1 and images.max() <= 1
    assert images.min() < -0.9 and images.max() > 0.9  # the whole range, not half of it


# ---- the discriminator -------------------------------------------------------------------


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("family", G.D_FAMILIES)
def test_the_discriminator_gives_one_logit_per_image(family, resolution):
    genome = genome_with(family=family, width=16, d_norm="spectral")
    _, disc = built(genome, resolution)
    images = torch.rand(3, 3, resolution, resolution) * 2 - 1
    disc.eval()
    with torch.no_grad():
        logits = disc(images)
        again, features = disc(images, return_features=True)  # what feature matching reads
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    assert torch.equal(again, logits)
    assert features.ndim == 2 and features.shape[0] == 3


@pytest.mark.parametrize("family", G.D_FAMILIES)
def test_spectral_norm_keeps_every_layer_at_unit_gain(family):
    genome = genome_with(family=family, width=16, d_norm="spectral")
    _, disc = built(genome, 32)
    layers = [m for m in disc.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    disc.train()
    with torch.no_grad():
        for _ in range(20):  # each training forward pass runs a power iteration
            disc(torch.randn(4, 3, 32, 32))
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item()
        assert 0.9 < sigma < 1.1, m
    plain = built(genome_with(family=family, width=16, d_norm="none"), 32)[1]
    assert not any(nn.utils.parametrize.is_parametrized(m) for m in plain.modules())


# ---- normalisations ----------------------------------------------------------------------


def trains_one_step(gen: nn.Module, disc: nn.Module, genome: Genome, resolution: int) -> None:
    gen.train(), disc.train()
    loss = disc(gen(z(genome, 4))).mean() + disc(torch.rand(4, 3, resolution, resolution)).mean()
    loss.backward()
    grads = [p.grad for p in [*gen.parameters(), *disc.parameters()] if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("norm", G.G_NORMS)
def test_every_generator_normalisation_builds_trains_and_takes_effect(norm):
    blocks = (Block(32, "nearest", norm=norm), Block(16, "nearest", norm=norm))
    genome = genome_with(blocks)
    gen, disc = built(genome, 16)
    trains_one_step(gen, disc, genome, 16)
    if norm != "none":
        plain = genome_with((Block(32, "nearest", norm="none"), Block(16, "nearest", norm="none")))
        plain_gen, _ = built(plain, 16)
        gen.train(), plain_gen.train()
        with torch.no_grad():
            assert not torch.allclose(gen(z(genome, 4)), plain_gen(z(genome, 4)))


@pytest.mark.parametrize("channels", range(G.CHANNELS[0], G.CHANNELS[1] + 1, 8))
def test_group_norm_builds_at_every_allowed_width(channels):
    genome = genome_with((Block(channels, "nearest", 1, "group"), Block(8, "nearest", 1, "none")), stem_channels=16)
    with torch.no_grad():
        assert nets.build_generator(genome, 16)(z(genome)).shape == (N, 3, 16, 16)


@pytest.mark.parametrize("family", G.D_FAMILIES)
@pytest.mark.parametrize("norm", G.D_NORMS)
def test_every_discriminator_normalisation_builds_trains_and_takes_effect(family, norm):
    genome = genome_with(family=family, width=16, d_norm=norm)
    gen, disc = built(genome, 16)
    trains_one_step(gen, disc, genome, 16)
    if norm != "none":
        _, plain = built(genome_with(family=family, width=16, d_norm="none"), 16)
        images = torch.rand(4, 3, 16, 16) * 2 - 1
        disc.train(), plain.train()
        with torch.no_grad():
            assert not torch.allclose(disc(images), plain(images))


# ---- parameter counts --------------------------------------------------------------------


def g_params(genome: Genome, resolution: int = 32) -> int:
    return nets.count_parameters(nets.build_generator(genome, resolution))


def test_generator_parameters_grow_with_every_width():
    base = Genome()
    for i in range(len(base.generator.blocks)):
        counts = []
        for c in (8, 16, 32, 64, 128):
            blocks = list(base.generator.blocks)
            blocks[i] = dataclasses.replace(blocks[i], channels=c)
            counts.append(g_params(base.replace(generator=dataclasses.replace(base.generator, blocks=tuple(blocks)))))
        assert counts == sorted(set(counts)), (i, counts)
    for gene, values in (("stem_channels", (16, 32, 64, 128)), ("latent", (8, 16, 64, 256))):
        counts = [g_params(base.replace(generator=dataclasses.replace(base.generator, **{gene: v}))) for v in values]
        assert counts == sorted(set(counts)), gene


@pytest.mark.parametrize("family", G.D_FAMILIES)
def test_discriminator_parameters_grow_with_width(family):
    counts = [nets.count_parameters(nets.build_discriminator(genome_with(family=family, width=w), 32))
              for w in (8, 16, 32, 64)]
    assert counts == sorted(set(counts))


def test_an_enlarged_stem_or_a_promoted_refine_block_adds_no_parameters():
    """``layout``: a genome short of upsampling blocks promotes its refine blocks and then
    enlarges the 4x4 map without parameters, so it has the same parameters at every
    resolution (blocks that upsample by nearest or bilinear only)."""
    for blocks in ((Block(16, "none"),), (Block(32, "bilinear"), Block(16, "none"), Block(8, "nearest"))):
        genome = genome_with(blocks)
        assert len({g_params(genome, r) for r in RESOLUTIONS}) == 1, blocks


# ---- inheritance -------------------------------------------------------------------------


def test_switching_noise_on_leaves_an_inherited_generator_as_it_was():
    """Noise injection starts at zero, so a mutation that turns it on does not disturb
    the network a child inherits."""
    quiet = genome_with((Block(16, "nearest"), Block(8, "nearest")))
    noisy = genome_with((Block(16, "nearest", noise=True), Block(8, "nearest", noise=True)))
    parent, _ = built(quiet, 16, seed=1)
    child, _ = built(noisy, 16, seed=2)
    got, total = nets.inherit_tensors(child, [parent.state_dict()], lambda name: (0, name))
    assert got == len(parent.state_dict()) and total == got + 2  # all but the two noise scales
    parent.eval(), child.eval()
    with torch.no_grad():
        assert torch.equal(child(z(quiet, 4)), parent(z(quiet, 4)))
        for block in child.blocks:
            block.noise.scale.fill_(0.5)  # once the scale has learned something, noise shows
        assert not torch.allclose(child(z(quiet, 4)), parent(z(quiet, 4)))


def test_tensors_are_inherited_where_names_and_shapes_match():
    parent, _ = built(genome_with((Block(16, "nearest"), Block(8, "nearest"))), 16, seed=1)
    child, _ = built(genome_with((Block(24, "nearest"), Block(8, "nearest"))), 16, seed=2)  # block 0 wider
    before = {k: v.clone() for k, v in child.state_dict().items()}
    got, total = nets.inherit_tensors(child, [parent.state_dict()], lambda name: (0, name))
    assert 0 < got < total == len(before)
    mine, theirs = child.state_dict(), parent.state_dict()
    for name, t in mine.items():
        same_shape = theirs[name].shape == t.shape
        assert torch.equal(t, theirs[name] if same_shape else before[name]), name
    assert torch.equal(mine["stem.weight"], theirs["stem.weight"])
    # no parent, or no source for a tensor: nothing is touched
    assert nets.inherit_tensors(child, [None], lambda name: (0, name)) == (0, total)
    assert nets.inherit_tensors(child, [parent.state_dict()], lambda name: None) == (0, total)


def test_a_child_block_inherits_from_the_parent_block_its_map_names():
    from evoart.variation import Inheritance

    inh = Inheritance([(1, 2), None], stem=0, discriminator=1)
    assert nets.generator_source_name("blocks.0.conv.weight", inh) == (1, "blocks.2.conv.weight")
    assert nets.generator_source_name("blocks.1.conv.weight", inh) is None  # a new block
    assert nets.generator_source_name("blocks.5.conv.weight", inh) is None  # beyond the map
    assert nets.generator_source_name("stem.weight", inh) == (0, "stem.weight")
    assert nets.generator_source_name("to_rgb.bias", inh) == (0, "to_rgb.bias")
    assert nets.generator_source_name("stem.weight", Inheritance([None, None], stem=None, discriminator=0)) is None


def test_group_norm_on_bf16_channels_last_input_matches_torchs_and_keeps_the_layout(monkeypatch):
    # the fast path (plain rows and back) must be the same normalisation, values and
    # gradients, and hand the next layer the channels_last layout it was given
    from evoart.nets import GroupNorm

    seen = []
    real_group_norm = nets.F.group_norm

    def spy(x, *args, **kwargs):
        seen.append(x.is_contiguous())
        return real_group_norm(x, *args, **kwargs)
    monkeypatch.setattr(nets.F, "group_norm", spy)

    torch.manual_seed(0)
    ours, theirs = GroupNorm(4, 24), torch.nn.GroupNorm(4, 24)
    with torch.no_grad():
        for p in (ours.weight, ours.bias):
            p.normal_()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 24, 8, 8).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), theirs(xb)
    assert seen[0] is True  # ours normalised plain rows (torch's own took the slow layout)
    assert ya.dtype == torch.bfloat16 and ya.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(ya.float(), yb.float(), atol=0.05)
    up = torch.randn_like(ya.float()).to(torch.bfloat16)
    ya.backward(up)
    yb.backward(up)
    assert torch.allclose(xa.grad.float(), xb.grad.float(), atol=0.05)
    assert torch.allclose(ours.weight.grad, theirs.weight.grad, rtol=0.05, atol=0.05)
    # fp32 and plain rows: torch's own module, bit for bit
    z = torch.randn(4, 24, 8, 8)
    assert torch.equal(ours(z), theirs(z))
