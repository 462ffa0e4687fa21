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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beets.library import Item, Library

__all__ = ["file_name", "item_path", "track_label"]


def item_path(lib: Library, item: Item) -> str:
    """The absolute path of `item`'s file in `lib`, whichever thread asks
    (a str: os.fsdecode of beets' bytes, so it round-trips)."""
    try:
        from beets.context import music_dir
        from beets.dbcore.pathutils import expand_path_from_db
    except ImportError:  # beets before 2.14 stores absolute paths only
        return os.fsdecode(item.path)
    # Read inside the context: a path beets has not yet converted for this
    # item comes out absolute, and one it already converted without the
    # context (relative) is expanded the way beets expands it.
    with music_dir(lib.directory):
        return os.fsdecode(expand_path_from_db(item.path))


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
