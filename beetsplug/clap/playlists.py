"""Prompt and automatic playlists: the config checked, ranked or clustered, written.

Everything here takes plain values (paths, ids, vectors, callables) so that the
`beet clap-playlists` command in __init__.py only has to fetch items and
report; numpy is imported inside the functions that need it.

Two kinds of playlist:

* prompt playlists come from the config (`clap.playlists`): a query text,
  an optional beets filter and a size; ranking them needs the search, which
  the caller passes in as `rank(query, filter) -> [(item_id, score), ...]`;
* automatic playlists cluster the library's embeddings and name each cluster
  (clusters.py); the files are written by m3u.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .clusters import (
    DESCRIPTORS,
    Descriptors,
    cluster_embeddings,
    name_clusters,
    read_cluster_tags,
)
from .m3u import (
    AUTO_PREFIX,
    Playlist,
    PlaylistEntry,
    PlaylistError,
    automatic_files,
    remove_stale,
    slugify,
    write_playlists,
)
from .model import l2_normalize

if TYPE_CHECKING:
    import numpy as np

    from .taglinks import TagMeaning

__all__ = [
    "PlaylistConfigError",
    "PlaylistEntry",
    "PlaylistUpdate",
    "PromptSpec",
    "automatic_playlists",
    "prompt_playlists",
    "update_playlists",
    "validate_playlists",
]

DEFAULT_SIZE = 50

Rank = Callable[[str, str | None, int], Sequence[tuple[int, float]]]
"""The search: rank(query, beets filter or None, limit) -> [(item_id, score)]."""


def _playlist_filename(name: str) -> str | None:
    """The file a prompt playlist called `name` is written to, or None if unusable.

    Like smartplaylist, the user's name is the file name (".m3u" added when
    missing); only characters that would leave the directory are replaced.
    """
    text = re.sub(r"[/\\\x00-\x1f]", "_", name).strip().lstrip(".")
    if not text:
        return None
    return text if text.lower().endswith((".m3u", ".m3u8")) else f"{text}.m3u"


class PlaylistConfigError(PlaylistError, ValueError):
    """A `clap.playlists` entry that cannot be used; the message is one line."""


class PromptSpec(NamedTuple):
    name: str
    query: str
    filter: str | None
    size: int
    filename: str


_KEYS = ("name", "query", "filter", "size")


def _given(value: Any) -> str:
    """A config value in a one-line error, as the settings' errors show
    values (settings.py), but a mapping or list by what it is: what YAML
    read, not the Python type confuse made of it."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def _required_text(entry: Mapping[str, Any], key: str, where: str) -> str:
    """`entry[key]` when it is a non-empty string; else PlaylistConfigError."""
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PlaylistConfigError(
            f"{where}: missing {key!r}"
            if value is None
            else f"{where}: {key!r} must be a non-empty string, not {value!r}"
        )
    return value


