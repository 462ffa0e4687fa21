"""Clustering and naming: spherical k-means of embeddings, names from tags and words.

Clusters are formed by cosine similarity, which is what the search ranks by.
Each is named by the concepts its items' stored tags single out against the
library, where the bundle has tags, and by the lexicon's descriptors the
text tower finds closest to its centre for the rest; a part its tracks
sound without is said last ("mellow piano, no drums"). numpy is imported
inside the functions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .lexicon import lexicon
from .m3u import slugify
from .model import l2_normalize
from .scoring import SPEECH_MARGIN, SPEECH_TEXT

if TYPE_CHECKING:
    import numpy as np

    from .taglinks import TagMeaning

__all__ = [
    "DESCRIPTORS",
    "Descriptors",
    "TagReading",
    "choose_k",
    "cluster_embeddings",
    "name_clusters",
    "read_cluster_tags",
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
        # (np.add.at scatters row by row; x.T @ onehot is BLAS's fast layout).
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
    """The words the text tower names clusters with.

    `presence` lists attributes whose absence is worth saying ("no vocals"):
    a cluster gets "no X" when its centre is closer to the text "no X" than
    to "X". `DESCRIPTORS`, the default set, is the lexicon's `descriptors`
    section, so the words are concepts the model was trained on and the
    parser reads; the namer takes its set as an argument.
    """

    genres: tuple[str, ...]
    moods: tuple[str, ...]
    instruments: tuple[str, ...]
    presence: tuple[str, ...] = ("vocals", "drums")


def _default_descriptors() -> Descriptors:
    words = lexicon().descriptors
    return Descriptors(
        genres=words["genres"],
        moods=words["moods"],
        instruments=words["instruments"],
        presence=words["presence"],
    )


DESCRIPTORS = _default_descriptors()


# --------------------------------------------------------------------------
# What a cluster's stored tags say
# --------------------------------------------------------------------------

# Kinds of concept that may lead a name ("electronic"); an era qualifies
# the lead ("80s electronic"), parts follow it.
LEAD_KINDS = frozenset({"genre", "mood", "tempo", "energy", "quality"})
# A tag names a cluster only when the cluster's mean stands at least half a
# library standard deviation above the library's mean: a tag that sets the
# cluster apart by less says little about it, and the text tower names it.
MIN_LIFT = 0.5
# Spreads below this count as this: a tag nearly constant over a library
# would otherwise turn rounding differences into large lifts.
MIN_SPREAD = 0.05
# A part is named absent ("no drums") when at least this share of the
# cluster's tracks is closer to "no drums" than to "drums". Judged track by
# track with the text tower, whose negation tells a track with drums from
# one without far better than the taggers' presence tags do on real
# recordings; four in five, so a cluster with a few such tracks is not told
# it has none (docs/benchmarks.md, "What automatic playlist names say").
ABSENT_SHARE = 0.8
# A cluster at least half of whose tracks are heard as speech (the search's
# rule: scoring.SPEECH_MARGIN) is named SPEECH_NAME: the taggers' genres
# read talk as hip hop, and its instruments say little about it.
SPEECH_SHARE = 0.5
SPEECH_NAME = "spoken word"


@dataclass(frozen=True)
class TagReading:
    """What one cluster's tags say, relative to the library.

    `lead`, `era` and `parts` are the concepts (lexicon ids or compound
    attributes, "female vocals") whose tags stand out in the cluster, best
    first. What the cluster lacks is the text tower's to say (ABSENT_SHARE).
    """

    lead: tuple[str, ...] = ()
    era: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()


def _heads(concept: str | None, attribute: str) -> bool:
    return concept is not None and (
        concept == attribute or concept.endswith(" " + attribute)
    )


def read_cluster_tags(
    tags: np.ndarray,
    members: Sequence[np.ndarray],
    meanings: Sequence[TagMeaning],
    presence: Sequence[str] = DESCRIPTORS.presence,
) -> list[TagReading]:
    """Read each cluster's tags: the concepts whose tags are highest in it
    relative to the whole library.

    `tags` is [n_items, n_tags] over the whole library (the clusters' lifts
    are measured against it), `members` the item rows of each cluster and
    `meanings` what each tag means (Bundle.tag_meanings). A tag's lift is
    (cluster mean - library mean) / library spread, so taggers' different
    scales compare; a concept's lift is that of its best tag. The presence
    parts ("vocals", "drums") are left out of `parts`: a name says them only
    when they are missing (name_clusters).
    """
    import numpy as np

    tags = np.asarray(tags, dtype=np.float32)
    if tags.ndim != 2 or tags.shape[1] != len(meanings):
        raise ValueError(
            f"tags must be [n_items, {len(meanings)}], got shape {tags.shape}"
        )
    lex = lexicon()
    named = [
        (t, m.concept, lex.kind_of(m.concept))
        for t, m in enumerate(meanings)
        if m.concept is not None and not m.absent
    ]
    lead_cols = [(t, c) for t, c, kind in named if kind in LEAD_KINDS]
    era_cols = [(t, c) for t, c, kind in named if kind == "era"]
    part_cols = [
        (t, c)
        for t, c, kind in named
        if kind == "part" and not any(_heads(c, p) for p in presence)
    ]
    mean = tags.mean(axis=0)
    spread = np.maximum(tags.std(axis=0), MIN_SPREAD)

    def ranked(cols: list[tuple[int, str]], lift: np.ndarray) -> tuple[str, ...]:
        best: dict[str, float] = {}
        for t, concept in cols:
            best[concept] = max(best.get(concept, -np.inf), float(lift[t]))
        order = sorted(best.items(), key=lambda kv: -kv[1])  # stable: tag order
        return tuple(c for c, value in order if value >= MIN_LIFT)

    readings = []
    for idx in members:
        rows = tags[np.asarray(idx, dtype=np.int64)]
        lift = (rows.mean(axis=0) - mean) / spread
        readings.append(
            TagReading(
                lead=ranked(lead_cols, lift),
                era=ranked(era_cols, lift),
                parts=ranked(part_cols, lift),
            )
        )
    return readings


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------


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
    readings: Sequence[TagReading] | None = None,
    members: Sequence[np.ndarray] | None = None,
) -> list[str]:
    """A short, unique name for each cluster centre.

    Name = the best genre or mood + the best instrument, then ", no X" for a
    presence attribute the cluster's tracks sound without. With `readings`
    (read_cluster_tags, one per centre) the concepts the cluster's tags
    single out come first; the text tower fills in what they leave open, in
    `vocabulary`'s words. There, genre, mood and instrument are chosen by
    2*sim - mean over clusters: a descriptor every cluster is close to (a
    "hub" of the text space) would otherwise name them all the same.
    `members` holds each cluster's track vectors [n_c, D]: a presence
    attribute is absent when at least ABSENT_SHARE of them are closer to
    its negation ("no drums") than to it, the largest share first if
    several are (raw similarities, so a library where everything has vocals
    is not told half of it has none). Without `members` the centre stands
    for its tracks. Duplicate names fall back to the next-best words.
    """
    import numpy as np

    centres = l2_normalize(np.asarray(centres, dtype=np.float32))
    if centres.ndim != 2 or centres.shape[0] == 0:
        return []
    if readings is not None and len(readings) != centres.shape[0]:
        raise ValueError(f"{len(readings)} tag readings for {centres.shape[0]} centres")
    tracks = _members_or_centres(centres, members)
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
        SPEECH_TEXT,
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
    present_emb, absent_emb = emb[bounds[3] : bounds[4]], emb[bounds[4] : -1]
    speech_emb = emb[-1]

    names: list[str] = []
    slugs: set[str] = set()
    for c in range(centres.shape[0]):
        # Genres and moods compete for the first word.
        lead = sorted(
            [(s, w) for s, w in zip(genre_s[c], v.genres, strict=True)]
            + [(s, w) for s, w in zip(mood_s[c], v.moods, strict=True)],
            key=lambda sw: -sw[0],
        )
        leads = [w for _s, w in lead]
        instruments = [v.instruments[i] for i in np.argsort(-instr_s[c], kind="stable")]
        pair = (
            v.moods[int(np.argmax(mood_s[c]))],
            v.genres[int(np.argmax(genre_s[c]))],
        )
        absent = _absent(tracks[c], present_emb, absent_emb, v.presence)
        era = ""
        if readings is not None:
            tagged = readings[c]
            era = f"{tagged.era[0]} " if tagged.era else ""
            leads = _first(tagged.lead, leads)
            if tagged.lead:  # "80s electronic": the runner-up qualifies the best
                pair = (leads[1], leads[0])
            instruments = _first(tagged.parts, instruments)
        suffix = f", no {absent[0]}" if absent else ""
        first, second = leads[0], (leads[1] if len(leads) > 1 else leads[0])
        instruments = [i for i in instruments if first not in i.split()] or instruments
        best, runner_up = instruments[0], instruments[min(1, len(instruments) - 1)]
        candidates = [
            f"{era}{first} {best}",
            f"{pair[0]} {pair[1]} {best}",
            f"{era}{second} {best}",
            f"{era}{first} {runner_up}",
        ]
        candidates = [name + suffix for name in candidates]
        if (tracks[c] @ speech_emb >= SPEECH_MARGIN).mean() >= SPEECH_SHARE:
            # Talk: music's words say little about it (numbered if there
            # are more such clusters).
            candidates = [SPEECH_NAME]
        # Unique file names make unique names: numbered as the last resort.
        numbered = (f"{candidates[0]} {n}" for n in itertools.count(2))
        name = next(
            n for n in itertools.chain(candidates, numbered) if slugify(n) not in slugs
        )
        names.append(name)
        slugs.add(slugify(name))
    return names


def _members_or_centres(
    centres: np.ndarray, members: Sequence[np.ndarray] | None
) -> list[np.ndarray]:
    """Each cluster's track vectors, normalised ([n_c, D]); a cluster given
    none (or `members` None) is its centre alone."""
    import numpy as np

    if members is None:
        return [centres[c : c + 1] for c in range(centres.shape[0])]
    if len(members) != centres.shape[0]:
        raise ValueError(f"{len(members)} member sets for {centres.shape[0]} centres")
    tracks = []
    for c, m in enumerate(members):
        m = np.asarray(m, dtype=np.float32)
        if m.ndim != 2 or m.shape[1] != centres.shape[1]:
            raise ValueError(
                f"cluster {c}'s members must be [n, {centres.shape[1]}], "
                f"got shape {m.shape}"
            )
        tracks.append(l2_normalize(m) if len(m) else centres[c : c + 1])
    return tracks


def _absent(
    tracks: np.ndarray,
    present_emb: np.ndarray,
    absent_emb: np.ndarray,
    presence: Sequence[str],
) -> list[str]:
    """The presence attributes at least ABSENT_SHARE of `tracks` are closer
    to the negation of than to, the largest share (then the widest mean
    margin) first."""

    margin = tracks @ absent_emb.T - tracks @ present_emb.T  # [n, P]
    share = (margin > 0).mean(axis=0)
    order = sorted(
        range(len(presence)), key=lambda i: (-share[i], -margin[:, i].mean())
    )
    return [presence[i] for i in order if share[i] >= ABSENT_SHARE]


def _first(preferred: Sequence[str], rest: Sequence[str]) -> list[str]:
    """`preferred`, then the words of `rest` it does not already hold."""
    return [*preferred, *(w for w in rest if w not in preferred)]
