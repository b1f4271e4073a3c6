"""The metric registry, in the style of StyleGAN3's ``metric_main``: every metric is a
factory registered under a name, and every caller builds metrics through it.

A factory does the real-side work once and returns a ``Scorer`` whose ``score(fake)`` is
cheap, because the GA scores a whole population against the same real image set. Each
metric says whether lower or higher is better and carries a version that changes whenever
its values would change (so stored values from different versions are never compared by
accident).

Each metric also declares which *context options* its factory takes (``context``, names
from :data:`CONTEXT_OPTIONS`). A caller that knows the whole context, such as a run's
``EvalContext``, passes all of it to :func:`build_metric`, which gives each factory only
what it declared and refuses names that are no context option at all. So no caller
needs to know which metric wants what.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol

from torch import Tensor


Direction = Literal["lower", "higher"]

#: Every option a caller may hand to :func:`build_metric`, and what it is.
CONTEXT_OPTIONS: dict[str, str] = {
    "features": "a local feature extractor (torch.export .pt2, or a TorchScript .pt) replacing "
                "the random-CNN embedding; None for the random CNN",
    "floors": "real-vs-real floors measured before ({metric: Floor or its dict}), e.g. a run's record",
    "floor_real": "real images outside the reference set, to measure the floors from",
    "n": "the sample count the floors are measured at (the number of fakes scored)",
    "repeats": "how many real-vs-real draws each floor is measured over",
    "device": "where the scorer does its costly work (a torch device such as 'cuda:0'); "
              "None where the real images are",
}


@dataclass(frozen=True)
class MetricInfo:
    """What a caller needs to know about a metric without computing it.

    ``direction`` tells the GA whether to minimise or maximise; ``version``
    changes whenever the metric's numbers would change, so results stored by
    an older version are recognisably not comparable; ``context`` names the
    context options (:data:`CONTEXT_OPTIONS`) its factory takes.
    """

    name: str
    direction: Direction
    version: int
    description: str
    context: tuple[str, ...] = ()


class Scorer(Protocol):
    """A metric bound to one real image set (real-side work already done)."""

    def score(self, fake: Tensor) -> dict[str, float]:
        """Score a set of generated images.

        Returns the main value under the metric's own name plus any parts
        (e.g. per-level values), all as plain floats.
        """
        ...


# factory(real, *, seed, **options) -> Scorer
MetricFactory = Callable[..., Scorer]

_REGISTRY: dict[str, tuple[MetricInfo, MetricFactory]] = {}


def register_metric(
    name: str, *, direction: Direction, version: int, description: str, context: tuple[str, ...] = ()
) -> Callable[[MetricFactory], MetricFactory]:
    """Decorator that registers a metric factory under ``name``.

    The factory must have the signature ``factory(real, *, seed, **options)``
    and return a :class:`Scorer`; ``context`` lists the context options it takes,
    each a keyword of the factory. Registering a name twice is an error rather
    than a silent override, so two modules cannot fight over a metric name.
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"version must be a non-negative int, got {version!r}")
    if not name or not isinstance(name, str):
        raise ValueError(f"metric name must be a non-empty string, got {name!r}")
    context = tuple(context)
    unknown = [c for c in context if c not in CONTEXT_OPTIONS]
    if unknown:
        raise ValueError(f"metric {name!r} declares unknown context options {unknown}; "
                         f"known: {', '.join(CONTEXT_OPTIONS)}")

    def decorator(factory: MetricFactory) -> MetricFactory:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is already registered")
        params = inspect.signature(factory).parameters
        takes = {p for p, v in params.items() if v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)}
        missing = [c for c in context if c not in takes]
        if missing:
            raise ValueError(f"metric {name!r} declares context {missing} that its factory does not take")
        info = MetricInfo(name=name, direction=direction, version=version, description=description,
                          context=context)
        _REGISTRY[name] = (info, factory)
        factory.metric_info = info  # type: ignore[attr-defined]
        return factory

    return decorator


def _lookup(name: str) -> tuple[MetricInfo, MetricFactory]:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise KeyError(f"unknown metric {name!r}; known metrics: {known}") from None


def get_metric(name: str) -> MetricFactory:
    """The factory registered under ``name`` (``KeyError`` lists known names)."""
    return _lookup(name)[1]


def get_metric_info(name: str) -> MetricInfo:
    """The :class:`MetricInfo` registered under ``name``."""
    return _lookup(name)[0]


def list_metrics() -> list[MetricInfo]:
    """All registered metrics, sorted by name."""
    return [info for _, (info, _f) in sorted(_REGISTRY.items())]


def metric_versions() -> dict[str, int]:
    """Every registered metric's version, for run records and caches, and the version of
    realism (the judge panel's statistic, which is no registered scorer)."""
    from .realism import REALISM_VERSION

    out = {info.name: info.version for info in list_metrics()}
    out.setdefault("realism", REALISM_VERSION)
    return out


def build_metric(name: str, real: Tensor, *, seed: int, **context: Any) -> Scorer:
    """The scorer of metric ``name`` for the real set ``real``.

    ``context`` may hold any of :data:`CONTEXT_OPTIONS`; the factory gets only those its
    metric declared, so a caller can pass everything it knows. A name that is no context
    option is refused (``TypeError``), so a misspelt option cannot be dropped silently.
    """
    info, factory = _lookup(name)
    unknown = sorted(k for k in context if k not in CONTEXT_OPTIONS)
    if unknown:
        raise TypeError(f"build_metric got unknown context options {unknown}; "
                        f"known: {', '.join(CONTEXT_OPTIONS)}")
    return factory(real, seed=seed, **{k: context[k] for k in info.context if k in context})
