"""The learned preference: how likely the artist is to pick an individual, from its
fixed-latent samples.

The representation. Pooled statistics of the samples (colour means and spreads,
histograms, the SWD's patch distributions, a random CNN's pooled embedding) are the
same for an image and its mirror image or its 90-degree rotation, so they cannot tell a
left-right symmetric image from a lopsided one, or vertical stripes from horizontal
ones, and those are what an artist breeding by eye often picks for. So each sample is
described by how it changes under the transforms a person notices, at two scales (full
size and half size, so coarse structure counts as well as texture):

- mirror asymmetry left-right and top-bottom: mean |L - flip(L)| relative to the image's
  own contrast (0 for a perfectly mirrored image);
- rotation asymmetry: the same against the image turned 90 degrees;
- gradient orientation: the share of horizontal vs vertical gradient energy, and their
  correlation (diagonal structure), from the image's structure tensor;

plus the pooled colour statistics (mean R, G, B, luminance contrast) that the rest of
evoart also sees. The features are averaged over the individual's samples (the fixed
latents, so two individuals are compared on the same latent vectors).

The model is L2-regularised logistic regression on standardised features, fitted by
Newton's method: 17 features, a few dozen labelled individuals, milliseconds to fit.
"""

from __future__ import annotations

import numpy as np

FEATURES = ("lr_asym", "ud_asym", "rot_asym", "orient", "diag",
            "lr_asym_half", "ud_asym_half", "rot_asym_half", "orient_half", "diag_half",
            "mean_r", "mean_g", "mean_b", "contrast", "contrast_half", "edge_energy", "edge_energy_half")


def _structure(lum: np.ndarray) -> list[np.ndarray]:
    """Per image of ``lum`` (N, H, W): the transform and orientation features."""
    eps = 1e-6
    centred = np.abs(lum - lum.mean(axis=(1, 2), keepdims=True)).mean(axis=(1, 2)) + eps
    lr = np.abs(lum - lum[:, :, ::-1]).mean(axis=(1, 2)) / centred
    ud = np.abs(lum - lum[:, ::-1, :]).mean(axis=(1, 2)) / centred
    rot = (np.abs(lum - np.rot90(lum, 1, axes=(1, 2))).mean(axis=(1, 2)) / centred
           if lum.shape[1] == lum.shape[2] else np.zeros(len(lum)))
    gx = np.diff(lum, axis=2)[:, :-1, :]
    gy = np.diff(lum, axis=1)[:, :, :-1]
    ex, ey, exy = (gx ** 2).mean(axis=(1, 2)), (gy ** 2).mean(axis=(1, 2)), (gx * gy).mean(axis=(1, 2))
    total = ex + ey + eps
    return [lr, ud, rot, (ex - ey) / total, exy / total, centred, np.sqrt(total)]


def image_features(images: np.ndarray) -> np.ndarray:
    """One individual's feature vector from its samples, uint8 (N, H, W, 3)."""
    x = images.astype(np.float32) / 255.0
    lum = x @ np.array([0.299, 0.587, 0.114], np.float32)
    h, w = lum.shape[1] // 2 * 2, lum.shape[2] // 2 * 2
    half = lum[:, :h, :w].reshape(len(lum), h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    full, coarse = _structure(lum), _structure(half)
    per_image = np.stack([*full[:5], *coarse[:5], x[..., 0].mean(axis=(1, 2)), x[..., 1].mean(axis=(1, 2)),
                          x[..., 2].mean(axis=(1, 2)), full[5], coarse[5], full[6], coarse[6]], axis=1)
    return per_image.mean(axis=0)


class PreferenceModel:
    """L2 logistic regression on standardised features (``fit`` then ``predict``)."""

    def __init__(self, l2: float = 1.0, iterations: int = 25):
        self.l2, self.iterations = l2, iterations
        self.mean = self.scale = self.w = None
        self.b = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> "PreferenceModel":
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        self.mean, self.scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        z = np.hstack([(x - self.mean) / self.scale, np.ones((len(x), 1))])
        w = np.zeros(z.shape[1])
        reg = np.full(z.shape[1], self.l2)
        reg[-1] = 1e-6  # the intercept is not shrunk
        for _ in range(self.iterations):  # Newton's method on the penalised log-likelihood
            p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
            grad = z.T @ (p - y) + reg * w
            hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        self.w, self.b = w[:-1], w[-1]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-np.clip(z @ self.w + self.b, -30, 30)))


