"""The library's playlists: its items, index and model wired to the M3U writers."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .items import db_paths, item_artist, item_values
from .m3u import PlaylistEntry, PlaylistError, write_m3u

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from beets.library import Library

    from .model import Bundle
    from .playlists import PlaylistUpdate
    from .scoring import TextQuery
    from .store import Store


# Ids per SQL query: under SQLite's oldest limit on bound parameters (999).
_CHUNK = 900


def entries(
    lib: Library, item_ids: Iterable[int], *, extended: bool = True, paths: bool = True
) -> dict[int, PlaylistEntry]:
    """The playlist lines of the items of `item_ids` still in the library,
    by id, read in a few SQL queries (a `lib.get_item` per track costs far
    more: docs/benchmarks.md). What an Item gives (items.item_path,
    item_artist, its length and title) for `extended` lines; without
    `extended` only the path (write_m3u reads no more); without `paths`
    nothing but which items exist (a --pretend run only counts them)."""
    columns = ["id"]
    if paths:
        columns.append("path")
        if extended:
            columns += ["length", "artist", "albumartist", "title"]
    wanted = list(dict.fromkeys(int(i) for i in item_ids))
    rows = []
    with lib.transaction() as tx:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows += tx.query(
                f"SELECT {', '.join(columns)} FROM items "
                f"WHERE id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
    values = item_values(lib, rows, columns)
    if not paths:
        return {row[0]: PlaylistEntry(b"", None, "", "") for row in values}
    found = db_paths(lib, (row[1] for row in values))
    if not extended:
        return {
            row[0]: PlaylistEntry(path, None, "", "")
            for row, path in zip(values, found, strict=True)
        }
    return {
        item_id: PlaylistEntry(
            path,
            length,
            item_artist({"artist": artist, "albumartist": albumartist}),
            title,
        )
        for (item_id, _, length, artist, albumartist, title), path in zip(
            values, found, strict=True
        )
    }


def update(
    lib: Library,
    store: Store,
    bundle: Bundle,
    embed: Callable[[str], TextQuery],
    prompts: Any,
    settings: Mapping[str, Any],
    *,
    auto: bool,
    clusters: int,
    pretend: bool = False,
) -> PlaylistUpdate:
    """Write the prompt playlists of `prompts` (clap.playlists) and, with
    `auto`, the library's cluster playlists (playlists.update_playlists)."""
    from . import playlists, search

    def rank(text: str, beets_filter: str | None, size: int) -> list:
        tq = embed(text)
        candidates = search.matching_ids(lib, beets_filter)
        return search.rank_items(store, bundle, tq, size, candidates)

    def library() -> tuple[Any, Any]:
        search.check_index(store, bundle)
        return store.all_vectors(bundle.identity)

    def item_tags(ids: Any) -> Any:
        import numpy as np

        rows = store.tags(int(i) for i in ids)
        found = [rows.get(int(i)) for i in ids]
        width = (len(bundle.tag_names),)
        if any(row is None or row.shape != width for row in found):
            return None  # some items lack tags: the text tower names
        return np.stack(found)  # type: ignore[arg-type]

    return playlists.update_playlists(
        settings["playlist_dir"] or ".",
        lambda ids: entries(lib, ids, extended=settings["extended"], paths=not pretend),
        prompts=prompts,
        rank=rank,
        library=library if auto else None,
        embed_text=bundle.embed_text,
        tags=item_tags if bundle.has_tags else None,
        tag_meanings=bundle.tag_meanings if bundle.has_tags else (),
        clusters=clusters or None,
        min_size=settings["cluster_min_size"],
        auto_size=settings["auto_playlist_size"] or None,
        default_size=settings["playlist_size"],
        check_query=search.description_problem,
        check_filter=lambda beets_filter: search.query_problem(lib, beets_filter),
        extended=settings["extended"],
        relative_to=settings["relative_to"],
        prefix=settings["playlist_prefix"],
        pretend=pretend,
    )


def write_items(
    lib: Library,
    filename: str,
    item_ids: Sequence[int],
    settings: Mapping[str, Any],
) -> tuple[str, int]:
    """Items as an M3U file, written as clap-playlists writes one (a
    relative `filename` goes into clap.playlist_dir when that is set);
    returns (the file, its track count). PlaylistError names the file."""
    target = os.path.expanduser(filename)
    table = entries(lib, item_ids, extended=settings["extended"])
    lines = [table[i] for i in item_ids if i in table]
    try:
        if not os.path.isabs(target) and settings["playlist_dir"]:
            # The configured playlist folder is made as clap-playlists makes
            # it; any other file's folder must exist (as for clap-map -o).
            os.makedirs(settings["playlist_dir"], exist_ok=True)
            target = os.path.join(settings["playlist_dir"], target)
        count = write_m3u(
            target,
            lines,
            extended=settings["extended"],
            relative_to=settings["relative_to"],
            prefix=settings["playlist_prefix"],
        )
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise PlaylistError(f"cannot write {target}: {why}") from exc
    except PlaylistError as exc:
        raise PlaylistError(f"cannot write {target}: {exc}") from exc
    return target, count
