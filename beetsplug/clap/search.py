"""Scoring and ranking: text or seed tracks against the stored vectors."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .store import Store, StoreError
from .vectors import MAX_KNN, Rows

if TYPE_CHECKING:
    import numpy as np
    from beets.library import Library

    from .model import Bundle
    from .negation import ParsedQuery, TagMatch

DEFAULT_NEGATION_WEIGHT = 0.5
# Weight of the tagger's evidence (bundles with a `tags` output) in a
# negated attribute's penalty, next to its text similarity: calibrated in
# docs/benchmarks.md (neutral on the synthetic benchmark, where text
# similarity is the better detector; the tagger learnt from real recordings
# and knows e.g. guitar there far better than the text tower does).
DEFAULT_TAG_WEIGHT = 1.0
# Weight of the tagger's evidence for the attributes a description asks for
# ("guitar" in "guitar music without vocals"), added to every score: small,
# because on the synthetic benchmark it trades a little precision for a
# little more violation, while on real recordings it is what finds the
# guitar (docs/benchmarks.md, "Tagger evidence for wanted attributes").
# 0.2 for clap-default 0.5.0: on the valid split lower is better for
# precision and violations alike, the real-recording check set wants some
# (a guitar query there falls apart at 0); 0.2 keeps all but one clip of
# what 0.3 finds there.
DEFAULT_AFFIRMED_TAG_WEIGHT = 0.2
# Candidates fetched by the KNN pass before exact rescoring (negation
# penalties and album means can reorder them): enough for the penalty to
# surface tracks ranked a little lower by the whole-query similarity.
POOL_FACTOR = 4
MIN_POOL = 256
# Albums scored exactly for -a, of those the track pool touches.
ALBUM_POOL_FACTOR = 3
MIN_ALBUMS = 30


class SearchError(Exception):
    """A search that cannot run as asked; the message is one line."""


def resolve_negation_weight(configured: float | None, bundle: Bundle) -> float:
    """The user's setting, else the bundle's calibrated weight, else 0.5."""
    if configured is not None:
        return float(configured)
    calibrated = bundle.negation_weight
    return DEFAULT_NEGATION_WEIGHT if calibrated is None else calibrated


@dataclass
class TextQuery:
    """An embedded description: the whole text and its negated attributes."""

    parsed: ParsedQuery
    vector: np.ndarray  # [D], the whole text as typed
    # [M, D]: per negated attribute, its phrases (negation.attribute_phrases:
    # the attribute, then its kinds), in the order of `negated`; M may be 0.
    negated_vectors: np.ndarray
    weight: float
    # Per negated attribute, the bundle's tags that speak about it (empty
    # matches for a bundle without tags), and the weight of their evidence.
    tag_matches: tuple[TagMatch, ...] = ()
    tag_weight: float = 0.0
    tag_names: tuple[str, ...] = ()
    # The same for the attributes the affirmative part names, and the weight
    # of their mean evidence as a bonus.
    affirmed_matches: tuple[TagMatch, ...] = ()
    affirmed_tag_weight: float = 0.0
    # How many rows of `negated_vectors` each negated attribute has (left
    # empty: one each).
    phrase_counts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.phrase_counts:
            self.phrase_counts = (1,) * len(self.negated_vectors)

    @property
    def text(self) -> str:
        return self.parsed.text

    @property
    def negated(self) -> list[str]:
        return self.parsed.negated

    @classmethod
    def build(
        cls,
        parsed: ParsedQuery,
        vectors: np.ndarray,
        weight: float,
        tag_names: Sequence[str] = (),
        tag_weight: float = 0.0,
        affirmed_tag_weight: float = 0.0,
    ) -> TextQuery:
        """From a parsed query and the embeddings of [whole text,
        *negation.negated_phrases(parsed)] (or [whole text, *negated], one
        text per attribute, for a caller that does not widen them to their
        kinds): finds, per negated and per affirmed attribute, the tags that
        speak about it."""
        from .negation import attribute_phrases, match_head, match_tags

        names = tuple(tag_names)
        matches = tuple(match_tags(n, names) for n in parsed.negated)
        affirmed = tuple(match_head(a, names) for a in parsed.affirmed)
        counts = tuple(len(attribute_phrases(n)) for n in parsed.negated)
        if len(vectors) - 1 != sum(counts):
            if len(vectors) - 1 != len(counts):
                raise ValueError(
                    f"{len(vectors)} vectors for {len(counts)} negated attributes "
                    f"with {sum(counts)} phrases: expected the whole text's and "
                    "one per phrase (or per attribute)"
                )
            counts = (1,) * len(counts)
        return cls(
            parsed,
            vectors[0],
            vectors[1:],
            weight,
            matches,
            float(tag_weight),
            names,
            affirmed,
            float(affirmed_tag_weight),
            counts,
        )

    @property
    def _penalty_tags(self) -> bool:
        return _tags_count(self.tag_weight, self.tag_matches)

    @property
    def _bonus_tags(self) -> bool:
        return _tags_count(self.affirmed_tag_weight, self.affirmed_matches)

    @property
    def uses_tags(self) -> bool:
        """Whether scoring reads the items' stored tag probabilities."""
        return self._penalty_tags or self._bonus_tags

    @property
    def tag_width(self) -> int:
        """How many tag probabilities per item scoring reads (0: none)."""
        return len(self.tag_names) if self.uses_tags else 0

    @property
    def rescores(self) -> bool:
        """Whether the score is more than the whole text's cosine (a KNN
        pass alone cannot rank by it)."""
        return bool(len(self.negated_vectors)) or self._bonus_tags

    def score(self, mat: np.ndarray, tags: np.ndarray | None = None) -> np.ndarray:
        """sim(whole text) - weight * max over negated attributes of their
        penalty: text sim, plus tag_weight * the tagger's evidence where a tag
        speaks about the attribute and `tags` ([n_items, T]) are given
        (docs/queries.md, form "max"); plus affirmed_tag_weight * the mean
        evidence for the affirmed attributes a tag speaks about."""
        from .negation import combine_scores, tag_evidence

        negated = self._phrase_max(mat) if len(self.negated_vectors) else None
        if negated is not None and tags is not None and self._penalty_tags:
            for j, match in enumerate(self.tag_matches):
                evidence = tag_evidence(match, tags)
                if evidence is not None:
                    negated[j] += self.tag_weight * evidence
        return self.with_bonus(
            combine_scores(mat @ self.vector, negated, self.weight), tags
        )

    def _phrase_max(self, mat: np.ndarray) -> np.ndarray:
        """[n_negated, n_items]: per negated attribute, the best similarity
        of its phrases (itself or one of its kinds)."""
        import numpy as np

        sims = (mat @ self.negated_vectors.T).T
        starts = np.concatenate([[0], np.cumsum(self.phrase_counts)[:-1]])
        return np.maximum.reduceat(sims, starts, axis=0)

    def with_bonus(self, scores: np.ndarray, tags: np.ndarray | None) -> np.ndarray:
        """`scores` plus affirmed_tag_weight x the mean tagger evidence for
        the affirmed attributes (unchanged without tags or such attributes)."""
        import numpy as np

        from .negation import tag_evidence

        if tags is None or not self._bonus_tags:
            return scores
        found = [tag_evidence(m, tags) for m in self.affirmed_matches]
        bonus = np.mean([e for e in found if e is not None], axis=0)
        return (scores + self.affirmed_tag_weight * bonus).astype(np.float32)

    def explain(self) -> str:
        """How the description was understood, for `beet clap --explain`."""
        from .negation import attribute_phrases, describe

        scored_by = {}
        for attribute, match, count in zip(
            self.negated, self.tag_matches, self.phrase_counts, strict=False
        ):
            sim = f"text sim({attribute!r})"
            if count > 1:
                phrases = ", ".join(map(repr, attribute_phrases(attribute)))
                sim = f"max text sim({phrases})"
            names = self._tag_list(match)
            if names and self.tag_weight > 0:
                scored_by[attribute] = f"{sim} + {self.tag_weight:g} x tagger [{names}]"
            elif count > 1:
                scored_by[attribute] = sim
        bonus = {}
        if self.affirmed_tag_weight > 0:
            for attribute, match in zip(
                self.parsed.affirmed, self.affirmed_matches, strict=False
            ):
                if names := self._tag_list(match):
                    bonus[attribute] = f"tagger [{names}]"
        return describe(
            self.parsed,
            self.weight,
            scored_by=scored_by,
            bonus=bonus,
            bonus_weight=self.affirmed_tag_weight,
        )

    def _tag_list(self, match: TagMatch) -> str:
        names = [repr(self.tag_names[i]) for i in match.present]
        names += [f"1 - {self.tag_names[i]!r}" for i in match.absent]
        return ", ".join(names)


