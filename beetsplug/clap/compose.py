"""Composed queries: a description, like and unlike seeds -> scores, explanation.

A composed score is

    score = D + like_weight * sim(like) - unlike_weight * sim(unlike)

D is the description's score exactly as a plain search computes it (its
negations included; 0 without a description), `sim(like)` the cosine to the
like seeds' direction and `sim(unlike)` the cosine to the unlike seeds'.
A seed set's direction is the normalised mean of its tracks' vectors, and
several `--like` options count equally (the mean of their directions): the
cosine to a normalised mean is the mean of the cosines to the seeds divided
by a constant of the query, so it ranks exactly like the mean of
similarities, stays on the description's -1..1 scale whatever the seeds'
spread (one calibrated weight serves one seed or a hundred), and is one
vector: the whole score is linear in the track's vector up to the
description's penalty, so one KNN pass along its direction finds the pool
(docs/queries.md, "Composed queries").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .search import (
    MIN_POOL,
    SearchError,
    check_index,
    is_query_term,
    pool_rows,
    score_rows,
    top_scored,
)

if TYPE_CHECKING:
    import numpy as np

    from .model import Bundle
    from .scoring import TagScale, TextQuery
    from .store import Store

__all__ = [
    "DEFAULT_LIKE_WEIGHT",
    "DEFAULT_UNLIKE_WEIGHT",
    "ComposedQuery",
    "SeedSet",
    "compose_query",
    "description_and_query",
    "explain_similar",
    "failed_count",
    "rank_albums",
    "rank_items",
    "seed_lines",
    "seed_set",
    "without_description",
]

# Weight of the like seeds next to the description (which counts 1),
# calibrated for the shipped bundle (clap-default 0.6.0; 1.0 suited 0.5.x)
# on the synthetic minimal-pair benchmark's valid split:
# "like this piece, without drums" (tests/benchmarks/bench_compose.py,
# docs/benchmarks.md, "Composed queries"). Large enough that the piece's
# own render without the attribute comes first, small enough that the
# description's negation still sinks the renders that have it.
DEFAULT_LIKE_WEIGHT = 1.5
# Weight of the unlike seeds, calibrated on the same benchmark ("like this
# render, unlike its sibling with the attribute").
DEFAULT_UNLIKE_WEIGHT = 0.5
# Seeds named per option by --explain; the rest are counted.
EXPLAIN_SEEDS = 5


def without_description(text: str) -> str:
    """The description `clap-similar --without TEXT` ranks by: "without
    TEXT", or TEXT itself when it is already all negation ("no vocals",
    "minus the drums"), which "without" before it would turn into a wanted
    word ("without no vocals" wants "without")."""
    from .query import parse_query

    parsed = parse_query(text)
    if parsed.negated and not parsed.affirmative.strip():
        return text
    return f"without {text}"


def description_and_query(
    args: Sequence[str], fields: Collection[str]
) -> tuple[str | None, list[str]]:
    """Split `beet clap [TEXT] [QUERY]`'s arguments when --like is given:
    TEXT is the first argument unless that is a beets query term naming one
    of `fields` (search.query_fields, as clap-web splits its search box) or
    empty (an empty "" says: no description, only a query)."""
    if not args:
        return None, []
    first = args[0]
    if not first.strip():
        return None, list(args[1:])
    if is_query_term(first, fields):
        return None, list(args)
    return first, list(args[1:])


@dataclass
class SeedSet:
    """The tracks one --like or --unlike query matched, and their direction."""

    query: str  # as typed
    matched: int  # items the query matched
    ids: list[int]  # those of them with a vector
    vector: np.ndarray  # [D], the normalised mean of their vectors
    failed: int = 0  # those without one because embedding their file failed


def seed_set(
    store: Store,
    option: str,
    query: str,
    matched: Collection[int] | None,
    name_of: Callable[[int], str] = str,
) -> SeedSet:
    """The indexed tracks among `matched` (the ids `query` matched; None for
    an empty query, which matches everything) and their direction;
    SearchError when there are none (`option`: --like, --unlike; `name_of`
    names a track that failed to index)."""
    from .model import l2_normalize
    from .results import not_indexed

    if matched is None:
        raise SearchError(
            f"{option} {query!r} matches every track: nothing is left to rank; "
            "narrow it down"
        )
    if not matched:
        raise SearchError(f"{option} {query} matches no track")
    ids, mat = store.vectors(matched)
    if not len(ids):
        raise SearchError(
            not_indexed(
                f"{option} {query}: the one track it matches",
                f"{option} {query}: none of the {len(matched)} tracks it matches",
                len(matched),
                store.failures(matched),
                name_of,
            )
        )
    vector = l2_normalize(mat.mean(axis=0, keepdims=True))[0]
    if not vector.any():
        raise SearchError(f"{option} {query}: its tracks' vectors cancel out")
    failed = failed_count(store, matched, ids)
    return SeedSet(query, len(matched), ids.tolist(), vector, failed)


def failed_count(store: Store, matched: Collection[int], ids: Sequence[int]) -> int:
    """How many of the `matched` tracks without a vector (not in `ids`)
    have one because their embedding failed, not because they wait for
    clap-index: --explain says which is which."""
    if len(ids) >= len(matched):
        return 0
    return len(store.failures(set(matched).difference(ids)))


def _direction(sets: Sequence[SeedSet]) -> np.ndarray | None:
    """The normalised mean of the sets' directions: each option counts equally."""
    if not sets:
        return None
    import numpy as np

    from .model import l2_normalize

    return l2_normalize(np.mean([s.vector for s in sets], axis=0, keepdims=True))[0]


