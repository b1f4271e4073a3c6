"""Batched training: GAN individuals of one architecture trained together as one
``torch.func.vmap`` over their stacked parameters (``train_group``).

Each member is set up exactly as ``train.train_briefly`` sets it up alone
(``train.setup_gan``: its seed, its parents' tensors and optimiser state, its EMA), and
draws its own real batches and latents from its own generator, outside vmap, so a member
sees what it would see alone. What differs per member and is not architecture (learning
rates, Adam's betas, the EMA decay, the adversarial and regulariser weights) becomes a
tensor with one entry per member. Adam runs on the stacked tensors, with a step count per
member and parameter (an inherited tensor continues its parent's count). Losses stay on
the device and are read every ``check_every`` steps; a member that diverges leaves the
group at the next check, the others go on. At the end every member's tensors and
optimiser state are written back into its own nets and optimisers, and it finishes as a
lone individual does (``train.finish_gan``): a child cannot tell how its parent trained.

On CUDA the group's step (its D steps, G's step and both stacked Adam updates, with the
loss terms its members use decided on the host) is captured in CUDA graphs as a lone
individual's is (``evoart.graphs``): its draws go through static buffers, one graph per
lazy-R1 pattern; the EMA stays outside. A member leaving the group re-stacks its tensors,
so the graphs are captured afresh for the smaller group.

What can be batched (``signature``): GANs whose generator draws no noise inside its
forward pass (noise injection would draw from one global generator for the whole
group). Batch norm trains with its running statistics per member, spectral norm with its
power iteration per member (``_vmap_spectral_norm``).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch.func import functional_call, stack_module_state, vmap

from . import graphs, losses
from .genome import Genome, GenomeError
from .train import (
    R1_INTERVAL,
    GanRun,
    Init,
    PrecisionError,
    Trained,
    autocast,
    divergence,
    divergence_check_every,
    finish_gan,
    own_draws_only,
    setup_gan,
    share,
)


def signature(genome: Genome, resolution: int) -> str | None:
    """The architecture signature: individuals with the same one can train as a group.
    None for a genome that must train alone (not a GAN, or noise drawn in G's forward)."""
    if not own_draws_only(genome):
        return None
    t = genome.training
    key = {"resolution": resolution, "generator": asdict(genome.generator),
           "discriminator": asdict(genome.discriminator),
           "batch_size": t.batch_size, "d_steps": t.d_steps, "ema": t.ema > 0}
    return json.dumps(key, sort_keys=True)


def groups(keys: list, max_group: int) -> list[list[int]]:
    """Indices grouped by key (a ``signature``, with whatever else a group must share),
    in groups of at most ``max_group``, in order of their first member; a None key
    stands alone."""
    open_: dict = {}
    out: list[list[int]] = []
    for i, key in enumerate(keys):
        if key is None:
            out.append([i])
            continue
        group = open_.get(key)
        if group is None or len(group) >= max_group:
            group = open_[key] = []
            out.append(group)
        group.append(i)
    return out


# ---- spectral norm under vmap --------------------------------------------------------------

_VMAP_SN: dict[type, type] = {}


def _power_method(self, weight_mat: torch.Tensor, n_power_iterations: int) -> None:
    # torch's own writes through ``out=``, which vmap cannot batch; the same iteration
    # written in place with copy_, so each member's u and v are updated in its own slice
    with torch.no_grad():
        for _ in range(n_power_iterations):
            self._u.copy_(torch.nn.functional.normalize(torch.mv(weight_mat, self._v), dim=0, eps=self.eps))
            self._v.copy_(torch.nn.functional.normalize(torch.mv(weight_mat.H, self._u), dim=0, eps=self.eps))


def _vmap_spectral_norm(module: torch.nn.Module) -> None:
    """Give the spectral norms of ``module`` (a template, never trained itself) a power
    iteration that vmap can batch: the same arithmetic, updating u and v in place."""
    for m in module.modules():
        kind = type(m)
        if kind.__name__ == "_SpectralNorm" or kind in _VMAP_SN.values():
            if kind not in _VMAP_SN.values():
                if kind not in _VMAP_SN:
                    _VMAP_SN[kind] = type("_VmapSpectralNorm", (kind,), {"_power_method": _power_method})
                m.__class__ = _VMAP_SN[kind]


def _template(net: torch.nn.Module) -> torch.nn.Module:
    t = copy.deepcopy(net).to("meta")
    _vmap_spectral_norm(t)
    return t


# ---- the stacked state -------------------------------------------------------------------

@dataclass
class _Adam:
    """Adam's moments and step counts for stacked parameters (one row per member)."""

    exp_avg: dict[str, torch.Tensor]
    exp_avg_sq: dict[str, torch.Tensor]
    step: dict[str, torch.Tensor]          # (K,) per parameter, float32

    @classmethod
    def gather(cls, runs_opts: list[tuple[torch.nn.Module, torch.optim.Optimizer]], params: dict) -> "_Adam":
        m, v, s = {}, {}, {}
        named = [dict(net.named_parameters()) for net, _ in runs_opts]
        for name, stacked in params.items():
            ms, vs, ss = [], [], []
            for own, (_, opt) in zip(named, runs_opts):
                st = opt.state.get(own[name]) or {}
                if "exp_avg" in st:
                    ms.append(st["exp_avg"].detach().contiguous())
                    vs.append(st["exp_avg_sq"].detach().contiguous())
                    ss.append(float(st["step"]))
                else:
                    ms.append(torch.zeros_like(stacked[0]))
                    vs.append(torch.zeros_like(stacked[0]))
                    ss.append(0.0)
            m[name] = torch.stack(ms).to(stacked.device)
            v[name] = torch.stack(vs).to(stacked.device)
            s[name] = torch.tensor(ss, dtype=torch.float32, device=stacked.device)
        return cls(m, v, s)

    def keep(self, rows: torch.Tensor) -> None:
        for d in (self.exp_avg, self.exp_avg_sq, self.step):
            for k in d:
                d[k] = d[k][rows]

    @torch.no_grad()
    def update(self, params: dict[str, torch.Tensor], grads, lr, beta1, beta2, eps: float = 1e-8) -> None:
        """One Adam step (torch.optim.Adam's, without weight decay) of every member, each
        with its own learning rate and betas ((K,) tensors)."""
        for (name, p), g in zip(params.items(), grads):
            shape = (-1,) + (1,) * (p.dim() - 1)
            self.step[name] += 1
            step = self.step[name]
            b1, b2 = beta1.view(shape), beta2.view(shape)
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).add_(g * g * (1 - b2))
            bias1 = 1 - beta1 ** step
            bias2 = 1 - beta2 ** step
            denom = (v.sqrt() / bias2.sqrt().view(shape)).add_(eps)
            p.sub_((lr / bias1).view(shape) * m / denom)


