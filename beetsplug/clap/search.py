"""Search: a description or seed tracks -> candidates -> ranked items or albums."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from .scoring import TagScale, TextQuery
from .store import Store, StoreError
from .vectors import MAX_KNN, Rows

if TYPE_CHECKING:
    import numpy as np
    from beets.dbcore.query import Query as BeetsQuery
    from beets.library import Album, Item, Library

    from .compose import ComposedQuery
    from .model import Bundle
    from .query import ParsedQuery

    # What ranking reads of a query, plain or composed: the direction its
    # pool is fetched along (`vector`), `tag_width`, and the exact `score`.
    Query = TextQuery | ComposedQuery

__all__ = [
    "SearchError",
    "TextQuery",
    "album_scores",
    "check_index",
    "description_problem",
    "embed_query",
    "is_query_term",
    "item_columns",
    "known_fields",
    "matching_ids",
    "pool_rows",
    "query_fields",
    "query_problem",
    "rank_albums",
    "rank_items",
    "rank_similar",
    "resolve_negation_weight",
    "score_rows",
    "top_scored",
]

DEFAULT_NEGATION_WEIGHT = 0.5
# How a refused description's message shows an example description: as
# typed on the command line. clap-web passes its own (web.BOX_EXAMPLE).
COMMAND_EXAMPLE = 'beet clap "{}"'
# Weights of the tagger's evidence (bundles with a `tags` output): in a
# negated attribute's penalty, next to its text similarity, and for the
# attributes a description asks for ("guitar" in "guitar music without
# vocals"), as a bonus. The evidence is the linked tags' probability
# relative to their top over the library (scoring.TagScale), so one weight
# fits tags of every scale. Chosen together (docs/benchmarks.md, "Query
# phrases linked to tags"): the best of the real-recording check set's
# choose part among the weights that leave the synthetic valid split's
# negated retrieval where clap-default 0.5.0's defaults had it. More weight
# for wanted attributes finds more on real recordings and costs precision
# on the synthetic corpus, whose renders the taggers know less well than
# the text tower does.
DEFAULT_TAG_WEIGHT = 1.0
DEFAULT_AFFIRMED_TAG_WEIGHT = 0.2
# Weight of the speech term (scoring.speech_penalty): a description that
# asks for no voice ranks what the model hears as speech alone after music,
# one that asks for speech alone ranks it first. Chosen with
# scoring.SPEECH_MARGIN on the real-recording check set's choose part
# (docs/benchmarks.md, "Speech under music queries" and "Speech asked for
# in other words").
DEFAULT_SPEECH_WEIGHT = 8.0
# Candidates fetched by the KNN pass before exact rescoring (negation
# penalties and album means can reorder them): enough for the penalty to
# surface tracks ranked a little lower by the whole-query similarity.
POOL_FACTOR = 4
MIN_POOL = 256
# Items whose tags give the library's tag scale (TagScale): spread evenly
# over the item ids (imports come in runs of one kind), so the scale costs
# the same few row reads however large the library, and a tag's top read
# from the sample stands for the library's.
SCALE_SAMPLE = 1024
_scales: dict[tuple[int, str, int], TagScale] = {}
# A beets query term's field name: an optional negation (`-`, `^`), the
# name, then `:` (`year:1990..`, `^genre:rock`, `title::^So`, `artist:=X`).
_FIELD_TERM = re.compile(r"^[-^]?([A-Za-z_]\w*):")
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


def description_problem(
    text: str, parsed: ParsedQuery | None = None, example: str = COMMAND_EXAMPLE
) -> str | None:
    """Why a description cannot be searched, in one line; None when it can.

    Checked before the model runs (and for every configured playlist before
    any is written): an empty text, one without words, or a negation with
    nothing after it ("jazz without") would still rank something, and the
    user would take that ranking for an answer to what they meant. `parsed`
    is the text's parse when the caller has it already; `example` how the
    message shows a description to search for (COMMAND_EXAMPLE).
    """
    text = " ".join(str(text).split())
    if not text:
        return (
            "empty description: say what to look for, "
            f"e.g. {example.format('calm piano')}"
        )
    if not any(ch.isalpha() for ch in text):
        return (
            f"nothing to search for in {_shorten(text)!r}: describe the music "
            f"in words, e.g. {example.format('calm piano')}"
        )
    if parsed is None:
        from .query import parse_query

        parsed = parse_query(text)
    cue = parsed.dangling
    if cue is not None:
        where = "" if cue == parsed.text else f" ends with {cue!r} and"
        return (
            f"{_shorten(text)!r}{where} names nothing to leave out: say what, "
            f"e.g. {example.format('jazz without vocals')}"
        )
    return None


def embed_query(
    bundle: Bundle,
    text: str,
    weight: float,
    tag_weight: float = DEFAULT_TAG_WEIGHT,
    affirmed_tag_weight: float = DEFAULT_AFFIRMED_TAG_WEIGHT,
    speech_weight: float = DEFAULT_SPEECH_WEIGHT,
    example: str = COMMAND_EXAMPLE,
) -> TextQuery:
    """Validate, parse and embed a description: the whole text, then each
    negated attribute and its kinds, and the speech text (both remembered
    by the bundle across queries). The description is parsed once, as far as
    the text tower reads it; `example` as description_problem takes it."""
    from .query import parse_query
    from .scoring import SPEECH_TEXT, negated_phrases, whole_vector

    text = " ".join(str(text).split())
    parsed = parse_query(text, bundle.max_tokens) if text else None
    problem = description_problem(text, parsed, example)
    if problem is not None:
        raise SearchError(problem)
    import numpy as np

    assert parsed is not None  # an empty text is a problem
    vecs = np.concatenate(
        [
            whole_vector(_whole_embeddings(bundle, parsed.whole_texts))[None, :],
            bundle.embed_attributes(negated_phrases(parsed)),
        ]
    )
    if not vecs[0].any():
        # Only a toy vocabulary can do this; a zero vector would rank at random.
        raise SearchError(f"the model has no words for {_shorten(text)!r}")
    return TextQuery.build(
        parsed,
        vecs,
        weight,
        bundle.tag_names,
        tag_weight,
        affirmed_tag_weight,
        bundle=bundle,
        speech_vector=bundle.embed_attributes([SPEECH_TEXT])[0],
        speech_weight=speech_weight,
    )


def _whole_embeddings(bundle: Bundle, texts: Sequence[str]) -> np.ndarray:
    """The embeddings of a description's `whole_texts` (in any order: the
    whole vector is their mean direction). Those that are a concept's name
    alone (a family's kinds: "guitar" also reads as "acoustic guitar"...)
    come from the bundle's memory of attribute phrases, so a long-lived
    process (web, playlists) embeds each once."""
    import numpy as np

    from .lexicon import lexicon

    concepts = lexicon().concepts
    named = [t for t in texts if t in concepts]
    typed = [t for t in texts if t not in concepts]
    parts = [bundle.embed_text(typed)] if typed else []
    if named:
        parts.append(bundle.embed_attributes(named))
    return np.concatenate(parts)


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _pool_size(limit: int) -> int:
    """How many candidates the KNN pass fetches for `limit` results."""
    return min(MAX_KNN, max(limit * POOL_FACTOR, MIN_POOL))


def top_scored(
    ids: np.ndarray, scores: np.ndarray, limit: int
) -> list[tuple[int, float]]:
    """The `limit` best (id, score), best first; ties keep the ids' order."""
    import numpy as np

    order = np.argsort(-scores, kind="stable")[:limit]
    return [(int(ids[i]), float(scores[i])) for i in order]


def matching_ids(
    lib: Library, query: str | Sequence[str] | None, albums: bool = False
) -> set[int] | None:
    """Ids of the items (or albums) a beets query matches; None for no query.

    Read with one SQL query wherever beets can express the query in SQL:
    `lib.items(query)` builds an Item per match, which costs far more than
    reading their ids (docs/benchmarks.md). Queries beets matches in
    Python (some plugin and flexible-attribute queries) go through beets.
    An invalid query raises beets' InvalidQueryError, as `lib.items` does,
    which beets prints as its one line (`invalid query: ...`).
    """
    if not query:
        return None
    from beets.library import Album, Item

    model: type[Item] | type[Album] = Album if albums else Item
    fetch = lib.albums if albums else lib.items
    try:
        parsed = _parsed(lib, query, model)
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


def item_columns(
    lib: Library, query: str | Sequence[str] | None, columns: Sequence[str]
) -> list[tuple]:
    """The `columns` of the items `lib.items(query)` gives, in its order:
    one row per item, each value as the Item would give it (`item[column]`,
    read as items.item_path reads a path; items.db_paths makes those the
    strs item_path gives).

    Read with one SQL query, as beets' own `_fetch` builds it for the
    query and its sort (the query's own, else `sort_item`) but selecting
    only `columns`: building an Item per match costs far more than
    reading these (docs/benchmarks.md). Queries or sorts beets evaluates
    in Python (some plugin and flexible-attribute ones) go through
    `lib.items`, whose Items give the same values. An invalid query
    raises InvalidQueryError as `lib.items` does.
    """
    from beets.library import Item

    from .items import item_values, library_context

    def through_items() -> list[tuple]:
        with library_context(lib):
            return [tuple(item[c] for c in columns) for item in lib.items(query)]

    try:
        from beets.dbcore.query import TrueQuery

        parsed, sort = (
            (TrueQuery(), None) if query is None else _parse(lib, query, Item)
        )
        # The query's own sort overrides the default unless it is none
        # (beets' NullSort, which is false).
        if not sort:
            sort = lib.get_default_item_sort()
        where, subvals = parsed.clause()
        if where is None or sort.is_slow():
            return through_items()
        order_by = sort.order_clause()
        table = Item._table
        joined = table
        if parsed.field_names & Item.other_db_fields:
            joined += f" {Item.relation_join}"
        chosen = ", ".join(f"{table}.{c}" for c in columns)
        # beets' _fetch, with `chosen` for the `{table}.*` it returns.
        grouped = f"FROM ({joined}) WHERE {where or 1} GROUP BY {table}.id "
        if order_by:
            outer = f"FROM (SELECT {table}.* {grouped}) {table}"
            if (sort.field_names & Item.other_db_fields) - Item._getters().keys():
                outer += f" {Item.relation_join}"
            sql = f"SELECT {chosen} {outer} ORDER BY {order_by} "
        else:
            sql = f"SELECT {chosen} {grouped}"
    except AttributeError:  # a beets without these internals
        return through_items()
    with lib.transaction() as tx:
        rows = tx.query(sql, subvals)
    return item_values(lib, rows, columns)


def _parsed(
    lib: Library, query: str | Sequence[str], model: type[Item] | type[Album]
) -> BeetsQuery:
    """A beets query parsed for `model` as `lib.items` parses it (path
    queries relative to the library's folder); InvalidQueryError when it
    is not valid, whichever way beets finds out."""
    return _parse(lib, query, model)[0]


def _parse(
    lib: Library, query: str | Sequence[str], model: type[Item] | type[Album]
) -> tuple[BeetsQuery, Any]:
    """`_parsed`, with the sort the query names (beets' NullSort for none)."""
    from contextlib import nullcontext

    from beets.dbcore.query import InvalidQueryArgumentValueError, InvalidQueryError
    from beets.library import parse_query_parts, parse_query_string

    try:
        from beets.context import music_dir  # path queries parse relative to it
    except ImportError:  # beets before 2.14
        music_dir = None
    try:
        with music_dir(lib.directory) if music_dir else nullcontext():
            parsed = (
                parse_query_string(query, model)
                if isinstance(query, str)
                else parse_query_parts(list(query), model)
            )
    except InvalidQueryArgumentValueError as exc:
        # beets' own commands get this wrapped by lib.items; so do these.
        raise InvalidQueryError(query, exc) from exc
    return parsed


def query_problem(lib: Library, query: str) -> str | None:
    """Why a beets query cannot run, in the one line beets prints for it
    (`invalid query: ...`); None when it can. Checks without running it."""
    from beets.dbcore.query import InvalidQueryError
    from beets.library import Item

    try:
        _parsed(lib, query, Item)
    except InvalidQueryError as exc:
        return f"invalid query: {exc}"
    return None


def known_fields(lib: Library) -> set[str]:
    """Fields of items and albums: beets' own, its computed ones, and the
    flexible attributes this library holds."""
    from beets.library import Album, Item

    fields = set(Item.all_keys()) | set(Album.all_keys())
    with lib.transaction() as tx:
        for table in ("item_attributes", "album_attributes"):
            fields |= {row[0] for row in tx.query(f"SELECT DISTINCT key FROM {table}")}
    return fields


def list_fields() -> dict[str, str]:
    """The single-value names beets still takes for its list fields, to the
    list field (`genre` -> `genres`); empty before beets had list fields."""
    try:
        from beets.util import deprecation
    except ImportError:  # a beets before its list fields
        return {}
    return {
        **getattr(deprecation, "ITEM_LEGACY_TO_LIST_FIELD", {}),
        **getattr(deprecation, "ALBUM_LEGACY_TO_LIST_FIELD", {}),
    }


def query_fields(lib: Library) -> set[str]:
    """The names a beets query term can start with in this library (lower
    case): its fields (known_fields), the single-value names beets still
    takes for its list fields (`genre:` for `genres`), and the named
    queries (`singleton:`, plugins' such as `clap:`)."""
    from beets.library import Album, Item

    names = known_fields(lib) | set(Item._queries) | set(Album._queries)
    names |= set(list_fields())
    return {name.lower() for name in names}


def is_query_term(token: str, fields: Collection[str]) -> bool:
    """Whether `token` is a beets query term naming one of `fields`
    (query_fields): `year:1990..`, `-genre:jazz`, `title::^So`. Any other
    `word:` is description, as a form's answer ("vocals: none",
    "exclude: choir") is: beets would take it for a flexible attribute
    that no track has, and match nothing."""
    found = _FIELD_TERM.match(token)
    return found is not None and found.group(1).lower() in fields


def check_index(store: Store, bundle: Bundle) -> None:
    """SearchError unless the index holds vectors of this bundle."""
    try:
        store.check_searchable(bundle.identity)
    except StoreError as exc:
        raise SearchError(str(exc)) from exc


def library_scale(store: Store, width: int) -> TagScale | None:
    """The tag scale of the library (TagScale over up to SCALE_SAMPLE items'
    stored tags), read once per index version (the store's codes version
    changes with every write) and remembered; None for no tags."""
    import numpy as np

    if width <= 0:
        return None
    key = (id(store), store.meta().get("codes_version", ""), width)
    scale = _scales.get(key)
    if scale is None:
        from .schema import TAGS, table_names

        if TAGS not in table_names(store.conn):
            return None
        # Two queries: SQLite reads min() or max() alone off the key, both
        # together by scanning every row.
        (lo,) = store.conn.execute(f"SELECT min(item_id) FROM {TAGS}").fetchone()
        (hi,) = store.conn.execute(f"SELECT max(item_id) FROM {TAGS}").fetchone()
        if lo is None or hi is None:
            return None
        count = min(hi - lo + 1, SCALE_SAMPLE)
        ids = np.unique(np.linspace(lo, hi, count).round().astype(np.int64))
        found = [t for t in store.tags(ids.tolist()).values() if len(t) == width]
        if not found:
            return None
        scale = TagScale.fit(np.stack(found))
        if len(_scales) >= 16:
            _scales.clear()
        _scales[key] = scale
    return scale


def pool_rows(
    store: Store,
    vector: np.ndarray,
    limit: int,
    candidates: Collection[int] | None,
    tags: int = 0,
    exclude: Collection[int] = (),
) -> Rows:
    """The items worth scoring exactly (vectors, and tags when `tags` > 0):
    all candidates when they are few, else the pool nearest to `vector`
    among them. Ids in `exclude` (items the scan may return but the ranking
    must not list) are dropped from that pool, fetched larger by as many."""
    size = _pool_size(limit)
    if candidates is not None and len(candidates) <= size:
        return store.rows(candidates, tags)
    hits = store.nearest(
        vector, min(MAX_KNN, size + len(exclude)), candidates, tags, margin=0
    )
    if not len(exclude):
        return Rows(hits.ids, hits.vectors, hits.tags)
    import numpy as np

    keep = ~np.isin(hits.ids, np.fromiter(exclude, np.int64, len(exclude)))
    tag_rows = None if hits.tags is None else hits.tags[keep]
    return Rows(hits.ids[keep], hits.vectors[keep], tag_rows)


def score_rows(store: Store, query: Query, rows: Rows) -> np.ndarray:
    """The query's exact score of each row, its tags read against the
    library's tag scale."""
    return query.score(rows.vectors, rows.tags, library_scale(store, query.tag_width))


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
    if not query.reads_vectors:
        # Only the wanted attributes' bonus: the store's exact cosines of the
        # pool are the whole score before it.
        hits = store.nearest(
            query.vector, _pool_size(limit), candidates, query.tag_width, margin=0
        )
        scale = library_scale(store, query.tag_width)
        return top_scored(
            hits.ids, query.with_bonus(hits.scores, hits.tags, scale), limit
        )
    pool = pool_rows(store, query.vector, limit, candidates, query.tag_width)
    return top_scored(pool.ids, score_rows(store, query, pool), limit)


def item_terms(store: Store, query: Query, item_ids: Sequence[int]) -> dict[int, str]:
    """Each item's score for `query` (a description or a composed query)
    spelt out term by term (`describe_rows`), from its stored vector and
    tags: what `beet clap --explain` prints under a result."""
    if not item_ids:
        return {}
    rows = store.rows(item_ids, query.tag_width)
    scale = library_scale(store, query.tag_width)
    lines = query.describe_rows(rows.vectors, rows.tags, scale)
    return dict(zip(rows.ids.tolist(), lines, strict=True))


def rank_albums(
    store: Store,
    bundle: Bundle,
    query: Query,
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
    scored = album_scores(
        store, query, nearest[: max(limit * ALBUM_POOL_FACTOR, MIN_ALBUMS)]
    )
    return top_scored(
        np.fromiter(scored.keys(), np.int64, len(scored)),
        np.fromiter(scored.values(), np.float32, len(scored)),
        limit,
    )


def album_scores(
    store: Store, query: Query, album_ids: Collection[int]
) -> dict[int, float]:
    """Album id -> the mean score of its indexed tracks, for those of
    `album_ids` that have one: the score `-a` ranks albums by, and the
    `$clap_score` of an album that `clap:TEXT` matches."""
    import numpy as np

    members = store.album_members(album_ids)
    rows = store.rows((i for m in members.values() for i in m), query.tag_width)
    scores = score_rows(store, query, rows)
    score_of = dict(zip(rows.ids.tolist(), scores.tolist(), strict=True))
    result = {}
    for album_id, item_ids in members.items():
        found = [score_of[i] for i in item_ids if i in score_of]
        if found:
            result[album_id] = float(np.mean(found))
    return result


def rank_similar(
    store: Store,
    bundle: Bundle,
    seeds: Sequence[int],
    limit: int,
    candidates: Collection[int] | None = None,
    name_of: Callable[[int], str] = str,
) -> list[tuple[int, float]]:
    """Items that sound like the seeds (the seeds excluded): cosine to the
    normalised mean of the seeds' vectors. `name_of` names a seed that
    failed to index in the one-line error."""
    from .model import l2_normalize
    from .results import not_indexed

    check_index(store, bundle)
    if not seeds:
        raise SearchError("no items match the query: nothing to compare with")
    seed_ids, seed_mat = store.vectors(seeds)
    if not len(seed_ids):
        raise SearchError(
            not_indexed(
                "the one matched track",
                f"none of the {len(seeds)} matched tracks",
                len(seeds),
                store.failures(seeds),
                name_of,
            )
        )
    centroid = l2_normalize(seed_mat.mean(axis=0, keepdims=True))[0]
    if limit <= 0:
        return []
    return _nearest(store, centroid, limit, candidates, exclude=set(seeds))
