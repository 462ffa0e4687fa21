"""Retrieval and negation metrics: pure functions of similarity matrices and labels.

The one implementation of text-to-music ranks for the whole trainer (the
training loop's validation reports through it too), with one tie rule: an
item that scores the same as the target is ranked above it; and one rule
for a diverged model's NaN/inf scores: they rank below every finite score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECALL_KS: tuple[int, ...] = (1, 5, 10)
CURVE_MAX_K = 50
TOP_K = 10


def _worst_if_non_finite(scores: np.ndarray) -> np.ndarray:
    """Scores as ranked: NaN and +-inf become -inf, below every finite score.

    NaN compares false with everything, so unmapped it would escape every
    `>=` and a NaN target would rank 0, a perfect hit.
    """
    scores = np.asarray(scores, dtype=np.float64)
    return np.where(np.isfinite(scores), scores, -np.inf)


def target_ranks(sim: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """1-based rank of each query's target item (row q of `sim` scores every item).

    Ties count against the target: an item scoring the same as the target is
    ranked above it, so a model that scores everything alike gets the worst
    rank, not the best. A non-finite score ranks last: a NaN target gets
    the worst rank.
    """
    sim = _worst_if_non_finite(sim)
    targets = np.asarray(targets, dtype=np.int64)
    target_scores = sim[np.arange(len(targets)), targets]
    return (sim >= target_scores[:, None]).sum(axis=1).astype(np.int64)


def recall_at(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(np.asarray(ranks) <= k)) if len(ranks) else float("nan")


def map_at(ranks: np.ndarray, k: int = TOP_K) -> float:
    """Mean average precision at k with one relevant item per query (= MRR cut at k)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if not len(ranks):
        return float("nan")
    return float(np.mean(np.where(ranks <= k, 1.0 / ranks, 0.0)))


def retrieval_metrics(sim: np.ndarray, targets: Sequence[int]) -> dict:
    """R@1/5/10, mAP@10 and median rank of each query's target."""
    ranks = target_ranks(sim, targets)
    out = {f"R@{k}": recall_at(ranks, k) for k in RECALL_KS}
    out["mAP@10"] = map_at(ranks, TOP_K)
    out["median_rank"] = float(np.median(ranks)) if len(ranks) else float("nan")
    out["queries"] = len(ranks)
    return out


def recall_curve(
    sim: np.ndarray, targets: Sequence[int], max_k: int = CURVE_MAX_K
) -> list[float]:
    ranks = target_ranks(sim, targets)
    return [recall_at(ranks, k) for k in range(1, min(max_k, sim.shape[1]) + 1)]


def binary_accuracy(score_a: np.ndarray, score_b: np.ndarray) -> float:
    """Share of cases where a scores strictly above b (ties are failures)."""
    score_a, score_b = np.asarray(score_a), np.asarray(score_b)
    return float(np.mean(score_a > score_b)) if len(score_a) else float("nan")


def topk_precision_violation(
    scores: np.ndarray, relevant: np.ndarray, violating: np.ndarray, k: int = TOP_K
) -> tuple[float, float]:
    """(share of the top k that is relevant, share that violates) for one query.

    k is capped at the number of relevant items, so a perfect ranking scores
    1.0 even when fewer than k items qualify. Ties are broken by item order;
    non-finite scores rank last.
    """
    k = int(min(k, relevant.sum()))
    if k == 0:
        return float("nan"), float("nan")
    top = np.argsort(-_worst_if_non_finite(scores), kind="stable")[:k]
    return float(relevant[top].mean()), float(violating[top].mean())
