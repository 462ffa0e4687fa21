"""Clustering and naming: spherical k-means of embeddings, names from descriptors.

Clusters are formed by cosine similarity, which is what the search ranks by;
each is named with the descriptors the text tower finds closest to its
centre ("mellow piano, no drums"). numpy is imported inside the functions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .m3u import slugify
from .model import l2_normalize

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DESCRIPTORS",
    "Descriptors",
    "choose_k",
    "cluster_embeddings",
    "name_clusters",
]

MIN_K, MAX_K = 2, 30


def choose_k(n: int) -> int:
    """How many clusters for `n` tracks: round(sqrt(n / 2)) within [2, 30].

    The usual rule of thumb for k-means; it gives 2 lists for 10 tracks, 7 for
    100, 22 for 1000 and at most 30, a number a person can still browse.
    """
    if n < 1:
        raise ValueError("cannot cluster an empty library")
    return min(n, max(MIN_K, min(MAX_K, round(math.sqrt(n / 2)))))


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (as scikit-learn does it).

    For unit vectors the squared distance is 2 - 2 cos. Each new centre is the
    best of a few candidates drawn in proportion to it, which avoids the plain
    variant's habit of putting two seeds in one big cluster.
    """
    import numpy as np

    n = x.shape[0]
    trials = 2 + int(np.log(k))
    chosen = [int(rng.integers(n))]
    closest = np.maximum(2.0 - 2.0 * (x @ x[chosen[0]]).astype(np.float64), 0.0)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # every point coincides with a centre already
            break
        candidates = rng.choice(n, size=trials, p=closest / total)
        sims = (x @ x[candidates].T).T  # [trials, n]; x @ small is the fast order
        dists = np.maximum(2.0 - 2.0 * sims.astype(np.float64), 0.0)
        options = np.minimum(closest[None, :], dists)
        best = int(np.argmin(options.sum(axis=1)))
        chosen.append(int(candidates[best]))
        closest = options[best]
    return x[chosen].copy()


def _lloyd(
    x: np.ndarray, centres: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Spherical Lloyd iterations: (labels, centres, mean cosine to own centre)."""
    import numpy as np

    n, k = x.shape[0], centres.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(max_iter):
        sims = x @ centres.T
        new = sims.argmax(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        # Each cluster's sum as one matrix product with a one-hot [n, k]
        # (np.add.at is ~5x slower; x.T @ onehot is BLAS's fast layout).
        onehot = np.zeros((n, k), dtype=x.dtype)
        onehot[np.arange(n), labels] = 1.0
        sums = np.ascontiguousarray((x.T @ onehot).T)
        empty = np.flatnonzero(np.bincount(labels, minlength=k) == 0)
        if empty.size:
            # Reseed an empty cluster with the points their clusters fit worst.
            fit = sims[np.arange(n), labels]
            for c, point in zip(empty, np.argsort(fit, kind="stable"), strict=False):
                sums[c] = x[point]
        centres = l2_normalize(sums)
    sims = x @ centres.T
    labels = sims.argmax(axis=1)
    return labels, centres, float(sims[np.arange(n), labels].mean())


# Fit on at most this many tracks (a fixed-seed sample), then assign all:
# keeps `beet clap-playlists` to seconds on very large libraries.
MAX_FIT = 50_000


def cluster_embeddings(
    vectors: np.ndarray,
    k: int | None = None,
    seed: int = 0,
    max_iter: int = 100,
    n_init: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means: (labels [n], centres [k, D] L2-normalised).

    Cosine similarity is what the search ranks by, so clusters are formed by it
    too. Seeded greedy k-means++, best of `n_init` runs, makes it deterministic
    and robust; clusters are numbered by size (largest first, ties by their
    first member) so the same library gives the same labels. k is capped by
    the number of distinct vectors.
    """
    import numpy as np

    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"expected a non-empty [n, D] array of vectors, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or infinity")
    x = l2_normalize(x)
    n = x.shape[0]
    k = choose_k(n) if k is None else int(k)
    if k < 1:
        raise ValueError(f"number of clusters must be >= 1, not {k}")
    rng = np.random.default_rng(seed)
    fit = x if n <= MAX_FIT else x[np.sort(rng.choice(n, MAX_FIT, replace=False))]
    k = min(k, len(np.unique(fit, axis=0)))
    best: tuple[np.ndarray, float] | None = None
    for _ in range(max(1, n_init)):
        _labels, centres, score = _lloyd(fit, _kmeans_pp(fit, k, rng), max_iter)
        if best is None or score > best[1]:
            best = (centres, score)
    assert best is not None
    labels, centres, _score = _lloyd(x, best[0], 1 if fit is not x else 0)
    k = centres.shape[0]
    # Canonical numbering: by size, then by first member.
    counts = np.bincount(labels, minlength=k)
    first = np.array(
        [np.flatnonzero(labels == c)[0] if counts[c] else n for c in range(k)]
    )
    order = np.lexsort((first, -counts))
    order = order[counts[order] > 0]
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(order.size)
    return remap[labels], centres[order].astype(np.float32)