def _stack(nets: list[torch.nn.Module], device) -> tuple[dict, dict]:
    params, buffers = stack_module_state(nets)
    # stack_module_state keeps each net's layout; vmap wants plain rows
    params = {k: v.detach().contiguous().to(device).requires_grad_(True) for k, v in params.items()}
    buffers = {k: v.contiguous().to(device) for k, v in buffers.items()}
    return params, buffers


def _write_back(net: torch.nn.Module, params: dict, buffers: dict, row: int,
                opt: torch.optim.Optimizer | None = None, adam: _Adam | None = None) -> None:
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(params[name][row])
            if opt is not None:
                state = {"step": torch.tensor(float(adam.step[name][row]), dtype=torch.float32,
                                              device=p.device if any(g.get("fused") for g in opt.param_groups) else "cpu"),
                         "exp_avg": torch.empty_like(p).copy_(adam.exp_avg[name][row]),
                         "exp_avg_sq": torch.empty_like(p).copy_(adam.exp_avg_sq[name][row])}
                opt.state[p] = state
        for name, b in net.named_buffers():
            if name in buffers:
                b.copy_(buffers[name][row])


def _hyper(runs: list[GanRun], device, dtype) -> dict[str, torch.Tensor]:
    def col(f):
        return torch.tensor([float(f(r.genome)) for r in runs], dtype=dtype, device=device)

    out = {"lr_g": col(lambda g: g.training.lr_g), "lr_d": col(lambda g: g.training.lr_d),
           "beta1": col(lambda g: g.training.beta1), "beta2": col(lambda g: g.training.beta2),
           "r1": col(lambda g: g.loss.r1), "feature_matching": col(lambda g: g.loss.feature_matching),
           "mode_seeking": col(lambda g: g.loss.mode_seeking)}
    for term in losses.ADVERSARIAL:
        out["adv_" + term] = col(lambda g, term=term: g.loss.adversarial().get(term, 0.0))
    return out