@dataclass
class ComposedQuery:
    """A description (optional), like seeds and unlike seeds, weighted."""

    text: TextQuery | None
    like: list[SeedSet] = field(default_factory=list)
    unlike: list[SeedSet] = field(default_factory=list)
    like_weight: float = DEFAULT_LIKE_WEIGHT
    unlike_weight: float = DEFAULT_UNLIKE_WEIGHT

    def __post_init__(self) -> None:
        if self.text is None and not self.like:
            raise SearchError("give a description or --like QUERY: nothing to rank by")
        self.like_vector = _direction(self.like)
        self.unlike_vector = _direction(self.unlike)

    @property
    def seed_ids(self) -> set[int]:
        """Every seed, like and unlike: none of them is ever listed."""
        return {i for s in (*self.like, *self.unlike) for i in s.ids}

    @property
    def vector(self) -> np.ndarray:
        """The direction the score grows along, up to the description's
        penalty: what the KNN pass fetches the pool by."""
        import numpy as np

        parts = []
        if self.text is not None:
            parts.append(self.text.vector)
        if self.like_vector is not None:
            parts.append(self.like_weight * self.like_vector)
        if self.unlike_vector is not None:
            parts.append(-self.unlike_weight * self.unlike_vector)
        return np.sum(parts, axis=0).astype(np.float32)

    @property
    def tag_width(self) -> int:
        """Tag probabilities per item the description's scoring reads."""
        return 0 if self.text is None else self.text.tag_width

    def score(
        self,
        mat: np.ndarray,
        tags: np.ndarray | None = None,
        scale: TagScale | None = None,
    ) -> np.ndarray:
        """The composed score of each row of `mat` ([n, D]; `tags` [n, T]
        and their library `scale` as the description's scoring wants them)."""
        text = None if self.text is None else self.text.score(mat, tags, scale)
        return self._combined(mat, text, self._seed_terms(mat))

    def _seed_terms(self, mat: np.ndarray) -> list[tuple[str, float, str, np.ndarray]]:
        """(sign, weight, name, each row's cosine) of the seed directions
        there are: like, then unlike."""
        return [
            (sign, weight, name, mat @ vector)
            for sign, weight, name, vector in (
                ("+", self.like_weight, "like", self.like_vector),
                ("-", self.unlike_weight, "unlike", self.unlike_vector),
            )
            if vector is not None
        ]

    @staticmethod
    def _combined(
        mat: np.ndarray,
        text: np.ndarray | None,
        seeds: list[tuple[str, float, str, np.ndarray]],
    ) -> np.ndarray:
        """The description's scores (`text`, None: none) plus and minus the
        weighted seed cosines (`_seed_terms`)."""
        import numpy as np

        if text is None:
            out = np.zeros(len(mat), np.float32)
        else:
            out = text.astype(np.float32)
        for sign, weight, _, cosines in seeds:
            if sign == "+":
                out += weight * cosines
            else:
                out -= weight * cosines
        return out

    def describe_rows(
        self,
        mat: np.ndarray,
        tags: np.ndarray | None = None,
        scale: TagScale | None = None,
    ) -> list[str]:
        """Each row's composed score term by term, as `formula` adds it up
        ("0.9123 = description 0.3907 + 1.5 * like 0.4011"), then the
        description's own terms (TextQuery.describe_terms)."""
        seeds = self._seed_terms(mat)
        text = described = None
        if self.text is not None:
            terms = self.text.terms(mat, tags, scale)
            text = self.text.total(terms)
            described = self.text.describe_terms(terms)
        scores = self._combined(mat, text, seeds)
        lines = []
        for i, score in enumerate(scores.tolist()):
            parts = [] if text is None else [f"description {float(text[i]):.4f}"]
            parts += [
                f"{sign} {weight:g} * {name} {float(cosines[i]):.4f}"
                for sign, weight, name, cosines in seeds
            ]
            line = f"{score:.4f} = " + " ".join(parts).removeprefix("+ ")
            if described is not None:
                line += f"; description {described[i]}"
            lines.append(line)
        return lines

    def explain(self, name_of: Callable[[int], str] | None = None) -> str:
        """The description's explanation, the seeds (named by `name_of`) and
        how the parts are weighted, for `--explain`."""
        lines = [] if self.text is None else self.text.explain().splitlines()
        for option, sets in (("like", self.like), ("unlike", self.unlike)):
            for seeds in sets:
                lines += seed_lines(
                    option,
                    seeds.query,
                    seeds.matched,
                    seeds.ids,
                    name_of,
                    seeds.failed,
                )
        lines.append(f"composed:    {self.formula()}")
        return "\n".join(lines)

    def formula(self) -> str:
        """The composed ranking in one line."""
        terms = [] if self.text is None else ["description"]
        for sign, weight, sets, name in (
            ("+", self.like_weight, self.like, "like"),
            ("-", self.unlike_weight, self.unlike, "unlike"),
        ):
            if sets:
                what = f"sim({name} seeds)"
                if len(sets) > 1:
                    what = f"sim(mean of {len(sets)} {name} directions)"
                terms.append(f"{sign} {weight:g} * {what}")
        text = " ".join(terms)
        return text[2:] if text.startswith("+ ") else text


