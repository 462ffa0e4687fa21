"""Library items as the plugin opens and names them: absolute file paths, track names.

beets >= 2.14 stores the path of a file inside the library's `directory`
relative to it, and makes it absolute only while its music_dir context
(`beets.context`) holds that directory. `Library()` sets the context on the
thread that opens the library, the command's own; a thread started later
(clap-web answers each request on one) begins without it, and there
`item.path` is the stored relative path, which the process would resolve
against its working folder. So every place the plugin opens or writes an
item's file takes the path from `item_path`, on whatever thread it runs.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from contextlib import AbstractContextManager

    from beets.library import Item, Library

__all__ = [
    "db_paths",
    "file_name",
    "item_path",
    "item_values",
    "library_context",
    "track_label",
]


def item_path(lib: Library, item: Item) -> str:
    """The absolute path of `item`'s file in `lib`, whichever thread asks
    (a str: os.fsdecode of beets' bytes, so it round-trips)."""
    return db_paths(lib, [item.path])[0]


def library_context(lib: Library) -> AbstractContextManager[Any]:
    """beets' music_dir context for `lib` (a no-op before beets 2.14): what
    `item_path` reads an item's path within."""
    try:
        from beets.context import music_dir
    except ImportError:  # beets before 2.14 stores absolute paths only
        return nullcontext()
    return music_dir(lib.directory)


def item_values(
    lib: Library, rows: Iterable[Sequence[Any]], columns: Sequence[str]
) -> list[tuple]:
    """Rows of items' `columns` as the database holds them, converted as an
    Item of `lib` converts them when read (`item[column]`), within
    `library_context` as `item_path` reads a path."""
    from beets.library import Item

    convert = [Item._type(column).from_sql for column in columns]
    with library_context(lib):
        return [
            tuple(to(value) for to, value in zip(convert, row, strict=True))
            for row in rows
        ]


def db_paths(lib: Library, paths: Iterable[bytes]) -> list[str]:
    """`item_path` for many items at once, from their `path` values (as
    `item_values` gives them, or `item.path`): the same strs."""
    try:
        from beets.dbcore.pathutils import expand_path_from_db
    except ImportError:  # beets before 2.14 stores absolute paths only
        return [os.fsdecode(path) for path in paths]
    # Read inside the context: a path beets has not yet converted comes out
    # absolute, and one it already converted without the context (relative)
    # is expanded the way beets expands it.
    with library_context(lib):
        return [os.fsdecode(expand_path_from_db(path)) for path in paths]


def file_name(path: bytes | str | None) -> str:
    """The last part of a path (no folders), for a track without a title."""
    if not path:
        return ""
    return os.path.basename(os.fsdecode(path))


def item_artist(item: Any) -> str:
    """The artist a track is shown with: its own, else its album artist
    (as beets' `$artist` reads it for a track without one)."""
    return item.get("artist") or item.get("albumartist") or ""


def track_label(
    artist: str | None, title: str | None, path: bytes | str | None, sep: str = " - "
) -> str:
    """How a track is named in text: "artist - title"; without a title, its
    file's name; without an artist, the title (or file name) alone. Empty
    only when the track has none of the three."""
    name = title or file_name(path)
    if artist and name:
        return f"{artist}{sep}{name}"
    return name or artist or ""