@dataclass
class _Group:
    """The members still training, stacked."""

    members: list[int]                      # indices into the caller's list
    runs: list[GanRun]
    pG: dict
    bG: dict
    pD: dict
    bD: dict
    pE: dict | None
    bE: dict | None
    adam_g: _Adam
    adam_d: _Adam
    hyper: dict[str, torch.Tensor]
    ema_decay: list[float]
    ema_steps: list[int]
    pending: list = field(default_factory=list)   # (step, d_losses (K,), g_losses (K,)) not yet read
    uses: "_Uses | None" = None

    def __post_init__(self) -> None:
        self.uses = _Uses.of(self.runs, next(iter(self.pG.values())).device)

    def keep(self, rows: list[int]) -> None:
        idx = torch.tensor(rows, dtype=torch.long, device=next(iter(self.pG.values())).device)
        for d, grad in ((self.pG, True), (self.bG, False), (self.pD, True), (self.bD, False),
                        (self.pE, False), (self.bE, False)):
            if d is None:
                continue
            for k in d:
                d[k] = d[k][idx].detach().requires_grad_(True) if grad else d[k][idx]
        self.adam_g.keep(idx)
        self.adam_d.keep(idx)
        self.hyper = {k: v[idx] for k, v in self.hyper.items()}
        self.members = [self.members[r] for r in rows]
        self.runs = [self.runs[r] for r in rows]
        self.ema_decay = [self.ema_decay[r] for r in rows]
        self.ema_steps = [self.ema_steps[r] for r in rows]
        self.uses = _Uses.of(self.runs, idx.device)


@dataclass
class _Uses:
    """Which loss terms the group's members use, decided on the host from their genomes
    when the group forms (and again when a member leaves), so that a step never reads a
    device tensor to find out (a host sync on a GPU). ``*_off``: the rows (a long index
    on the device) of members that do not make a pass the others make, or None when
    every member makes it."""

    adversarial: tuple[str, ...]
    r1: bool
    r1_off: torch.Tensor | None
    feature_matching: bool
    fm_off: torch.Tensor | None
    mode_seeking: bool

    @classmethod
    def of(cls, runs: list[GanRun], device) -> "_Uses":
        def off(flags: list[bool]) -> torch.Tensor | None:
            rows = [i for i, f in enumerate(flags) if not f]
            return torch.tensor(rows, dtype=torch.long, device=device) if rows and any(flags) else None

        loss = [r.genome.loss for r in runs]
        r1 = [lg.r1 > 0 for lg in loss]
        fm = [lg.feature_matching > 0 for lg in loss]
        return cls(tuple(t for t in losses.ADVERSARIAL if any(lg.adversarial().get(t, 0.0) > 0 for lg in loss)),
                   any(r1), off(r1), any(fm), off(fm), any(lg.mode_seeking > 0 for lg in loss))