def seed_lines(
    label: str,
    query: str,
    matched: int,
    ids: Sequence[int],
    name_of: Callable[[int], str] | None = None,
    failed: int = 0,
) -> list[str]:
    """--explain's lines for one seed query: how many of the `matched`
    tracks it counts (`ids`, those with a vector; `failed` of the others
    failed to index, the rest wait for clap-index), then the first
    EXPLAIN_SEEDS of them named by `name_of`."""
    from .results import counted
    from .scoring import quoted  # a long query clipped, as the description is

    waiting = matched - len(ids) - failed
    note = (f", {failed} failed to index" if failed else "") + (
        f", {waiting} not indexed yet" if waiting else ""
    )
    count = len(ids)
    lines = [f"{label + ':':<13}{quoted(query)}: {counted(count, 'track')}{note}"]
    if name_of is not None:
        lines += [f"  {name_of(item_id)}" for item_id in ids[:EXPLAIN_SEEDS]]
        if count > EXPLAIN_SEEDS:
            lines.append(f"  ... and {count - EXPLAIN_SEEDS} more")
    return lines


def explain_similar(
    query: str,
    matched: int,
    ids: Sequence[int],
    name_of: Callable[[int], str] | None = None,
    failed: int = 0,
) -> str:
    """--explain of `clap-similar QUERY` without --without: its seeds and
    the ranking it uses (search.rank_similar), which is the like part of a
    composed score alone and unweighted, so its scores stay cosines
    (`failed`: as seed_lines takes it)."""
    lines = seed_lines("seeds", query, matched, ids, name_of, failed)
    lines.append("ranking:     sim(seeds), the cosine to their mean direction")
    return "\n".join(lines)


