"""How the plugin names a library item in text: "artist - title", else its file."""

from __future__ import annotations

import os

__all__ = ["file_name", "track_label"]


def file_name(path: bytes | str | None) -> str:
    """The last part of a path (no folders), for a track without a title."""
    if not path:
        return ""
    return os.path.basename(os.fsdecode(path))


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