def train_group(
    genomes: list[Genome],
    data: torch.Tensor,
    *,
    steps: int,
    seeds: list[int],
    inits: list[Init | None] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    progress: Callable[[int, int], None] | None = None,
    budget_seconds: float | None = None,
    check_every: int | None = None,
) -> list[Trained]:
    """Train ``genomes`` (one ``signature``) on ``data`` as ``train_briefly`` trains each
    alone with its seed and init, but in one batched pass per step. Returns one
    ``Trained`` per genome, in order; losses agree with the lone runs' within float
    tolerance. ``check_every``: steps between reads of the losses (divergence checks);
    by default every step on the CPU, ``train.DIVERGENCE_CHECK_EVERY`` elsewhere."""
    if precision not in ("fp32", "bf16"):
        raise PrecisionError(f"train_group needs a resolved precision (fp32 or bf16), got {precision!r}")
    if not genomes:
        return []
    resolution = data.shape[-1]
    sigs = {signature(g, resolution) for g in genomes}
    if None in sigs or len(sigs) != 1:
        raise GenomeError("train_group trains genomes of one batchable architecture (batched.signature); "
                          f"got {len(sigs)} signature(s){' and an unbatchable genome' if None in sigs else ''}")
    if len(seeds) != len(genomes) or (inits is not None and len(inits) != len(genomes)):
        raise ValueError("train_group needs one seed (and one init, if any) per genome")
    inits = inits or [None] * len(genomes)
    devices = [torch.device(device)] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        return _train_group(genomes, data, steps=steps, seeds=seeds, inits=inits, device=device,
                            precision=precision, progress=progress, budget_seconds=budget_seconds,
                            check_every=check_every or divergence_check_every(device))