def validate_playlists(
    entries: Any,
    *,
    default_size: int = DEFAULT_SIZE,
    key: str = "clap.playlists",
    check_query: Callable[[str], str | None] | None = None,
    check_filter: Callable[[str], str | None] | None = None,
) -> list[PromptSpec]:
    """Check the `clap.playlists` config; PlaylistConfigError on the first
    problem. `check_query(query)` is the search's own check of a description
    and `check_filter(filter)` beets' check of a query (each its problem in
    one line, or None): run here, a description that cannot be searched or
    a filter beets refuses is reported with its playlist's name before any
    list is written."""
    if entries is None:
        return []
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        hint = ""
        if isinstance(entries, Mapping):  # one playlist's keys, or names as keys
            hint = " (start each playlist with `- name:`)"
        raise PlaylistConfigError(
            f"{key} must be a list of playlists (each a mapping with name and "
            f"query), not {_given(entries)}{hint}"
        )
    specs: list[PromptSpec] = []
    files: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]"
        if not isinstance(entry, Mapping):
            raise PlaylistConfigError(
                f"{where} must be a playlist (a mapping with name and query), "
                f"not {_given(entry)}"
            )
        unknown = [k for k in entry if k not in _KEYS]
        if unknown:
            raise PlaylistConfigError(
                f"{where}: unknown key {unknown[0]!r} (valid: {', '.join(_KEYS)})"
            )
        name = _required_text(entry, "name", where)
        where = f"{where} ({name})"
        query = _required_text(entry, "query", where)
        problem = check_query(query) if check_query is not None else None
        if problem is not None:
            raise PlaylistConfigError(f"{where}: {problem}")
        beets_filter = entry.get("filter")
        if beets_filter is not None and not isinstance(beets_filter, str):
            raise PlaylistConfigError(
                f"{where}: 'filter' must be a beets query string, not {beets_filter!r}"
            )
        if beets_filter and check_filter is not None:
            problem = check_filter(beets_filter)
            if problem is not None:
                raise PlaylistConfigError(f"{where}: {problem}")
        size = entry.get("size", default_size)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise PlaylistConfigError(
                f"{where}: 'size' must be a whole number >= 1, not {size!r}"
            )
        filename = _playlist_filename(name)
        if filename is None:
            raise PlaylistConfigError(f"{where}: 'name' is not usable as a file name")
        if filename in files:
            raise PlaylistConfigError(
                f"{where}: {files[filename]!r} already writes {filename}"
            )
        files[filename] = name
        specs.append(
            PromptSpec(name, query.strip(), beets_filter or None, size, filename)
        )
    return specs


def prompt_playlists(
    entries: Any,
    rank: Rank,
    *,
    default_size: int = DEFAULT_SIZE,
) -> list[Playlist]:
    """Playlists for the configured prompts, best matches first.

    `rank(query, filter, limit)` is the plugin's search: up to `limit`
    (item_id, score) pairs among the items matching the beets `filter` (all
    items when None). Entries are validated first, so a bad one fails before
    any search runs.
    """
    return _rank_prompts(validate_playlists(entries, default_size=default_size), rank)


def _rank_prompts(
    specs: Sequence[PromptSpec],
    rank: Rank,
) -> list[Playlist]:
    playlists = []
    for spec in specs:
        ranked = sorted(rank(spec.query, spec.filter, spec.size), key=lambda p: -p[1])
        ids = list(dict.fromkeys(int(item_id) for item_id, _score in ranked))
        playlists.append(
            Playlist(spec.name, spec.filename, ids[: spec.size], "prompt", spec.query)
        )
    return playlists


def automatic_playlists(
    ids: Sequence[int],
    vectors: np.ndarray,
    embed_text: Callable[[list[str]], np.ndarray],
    *,
    k: int | None = None,
    min_size: int = 5,
    size: int | None = None,
    seed: int = 0,
    vocabulary: Descriptors | None = None,
    prefix: str = AUTO_PREFIX,
    tags: np.ndarray | None = None,
    tag_meanings: Sequence[TagMeaning] = (),
) -> list[Playlist]:
    """Cluster the library and make a named playlist of each big-enough cluster.

    Tracks are ordered by closeness to their cluster's centre (the most typical
    first), clusters by size; clusters under `min_size` tracks are skipped and
    `size` caps a playlist's length. Same ids and vectors, same playlists.
    `tags` ([n_items, n_tags], rows as `ids`) and what each tag means name
    the clusters where they single something out (clusters.read_cluster_tags).
    """
    return _automatic(
        ids,
        vectors,
        embed_text,
        k=k,
        min_size=min_size,
        size=size,
        seed=seed,
        vocabulary=vocabulary,
        prefix=prefix,
        tags=tags,
        tag_meanings=tag_meanings,
    ).playlists