def auc(scores, labels) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def leave_one_round_out_auc(rounds: list[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """Each round's individuals predicted by a model fitted on the other rounds; the AUC
    of all those predictions pooled. None while that cannot be measured (fewer than two
    rounds, or a training set or the whole without both classes)."""
    scores, labels = [], []
    for k, (x, y) in enumerate(rounds):
        rest = [r for j, r in enumerate(rounds) if j != k]
        if not rest:
            return None
        xt, yt = np.vstack([r[0] for r in rest]), np.concatenate([r[1] for r in rest])
        if yt.min() == yt.max():
            continue
        scores.extend(PreferenceModel().fit(xt, yt).predict(x))
        labels.extend(y)
    return auc(scores, labels) if scores else None


# ---- an interactive run's picks ------------------------------------------------------

def _features(session, ids: list[str]) -> np.ndarray:
    return store_features(session.store, session.cfg.resolution, ids)


def store_features(store, resolution: int, ids: list[str]) -> np.ndarray:
    from ..store import individual_dir
    from .session import sample_tiles

    rows = []
    for i in ids:
        path = individual_dir(store.run_dir, i) / "samples.png"
        tiles = sample_tiles(path, resolution) if path.is_file() else []
        rows.append(image_features(tiles) if len(tiles) else np.zeros(len(FEATURES)))
    return np.vstack(rows) if rows else np.zeros((0, len(FEATURES)))


def pick_rounds(session, before: int | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The artist's rounds so far: (generation, features, picked) of each generation they
    decided by picking (a ``none`` says too little), ok individuals only."""
    return store_rounds(session.store, session.cfg.resolution, before)


def store_rounds(store, resolution: int, before: int | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    out = []
    for g, p in sorted(store.pauses().items()):
        if before is not None and g >= before:
            continue
        d = p["decision"]
        if not p["applied"] or d is None or d.get("kind") != "pick" or p["source"] == "auto":
            continue
        ids = [r.id for r in store.individuals(ids=store.pool(g)) if r.status == "ok"]
        picked = set(d.get("picks", []))
        out.append((g, store_features(store, resolution, ids), np.array([1.0 if i in picked else 0.0 for i in ids])))
    return out


def fitted(session, before: int | None = None) -> PreferenceModel | None:
    rounds = pick_rounds(session, before)
    if not rounds:
        return None
    y = np.concatenate([r[2] for r in rounds])
    if y.min() == y.max():
        return None
    return PreferenceModel().fit(np.vstack([r[1] for r in rounds]), y)


def predict_pool(session, generation: int, entries) -> None:
    """Fill in each entry's predicted preference from the rounds before ``generation``."""
    model = fitted(session, before=generation)
    if model is None:
        return
    ok = [e for e in entries if not e.failed]
    for e, p in zip(ok, model.predict(_features(session, [e.id for e in ok]))):
        e.predicted = float(p)


def dominates(a: tuple, b: tuple) -> bool:
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def auto_select(session, generation: int) -> tuple[list[str], dict[str, float]]:
    """An automatic generation's survivors with the predicted preference as a fourth
    objective: Pareto fronts over realism, perceptual, coverage and the prediction (each
    oriented so that higher is better), the display score ordering each front. Without
    a model yet (no picks), the GA's own survivors."""
    from ..objectives import OBJECTIVES, WEIGHTS

    end = session.store.generations()[generation]["end_state"]
    ranked = list(end["population"])
    model = fitted(session, before=generation)
    if model is None:
        return ranked, {}
    pool = [r.id for r in session.store.individuals(ids=session.store.pool(generation)) if r.status == "ok"]
    pred = dict(zip(pool, (float(p) for p in model.predict(_features(session, pool)))))
    metrics = {i: session.store.scores(i, generation) for i in pool}
    point = {i: tuple(w * metrics[i].get(k, 0.0) for k, w in zip(OBJECTIVES, WEIGHTS)) + (pred[i],) for i in pool}
    left, order = list(pool), []
    while left:
        front = [i for i in left if not any(dominates(point[j], point[i]) for j in left if j != i)]
        order.extend(sorted(front, key=lambda i: (-metrics[i].get("score", 0.0), i)))
        left = [i for i in left if i not in front]
    return order[: session.cfg.population], pred


def run_summary(store, resolution: int) -> dict | None:
    """What the gallery shows of an interactive run: each round's picks, the undone
    generations, and the learned preference's leave-one-round-out AUC on the run's own
    picks (None until two rounds with picks and non-picks exist)."""
    if not store.is_interactive():
        return None
    pauses = store.pauses()
    picks = {g: (p["decision"] or {}).get("picks", []) for g, p in pauses.items()
             if p["decision"] and p["decision"].get("kind") == "pick"}
    rounds = store_rounds(store, resolution)
    loro = leave_one_round_out_auc([(x, y) for _, x, y in rounds]) if len(rounds) >= 2 else None
    return {"picks": picks, "rounds": len(rounds), "auc": loro,
            "branches": [(b["generation"], b["folder"]) for b in store.branches()],
            "decisions": {g: (p["decision"] or {}).get("kind") for g, p in pauses.items()},
            "pools": {g: store.pool(g) for g in pauses}}
