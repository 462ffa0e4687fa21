"""The library's playlists: its items, index and model wired to the M3U writers."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .items import item_artist, item_path
from .m3u import PlaylistEntry, PlaylistError, write_m3u

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from beets.library import Library

    from .model import Bundle
    from .playlists import PlaylistUpdate
    from .scoring import TextQuery
    from .store import Store


def _entry(lib: Library, item_id: int) -> PlaylistEntry | None:
    """An item's playlist line; None when it left the library."""
    item = lib.get_item(item_id)
    if item is None:
        return None
    return PlaylistEntry(
        item_path(lib, item), item.length, item_artist(item), item.title
    )


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
        lambda item_id: _entry(lib, item_id),
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
    entries = [e for e in (_entry(lib, i) for i in item_ids) if e is not None]
    try:
        if not os.path.isabs(target) and settings["playlist_dir"]:
            # The configured playlist folder is made as clap-playlists makes
            # it; any other file's folder must exist (as for clap-map -o).
            os.makedirs(settings["playlist_dir"], exist_ok=True)
            target = os.path.join(settings["playlist_dir"], target)
        count = write_m3u(
            target,
            entries,
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