def _train_group(genomes, data, *, steps, seeds, inits, device, precision, progress, budget_seconds,
                 check_every) -> list[Trained]:
    # vmap's batching rules want plain rows (group norm cannot ask a channels_last
    # tensor for its layout inside vmap); the members' own nets keep their layout
    on_device = data.to(device).contiguous()
    runs = [setup_gan(g, data, device=device, seed=s, init=i, precision=precision, data_on_device=on_device)
            for g, s, i in zip(genomes, seeds, inits)]
    first = runs[0]
    tG, tD = _template(first.G), _template(first.D)
    pG, bG = _stack([r.G for r in runs], device)
    pD, bD = _stack([r.D for r in runs], device)
    pE = bE = None
    if first.G_ema is not None:
        pE, bE = _stack([r.G_ema for r in runs], device)
        pE = {k: v.detach() for k, v in pE.items()}
    group = _Group(list(range(len(runs))), runs, pG, bG, pD, bD, pE, bE,
                   _Adam.gather([(r.G, r.opt_g) for r in runs], pG),
                   _Adam.gather([(r.D, r.opt_d) for r in runs], pD),
                   _hyper(runs, device, next(iter(pG.values())).dtype), [r.genome.training.ema for r in runs], [r.ema_steps for r in runs])

    def G(p, b, z):
        return functional_call(tG, (p, b), (z,))

    def D(p, b, x):
        return functional_call(tD, (p, b), (x,))

    def D_feat(p, b, x):
        return functional_call(tD, (p, b), (x,), {"return_features": True})

    def r1(p, b, x):
        # the buffers go in as arguments: batch norm's statistics and spectral norm's u
        # and v are updated in place by this forward pass too, as they are alone
        grad = torch.func.grad(lambda x_, b_: D(p, b_, x_).sum())(x, b)
        return grad.pow(2).flatten(1).sum(1).mean()

    on = torch.device(device)
    use_graphs = graphs.graphs_wanted(device)
    # a graph replays the casts it captured: autocast's weight cache must not outlive a step
    amp = lambda: autocast(device, precision, cache=not use_graphs)  # noqa: E731
    t = first.genome.training
    bsz, joint_d = first.batch, first.joint_d
    curves = {k: ([], []) for k in range(len(runs))}
    done: dict[int, Trained] = {}
    d_step_count = 0
    report_every = max(1, steps // 50)
    t_start = time.perf_counter()

    def adversarial(which: int, *logits) -> torch.Tensor:
        total = 0
        for term in group.uses.adversarial:
            total = total + group.hyper["adv_" + term] * vmap(losses.ADVERSARIAL[term][which])(*logits)
        return total

    def check(step: int, force: bool) -> None:
        """Read the pending losses; members that diverged leave the group."""
        if not group.pending or (len(group.pending) < check_every and not force):
            return
        pending, group.pending = group.pending, []
        host = torch.stack([torch.stack([d, g]) for _, d, g in pending]).float().cpu().tolist()  # [j][0|1][row]
        bad: dict[int, str] = {}
        for j, (step_j, _, _) in enumerate(pending):
            for row, member in enumerate(group.members):
                if row in bad:
                    continue
                dl, gl = host[j][0][row], host[j][1][row]
                curves[member][0].append(dl)
                curves[member][1].append(gl)
                reason = divergence(step_j, {"D": dl, "G": gl})
                if reason is not None:
                    bad[row] = reason
        for row, reason in bad.items():
            run = group.runs[row]
            run.stats.status, run.stats.reason = "diverged", reason
            run.stats.graphs = stepper.summary() if stepper is not None else ""
            done[group.members[row]] = _finish(group, row, step, steps, t_start, curves)
        if bad:
            group.keep([r for r in range(len(group.members)) if r not in bad])

    def group_step(inputs, pattern: tuple[bool, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """One generator step of every member (its D steps first) on ``inputs``
        (``_group_draws``, on the device) and R1 ``pattern``: the members' (K,) D and G
        losses, never read on the host here, so that the step can be captured in a graph."""
        uses = group.uses
        it = iter(inputs)
        for with_r1 in pattern:
            # (1) D steps: each member's own real batch and latents, drawn outside vmap
            real, z = on_device[next(it)], next(it)
            with amp():
                with torch.no_grad():
                    # plain rows: G's last layers can leave a channels_last-like layout, which
                    # group norm cannot ask about inside vmap
                    fake = vmap(G)(group.pG, group.bG, z).contiguous()
                if joint_d:
                    logits = vmap(D)(group.pD, group.bD, torch.cat([real, fake], dim=1))
                    real_logits, fake_logits = logits[:, :bsz], logits[:, bsz:]
                else:
                    real_logits = vmap(D)(group.pD, group.bD, real)
                    fake_logits = vmap(D)(group.pD, group.bD, fake)
            d_loss = adversarial(0, real_logits.float(), fake_logits.float())
            restore = _nothing
            if with_r1:
                restore = _only(group.bD, uses.r1_off)  # a member without R1 makes no such pass alone
                d_loss = d_loss + (group.hyper["r1"] / 2) * R1_INTERVAL * vmap(r1)(group.pD, group.bD, real)
            grads = torch.autograd.grad(d_loss.sum(), list(group.pD.values()))
            restore()
            group.adam_d.update(group.pD, grads, group.hyper["lr_d"], group.hyper["beta1"], group.hyper["beta2"])

        # (2) G step
        z = next(it)
        w_fm, w_ms = group.hyper["feature_matching"], group.hyper["mode_seeking"]
        fm, ms = uses.feature_matching, uses.mode_seeking
        restore = _nothing
        with amp():
            fake = vmap(G)(group.pG, group.bG, z).contiguous()
            if fm:
                fake_logits, fake_feat = vmap(D_feat)(group.pD, group.bD, fake)
                # only members with feature matching drew the extra batch, as they do alone
                extra = on_device[next(it)]
                restore = _only(group.bD, uses.fm_off)
                with torch.no_grad():
                    _, real_feat = vmap(D_feat)(group.pD, group.bD, extra)
            else:
                fake_logits = vmap(D)(group.pD, group.bD, fake)
        g_loss = adversarial(1, fake_logits.float())
        if fm:
            g_loss = g_loss + w_fm * vmap(losses.feature_matching)(real_feat.float(), fake_feat.float())
        if ms:
            g_loss = g_loss + w_ms * vmap(losses.mode_seeking)(z, fake.float())
        grads = torch.autograd.grad(g_loss.sum(), list(group.pG.values()))
        restore()
        group.adam_g.update(group.pG, grads, group.hyper["lr_g"], group.hyper["beta1"], group.hyper["beta2"])
        return d_loss, g_loss

    def new_stepper():
        # a member leaving re-stacks the group's tensors: graphs of the old ones are stale
        return graphs.StepGraphs(group_step, on) if use_graphs else None

    stepper = None
    stepper = new_stepper()
    step = 0
    for step in range(1, steps + 1):
        if not group.members:
            break
        pattern = tuple(group.uses.r1 and (d_step_count + i + 1) % R1_INTERVAL == 0 for i in range(t.d_steps))
        d_step_count += t.d_steps
        inputs = _group_draws(group.runs, t.d_steps, group.uses.feature_matching)
        if stepper is not None:
            d_loss, g_loss = stepper(inputs, pattern)
        else:
            # not blocking: a plain copy from host memory waits for the device's queue
            d_loss, g_loss = group_step([x.to(on, non_blocking=True) for x in inputs], pattern)

        if group.pE is not None:
            _ema(group)

        group.pending.append((step, d_loss.detach(), g_loss.detach()))
        out_of_time = budget_seconds is not None and time.perf_counter() - t_start > budget_seconds
        before = len(group.members)
        check(step, force=step == steps or out_of_time)
        if len(group.members) != before and group.members:
            stepper = new_stepper()
        if progress is not None and (step % report_every == 0 or step == steps):
            progress(step, steps)
        if out_of_time:
            break

    check(step, force=True)
    for row in range(len(group.members)):
        if stepper is not None:
            group.runs[row].stats.graphs = stepper.summary()
        done[group.members[row]] = _finish(group, row, step, steps, t_start, curves)
    return [done[k] for k in range(len(genomes))]


def _nothing() -> None:
    pass


def _group_draws(runs: list[GanRun], d_steps: int, feature_matching: bool) -> list[torch.Tensor]:
    """One generator step's draws for every member, each from its own generator, in the
    order a lone member makes them (``train.step_draws``), stacked: each D step's batch
    indices (K,B) and latents (K,B,L), G's latents, and, when some member uses feature
    matching, its real batch's indices. A member without feature matching draws no such
    batch, as alone; its row repeats its last D batch, which its zero weight ignores."""
    out: list[torch.Tensor] = []
    last = None
    for _ in range(d_steps):
        last = torch.stack([r.batch_indices() for r in runs])
        out += [last, torch.stack([r.host_latents() for r in runs])]
    out.append(torch.stack([r.host_latents() for r in runs]))
    if feature_matching:
        out.append(torch.stack([r.batch_indices() if r.genome.loss.feature_matching > 0 else last[i]
                                for i, r in enumerate(runs)]))
    return out


def _only(buffers: dict[str, torch.Tensor], off: torch.Tensor | None) -> Callable[[], None]:
    """Before a pass that the members in ``off`` (rows, a long index) do not make when
    alone: returns what puts their buffers back as they are now (batch norm's running
    statistics, spectral norm's u and v, which every forward pass in training mode
    updates). Call it after the backward pass: batch norm's batched form keeps views of
    its statistics for the backward pass. Index tensors, not masks: a boolean mask
    would read the device to count its rows."""
    if off is None:
        return _nothing
    saved = {k: v.index_select(0, off) for k, v in buffers.items()}

    def restore() -> None:
        with torch.no_grad():
            for k, v in buffers.items():
                v.index_copy_(0, off, saved[k])
    return restore


@torch.no_grad()
def _ema(group: _Group) -> None:
    """``train.ema_update`` for every member, each with its own decay and step count."""
    betas = []
    for i, decay in enumerate(group.ema_decay):
        group.ema_steps[i] += 1
        betas.append(min(decay, (1 + group.ema_steps[i]) / (10 + group.ema_steps[i])))
    any_p = next(iter(group.pE.values()))
    # not blocking: a plain copy from host memory would wait for the step just queued
    weight = (1 - torch.tensor(betas, dtype=any_p.dtype)).to(any_p.device, non_blocking=True)
    for name, pe in group.pE.items():
        pe.lerp_(group.pG[name].detach(), weight.view((-1,) + (1,) * (pe.dim() - 1)))
    for name, be in group.bE.items():
        be.copy_(group.bG[name])


def _finish(group: _Group, row: int, step: int, steps: int, started: float, curves) -> Trained:
    run = group.runs[row]
    _write_back(run.G, group.pG, group.bG, row, run.opt_g, group.adam_g)
    _write_back(run.D, group.pD, group.bD, row, run.opt_d, group.adam_d)
    if run.G_ema is not None:
        _write_back(run.G_ema, group.pE, group.bE, row)
    run.ema_steps = group.ema_steps[row]
    d_curve, g_curve = curves[group.members[row]]
    trained = finish_gan(run, len(d_curve) if run.stats.status == "diverged" else step, steps, started,
                         d_curve, g_curve)
    trained.stats.group = len(curves)
    share(trained.stats, len(curves))
    return trained