def _tags_count(weight: float, matches: Sequence[TagMatch]) -> bool:
    """Whether tag evidence weighted `weight` changes a score: some tag speaks
    about one of the attributes."""
    return weight > 0 and any(m.present or m.absent for m in matches)


def description_problem(text: str) -> str | None:
    """Why a description cannot be searched, in one line; None when it can.

    Checked before the model runs (and for every configured playlist before
    any is written): an empty text, one without words, or a negation with
    nothing after it ("jazz without") would still rank something, and the
    user would take that ranking for an answer to what they meant.
    """
    from .negation import dangling_cue

    text = " ".join(str(text).split())
    if not text:
        return 'empty description: say what to look for, e.g. beet clap "calm piano"'
    if not any(ch.isalpha() for ch in text):
        return (
            f"nothing to search for in {_shorten(text)!r}: describe the music "
            f'in words, e.g. beet clap "calm piano"'
        )
    cue = dangling_cue(text)
    if cue is not None:
        where = "" if cue == text else f" ends with {cue!r} and"
        return (
            f"{_shorten(text)!r}{where} names nothing to leave out: say what, "
            f'e.g. beet clap "jazz without vocals"'
        )
    return None


def embed_query(
    bundle: Bundle,
    text: str,
    weight: float,
    tag_weight: float = DEFAULT_TAG_WEIGHT,
    affirmed_tag_weight: float = DEFAULT_AFFIRMED_TAG_WEIGHT,
) -> TextQuery:
    """Validate, parse and embed a description: the whole text, then each
    negated attribute and its kinds (remembered by the bundle across queries)."""
    from .negation import negated_phrases, parse_query

    text = " ".join(str(text).split())
    problem = description_problem(text)
    if problem is not None:
        raise SearchError(problem)
    import numpy as np

    parsed = parse_query(text)
    vecs = np.concatenate(
        [bundle.embed_text([text]), bundle.embed_attributes(negated_phrases(parsed))]
    )
    if not vecs[0].any():
        # Only a toy vocabulary can do this; a zero vector would rank at random.
        raise SearchError(f"the model has no words for {_shorten(text)!r}")
    return TextQuery.build(
        parsed, vecs, weight, bundle.tag_names, tag_weight, affirmed_tag_weight
    )


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _pool_size(limit: int) -> int:
    return min(MAX_KNN, max(limit * POOL_FACTOR, MIN_POOL))