def compose_query(
    store: Store,
    bundle: Bundle,
    describe: Callable[[], TextQuery] | None,
    likes: Sequence[str | Sequence[str]],
    unlikes: Sequence[str | Sequence[str]],
    matching: Callable[[str | Sequence[str]], Collection[int] | None],
    like_weight: float = DEFAULT_LIKE_WEIGHT,
    unlike_weight: float = DEFAULT_UNLIKE_WEIGHT,
    name_of: Callable[[int], str] = str,
) -> ComposedQuery:
    """The ComposedQuery of a description (`describe()` parses and embeds
    it; None without one) and the --like/--unlike beets queries, each
    resolved to item ids by `matching`; the index is checked first, then
    every seed set, then the description. `name_of` names tracks in errors."""
    check_index(store, bundle)
    seeds = {
        option: [
            seed_set(store, f"--{option}", _as_text(q), matching(q), name_of)
            for q in queries
        ]
        for option, queries in (("like", likes), ("unlike", unlikes))
    }
    return ComposedQuery(
        None if describe is None else describe(),
        seeds["like"],
        seeds["unlike"],
        like_weight,
        unlike_weight,
    )


def _as_text(query: str | Sequence[str]) -> str:
    return query if isinstance(query, str) else " ".join(query)


def _indexed_ids(store: Store) -> np.ndarray:
    """Every item id with a vector (from the in-memory codes)."""
    import numpy as np

    index = store.coarse_index()
    if index is None:
        return np.zeros(0, np.int64)
    return index.ids[index.ids > 0]


def rank_items(
    store: Store,
    bundle: Bundle,
    query: ComposedQuery,
    limit: int,
    candidates: Collection[int] | None = None,
) -> list[tuple[int, float]]:
    """The `limit` best items as (item id, score), seeds never among them,
    among `candidates` (item ids matching a beets query) or the whole index.

    SearchError when the seeds are every indexed track there is to rank.
    """
    import numpy as np

    check_index(store, bundle)
    seeds = query.seed_ids
    if candidates is not None:
        wanted = set(candidates) - seeds
        if not wanted:  # the caller says why (its query matched only seeds)
            return []
    elif len(seeds) > MIN_POOL:
        # Too many to drop from a pool afterwards: filter the scan instead.
        indexed = _indexed_ids(store)
        wanted = indexed[~np.isin(indexed, np.fromiter(seeds, np.int64, len(seeds)))]
        if not len(wanted):
            raise SearchError(_everything(query))
    else:
        wanted = None
    if limit <= 0:
        return []
    # Seeds are dropped from the pool afterwards only when no filter left
    # them out of the scan already.
    exclude = seeds if wanted is None else ()
    pool = pool_rows(store, query.vector, limit, wanted, query.tag_width, exclude)
    if not len(pool.ids) and wanted is None:
        raise SearchError(_everything(query))
    return top_scored(pool.ids, score_rows(store, query, pool), limit)


def _everything(query: ComposedQuery) -> str:
    options = " ".join(f"--like {s.query}" for s in query.like) or "the seeds"
    return (
        f"{options} matches every indexed track: nothing is left to rank; "
        "narrow it down"
    )


def rank_albums(
    store: Store,
    bundle: Bundle,
    query: ComposedQuery,
    limit: int,
    album_ids: Collection[int] | None = None,
) -> list[tuple[int, float]]:
    """The `limit` best albums by the mean composed score of their tracks
    (as search.rank_albums), the albums holding a seed never among them."""
    from . import search

    seed_albums = set(store.albums_of(query.seed_ids).values())
    if album_ids is None:
        if not seed_albums:
            return search.rank_albums(store, bundle, query, limit)
        album_ids = store.album_ids()
    wanted = set(album_ids) - seed_albums
    if not wanted:
        return []
    return search.rank_albums(store, bundle, query, limit, wanted)