@dataclass(frozen=True)
class Descriptors:
    """The words clusters are named with.

    `presence` lists attributes whose absence is worth saying ("no vocals"):
    a cluster gets "no X" when its centre is closer to the text "no X" than
    to "X". The wording matches trainer/vocab.py, which the model was trained
    on. `DESCRIPTORS` is the default set; the namer takes its set as an
    argument, so the source of the words is chosen by the caller.
    """

    genres: tuple[str, ...]
    moods: tuple[str, ...]
    instruments: tuple[str, ...]
    presence: tuple[str, ...] = ("vocals", "drums")


DESCRIPTORS = Descriptors(
    genres=(
        "rock",
        "pop",
        "jazz",
        "blues",
        "classical",
        "ambient",
        "electronic",
        "folk",
        "hip hop",
        "metal",
        "latin",
        "reggae",
        "funk",
        "country",
        "soul",
        "punk",
        "house",
        "techno",
        "r&b",
        "soundtrack",
    ),
    moods=(
        "happy",
        "bright",
        "uplifting",
        "cheerful",
        "sad",
        "dark",
        "melancholic",
        "moody",
        "mellow",
        "calm",
        "energetic",
        "aggressive",
        "dreamy",
        "romantic",
        "slow",
        "fast",
        "upbeat",
    ),
    instruments=(
        "piano",
        "guitar",
        "acoustic guitar",
        "electric guitar",
        "distorted guitar",
        "bass",
        "strings",
        "violin",
        "cello",
        "brass",
        "trumpet",
        "saxophone",
        "flute",
        "clarinet",
        "organ",
        "synth",
        "harp",
        "choir",
    ),
)


def _embed(
    embed_text: Callable[[list[str]], np.ndarray], texts: list[str]
) -> np.ndarray:
    import numpy as np

    out = np.asarray(embed_text(texts), dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != len(texts):
        raise ValueError(
            f"embed_text returned shape {out.shape} for {len(texts)} texts"
        )
    return l2_normalize(out)


def name_clusters(
    centres: np.ndarray,
    embed_text: Callable[[list[str]], np.ndarray],
    vocabulary: Descriptors,
) -> list[str]:
    """A short, unique name for each cluster centre, in `vocabulary`'s words.

    Name = the best genre or mood + the best instrument, then ", no X" for the
    presence attribute whose negation beats its positive by the widest margin
    (if any does). Genre, mood and instrument are chosen by 2*sim - mean over
    clusters: a descriptor every cluster is close to (a "hub" of the text
    space) would otherwise name them all the same. Presence is judged on raw
    similarities, so a library where everything has vocals is not told half
    of it has none. Duplicate names fall back to the next-best descriptors.
    """
    import numpy as np

    centres = l2_normalize(np.asarray(centres, dtype=np.float32))
    if centres.ndim != 2 or centres.shape[0] == 0:
        return []
    v = vocabulary
    facets = {
        "genre": list(v.genres),
        "mood": list(v.moods),
        "instrument": list(v.instruments),
    }
    if not all(facets.values()):
        raise ValueError("the naming vocabulary needs genres, moods and instruments")
    texts = [
        *v.genres,
        *v.moods,
        *v.instruments,
        *v.presence,
        *(f"no {p}" for p in v.presence),
    ]
    emb = _embed(embed_text, texts)
    if emb.shape[1] != centres.shape[1]:
        raise ValueError(
            f"text embeddings have {emb.shape[1]} dimensions, "
            f"centres {centres.shape[1]}"
        )
    sims = centres @ emb.T  # [k, m]
    contrast = 2 * sims - sims.mean(axis=0, keepdims=True)
    bounds = np.cumsum(
        [0, len(v.genres), len(v.moods), len(v.instruments), len(v.presence)]
    )
    genre_s, mood_s, instr_s = (
        contrast[:, a:b] for a, b in itertools.pairwise(bounds[:4])
    )
    pos = sims[:, bounds[3] : bounds[4]]
    neg = sims[:, bounds[4] :]

    names: list[str] = []
    slugs: set[str] = set()
    for c in range(centres.shape[0]):
        # Genres and moods compete for the first word.
        lead = sorted(
            [(s, w) for s, w in zip(genre_s[c], v.genres, strict=True)]
            + [(s, w) for s, w in zip(mood_s[c], v.moods, strict=True)],
            key=lambda sw: -sw[0],
        )
        instruments = [v.instruments[i] for i in np.argsort(-instr_s[c], kind="stable")]
        best_genre = v.genres[int(np.argmax(genre_s[c]))]
        best_mood = v.moods[int(np.argmax(mood_s[c]))]
        suffix = ""
        if v.presence:
            margin = neg[c] - pos[c]
            best = int(np.argmax(margin))
            if margin[best] > 0:
                suffix = f", no {v.presence[best]}"
        first, second = lead[0][1], (lead[1][1] if len(lead) > 1 else lead[0][1])
        candidates = [
            f"{first} {instruments[0]}",
            f"{best_mood} {best_genre} {instruments[0]}",
            f"{second} {instruments[0]}",
            f"{first} {instruments[1] if len(instruments) > 1 else instruments[0]}",
        ]
        candidates = [name + suffix for name in candidates]
        # Unique file names make unique names: numbered as the last resort.
        numbered = (f"{candidates[0]} {n}" for n in itertools.count(2))
        name = next(
            n for n in itertools.chain(candidates, numbered) if slugify(n) not in slugs
        )
        names.append(name)
        slugs.add(slugify(name))
    return names