def _top(ids: np.ndarray, scores: np.ndarray, limit: int) -> list[tuple[int, float]]:
    import numpy as np

    order = np.argsort(-scores, kind="stable")[:limit]
    return [(int(ids[i]), float(scores[i])) for i in order]


def matching_ids(
    lib: Library, query: str | Sequence[str] | None, albums: bool = False
) -> set[int] | None:
    """Ids of the items (or albums) a beets query matches; None for no query.

    Read with one SQL query wherever beets can express the query in SQL:
    `lib.items(query)` builds an Item per match, ~1.8 s for 16k matches in a
    100k library against ~35 ms for their ids. Queries beets matches in
    Python (some plugin and flexible-attribute queries) go through beets.
    """
    if not query:
        return None
    from contextlib import nullcontext

    from beets.library import Album, Item, parse_query_parts, parse_query_string

    try:
        from beets.context import music_dir  # path queries parse relative to it
    except ImportError:  # beets before 2.14
        music_dir = None

    model: type[Item] | type[Album] = Album if albums else Item
    fetch = lib.albums if albums else lib.items
    try:
        with music_dir(lib.directory) if music_dir else nullcontext():
            parsed, _ = (
                parse_query_string(query, model)
                if isinstance(query, str)
                else parse_query_parts(list(query), model)
            )
        where, subvals = parsed.clause()
        table = model._table
        joined = table
        if parsed.field_names & model.other_db_fields:
            joined += f" {model.relation_join}"
    except AttributeError:  # a beets without these internals
        return {obj.id for obj in fetch(query)}
    if where is None:
        return {obj.id for obj in fetch(parsed)}
    with lib.transaction() as tx:
        rows = tx.query(
            f"SELECT DISTINCT {table}.id FROM ({joined}) WHERE {where}", subvals
        )
    return {int(row[0]) for row in rows}


def check_index(store: Store, bundle: Bundle) -> None:
    """SearchError unless the index holds vectors of this bundle."""
    try:
        store.check_searchable(bundle.identity)
    except StoreError as exc:
        raise SearchError(str(exc)) from exc