class _Clustered(NamedTuple):
    """Automatic playlists and, to say why there are none, the clusters
    they came from: how many, and the largest one's size."""

    playlists: list[Playlist]
    clusters: int
    largest: int


def _automatic(
    ids: Sequence[int],
    vectors: np.ndarray,
    embed_text: Callable[[list[str]], np.ndarray],
    *,
    k: int | None,
    min_size: int,
    size: int | None,
    seed: int = 0,
    vocabulary: Descriptors | None = None,
    prefix: str = AUTO_PREFIX,
    tags: np.ndarray | None = None,
    tag_meanings: Sequence[TagMeaning] = (),
) -> _Clustered:
    import numpy as np

    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
    if tags is not None and len(tags) != len(ids):
        raise ValueError(f"{len(ids)} ids but {len(tags)} rows of tags")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, not {min_size}")
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, not {size}")
    if len(ids) == 0:
        return _Clustered([], 0, 0)
    x = l2_normalize(np.asarray(vectors, dtype=np.float32))
    labels, centres = cluster_embeddings(x, k, seed=seed)
    counts = np.bincount(labels, minlength=centres.shape[0])
    members = []
    kept = []
    for c in range(centres.shape[0]):
        idx = np.flatnonzero(labels == c)
        if idx.size < min_size:
            continue
        closeness = x[idx] @ centres[c]
        members.append(idx[np.argsort(-closeness, kind="stable")])
        kept.append(c)
    formed = _Clustered([], int(centres.shape[0]), int(counts.max()))
    if not kept:
        return formed
    if vocabulary is None:
        vocabulary = DESCRIPTORS
    readings = None
    if tags is not None and tag_meanings:
        readings = read_cluster_tags(tags, members, tag_meanings, vocabulary.presence)
    names = name_clusters(
        centres[kept], embed_text, vocabulary, readings, [x[idx] for idx in members]
    )
    playlists = []
    for name, idx in zip(names, members, strict=True):
        item_ids = [int(ids[i]) for i in idx[:size]]
        playlists.append(
            Playlist(name, f"{prefix}{slugify(name)}.m3u", item_ids, "auto")
        )
    return formed._replace(playlists=playlists)


# --------------------------------------------------------------------------
# Everything `beet clap-playlists` does, minus beets itself
# --------------------------------------------------------------------------


class PlaylistUpdate(NamedTuple):
    """What an update wrote (or would write): playlists with file and length,
    the stale files it removed, and warnings (one line each) about lists
    that came out empty or were not made."""

    written: list[tuple[Playlist, Path, int]]
    removed: list[Path]
    warnings: list[str]


def _no_automatic(
    clustered: _Clustered, tracks: int, min_size: int, kept: int, directory: Path
) -> str:
    """Why no automatic playlist was made, and that the old ones stay."""
    if tracks == 0:
        why = "no track is indexed"
    elif tracks == 1:
        why = f"the one indexed track is fewer than cluster_min_size {min_size}"
    else:
        which = (
            "the one cluster"
            if clustered.clusters == 1
            else f"the largest of the {clustered.clusters} clusters"
        )
        why = (
            f"{which} of {tracks} tracks has {clustered.largest}, fewer than "
            f"cluster_min_size {min_size}"
        )
    line = f"no automatic playlist: {why}"
    if kept == 1:
        line += f"; the automatic playlist already in {directory} is kept"
    elif kept:
        line += f"; the {kept} automatic playlists already in {directory} are kept"
    return line


def _empty_prompt(spec: PromptSpec) -> str:
    """Why a prompt playlist has no tracks: its filter, as a rule."""
    if spec.filter is None:
        why = "no indexed track to rank"
    else:
        why = f"no indexed track matches its filter {spec.filter!r}"
    return f"playlist {spec.name}: {why}, so {spec.filename} has no tracks"