def _pool(
    store: Store,
    vector: np.ndarray,
    limit: int,
    candidates: Collection[int] | None,
    tags: int = 0,
) -> Rows:
    """The items worth scoring exactly (vectors, and tags when `tags` > 0):
    all candidates when they are few, else the pool nearest to `vector`
    among them."""
    size = _pool_size(limit)
    if candidates is not None and len(candidates) <= size:
        return store.rows(candidates, tags)
    hits = store.nearest(vector, size, candidates, tags, margin=0)
    return Rows(hits.ids, hits.vectors, hits.tags)


def _nearest(
    store: Store,
    vector: np.ndarray,
    limit: int,
    candidates: Collection[int] | None,
    exclude: Collection[int] = (),
) -> list[tuple[int, float]]:
    """The best `limit` by cosine to `vector`: the store's scores are
    exact, so no vector has to be read back."""
    hits = store.knn(vector, limit + len(exclude), candidates)
    return [(i, s) for i, s in hits if i not in exclude][:limit]


def rank_items(
    store: Store,
    bundle: Bundle,
    query: TextQuery,
    limit: int,
    candidates: Collection[int] | None = None,
) -> list[tuple[int, float]]:
    """The `limit` best items as (item id, score), among `candidates`
    (item ids matching a beets query) or the whole index."""
    check_index(store, bundle)
    if limit <= 0 or (candidates is not None and not candidates):
        return []
    if not query.rescores:
        return _nearest(store, query.vector, limit, candidates)
    if not len(query.negated_vectors):
        # Only the wanted attributes' bonus: the store's exact cosines of the
        # pool are the whole score before it.
        hits = store.nearest(
            query.vector, _pool_size(limit), candidates, query.tag_width, margin=0
        )
        return _top(hits.ids, query.with_bonus(hits.scores, hits.tags), limit)
    pool = _pool(store, query.vector, limit, candidates, query.tag_width)
    return _top(pool.ids, query.score(pool.vectors, pool.tags), limit)


def rank_albums(
    store: Store,
    bundle: Bundle,
    query: TextQuery,
    limit: int,
    album_ids: Collection[int] | None = None,
) -> list[tuple[int, float]]:
    """The `limit` best albums as (album id, score).

    An album's score is the mean of its indexed tracks' scores: it favours
    albums that fit the description throughout over albums with one
    matching track (a max would do the opposite).
    """
    import numpy as np

    check_index(store, bundle)
    if limit <= 0 or (album_ids is not None and not album_ids):
        return []
    candidates = None
    if album_ids is not None:
        candidates = [
            i for members in store.album_members(album_ids).values() for i in members
        ]
    # Albums of the tracks nearest to the whole text, in order of their
    # best track, then every track of the first few scored exactly.
    size = _pool_size(limit)
    if candidates is not None and len(candidates) <= size:
        pool = list(candidates)
    else:
        pool = store.nearest(query.vector, size, candidates, margin=0).ids.tolist()
    album_of = store.albums_of(pool)
    nearest = list(dict.fromkeys(album_of[i] for i in pool if i in album_of))
    members = store.album_members(nearest[: max(limit * ALBUM_POOL_FACTOR, MIN_ALBUMS)])
    rows = store.rows((i for m in members.values() for i in m), query.tag_width)
    scores = query.score(rows.vectors, rows.tags)
    score_of = dict(zip(rows.ids.tolist(), scores.tolist(), strict=True))
    albums, scores = [], []
    for album_id, item_ids in members.items():
        found = [score_of[i] for i in item_ids if i in score_of]
        if found:
            albums.append(album_id)
            scores.append(float(np.mean(found)))
    return _top(np.array(albums, np.int64), np.array(scores, np.float32), limit)


def rank_similar(
    store: Store,
    bundle: Bundle,
    seeds: Sequence[int],
    limit: int,
    candidates: Collection[int] | None = None,
) -> list[tuple[int, float]]:
    """Items that sound like the seeds (the seeds excluded): cosine to the
    normalised mean of the seeds' vectors."""
    from .model import l2_normalize

    check_index(store, bundle)
    if not seeds:
        raise SearchError("no items match the query: nothing to compare with")
    seed_ids, seed_mat = store.vectors(seeds)
    if not len(seed_ids):
        raise SearchError(
            f"none of the {len(seeds)} matched item(s) is indexed yet: "
            "run `beet clap-index`"
        )
    centroid = l2_normalize(seed_mat.mean(axis=0, keepdims=True))[0]
    if limit <= 0:
        return []
    return _nearest(store, centroid, limit, candidates, exclude=set(seeds))