def update_playlists(
    directory: Path | str | bytes,
    entries_for: Callable[[Sequence[int]], Mapping[int, PlaylistEntry]],
    *,
    prompts: Any = None,
    rank: Rank | None = None,
    library: Callable[[], tuple[Sequence[int], np.ndarray]] | None = None,
    embed_text: Callable[[list[str]], np.ndarray] | None = None,
    tags: Callable[[Sequence[int]], np.ndarray | None] | None = None,
    tag_meanings: Sequence[TagMeaning] = (),
    clusters: int | None = None,
    min_size: int = 5,
    auto_size: int | None = None,
    default_size: int = DEFAULT_SIZE,
    check_query: Callable[[str], str | None] | None = None,
    check_filter: Callable[[str], str | None] | None = None,
    extended: bool = False,
    relative_to: Path | str | bytes | None = None,
    prefix: str = "",
    pretend: bool = False,
) -> PlaylistUpdate:
    """Build and write the prompt playlists and, with `library`, the automatic ones.

    `prompts` is the raw `clap.playlists` config (validated here, before any
    search), `rank` the search, `library()` the indexed (ids, vectors) in a
    stable order (sorted by id, so the same library gives the same clusters)
    and `embed_text` the bundle's text tower, `tags(ids)` their stored tag
    probabilities (None when not every item has them) and `tag_meanings`
    what each tag means (both for bundles with tags), `check_query` the search's
    check of a description and `check_filter` beets' check of a query
    (validate_playlists). Automatic playlists of clusters that no longer
    exist are removed unless `pretend`; when no cluster is big enough for
    one, the old ones stay and a warning says why. `entries_for`: the
    playlist lines of items by id, as write_playlists takes it.
    """
    specs = validate_playlists(
        prompts,
        default_size=default_size,
        check_query=check_query,
        check_filter=check_filter,
    )
    playlists: list[Playlist] = []
    if specs:
        if rank is None:
            raise ValueError("prompt playlists need a rank function")
        playlists += _rank_prompts(specs, rank)
    warnings: list[str] = []
    replace_auto = False  # whether the old automatic playlists give way
    if library is not None:
        if embed_text is None:
            raise ValueError("automatic playlists need a text encoder")
        ids, vectors = library()
        clustered = _automatic(
            ids,
            vectors,
            embed_text,
            k=clusters,
            min_size=min_size,
            size=auto_size,
            tags=tags(ids) if tags is not None and len(ids) else None,
            tag_meanings=tag_meanings,
        )
        auto = clustered.playlists
        replace_auto = bool(auto)
        if not auto:
            # A setting that leaves no cluster big enough (a --clusters
            # near the track count, a large cluster_min_size) says nothing
            # about the lists already written: keep them.
            folder = Path(os.fsdecode(directory)).expanduser()
            # A prompt playlist named clap-auto-... is the user's, not one of them.
            prompts_files = {spec.filename for spec in specs}
            kept = sum(p.name not in prompts_files for p in automatic_files(folder))
            warnings.append(_no_automatic(clustered, len(ids), min_size, kept, folder))
        clash = {p.filename for p in playlists} & {p.filename for p in auto}
        if clash:  # a prompt named like a cluster file: the user's list wins
            auto = [p for p in auto if p.filename not in clash]
        playlists += auto
    results = write_playlists(
        playlists,
        directory,
        entries_for,
        extended=extended,
        relative_to=relative_to,
        prefix=prefix,
        pretend=pretend,
    )
    written = [(p, path, n) for p, (path, n) in zip(playlists, results, strict=True)]
    by_file = {spec.filename: spec for spec in specs}
    empty = [
        _empty_prompt(by_file[p.filename])
        for p, _path, n in written
        if p.kind == "prompt" and n == 0
    ]
    removed: list[Path] = []
    if replace_auto and not pretend:
        # Every file just written is kept, a prompt's named like a cluster's too.
        removed = remove_stale(directory, {p.filename for p in playlists})
    return PlaylistUpdate(written, removed, empty + warnings)
