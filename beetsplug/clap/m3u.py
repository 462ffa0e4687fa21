"""M3U files: playlist paths and #EXTINF lines, atomic writes, stale removal.

The file conventions follow beets' smartplaylist plugin (relative or absolute
paths, forward slashes, an optional prefix); what goes into a playlist is the
caller's business (playlists.py).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .items import track_label

__all__ = [
    "AUTO_PREFIX",
    "Playlist",
    "PlaylistEntry",
    "PlaylistError",
    "PlaylistWriteError",
    "automatic_files",
    "remove_stale",
    "slugify",
    "write_m3u",
    "write_playlists",
]

AUTO_PREFIX = "clap-auto-"
"""File names of automatic playlists start with this, so that a later run can
remove the lists of clusters that no longer exist without touching anyone
else's files."""


class PlaylistError(Exception):
    """Any playlist problem the command reports as one line (catch this one)."""


class PlaylistWriteError(PlaylistError, OSError):
    """A playlist file that could not be written (the old one is intact)."""


class PlaylistEntry(NamedTuple):
    """One line of a playlist: a file and what #EXTINF says about it."""

    path: bytes | str
    length: float | None  # seconds
    artist: str
    title: str


@dataclass(frozen=True)
class Playlist:
    """A playlist to write: item ids in playing order."""

    name: str
    filename: str
    item_ids: list[int] = field(default_factory=list)
    kind: str = "auto"  # "auto" or "prompt"
    query: str | None = None


# --------------------------------------------------------------------------
# M3U


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _m3u_path(path: bytes | str, relative_to: bytes | None, prefix: bytes) -> bytes:
    """The path as beets' smartplaylist writes it: relative, forward slashes."""
    raw = os.fsencode(path)
    if relative_to is not None:
        # On another Windows drive there is no relative path: keep it absolute.
        with contextlib.suppress(ValueError):
            raw = os.path.relpath(raw, relative_to)
    if os.sep != "/":
        raw = raw.replace(os.sep.encode(), b"/")
    return prefix + raw


def _extinf(entry: PlaylistEntry) -> bytes:
    length = entry.length
    seconds = int(length) if length is not None and math.isfinite(length) else -1
    label = track_label(entry.artist, entry.title, entry.path)
    label = re.sub(r"[\r\n]+", " ", label)  # a newline would end the line early
    return f"#EXTINF:{seconds},{label}\n".encode()


def write_m3u(
    path: Path | str | bytes,
    entries: Iterable[PlaylistEntry | tuple[Any, ...]],
    *,
    extended: bool = False,
    relative_to: Path | str | bytes | None = None,
    prefix: str = "",
) -> int:
    """Write a playlist atomically and return how many entries it holds.

    The lines are written to a temporary file beside the playlist, synced, then
    renamed over it (`os.replace`), so a crash or an exception from `entries`
    leaves either the old playlist or the new one, never half of one. Paths
    follow beets' smartplaylist plugin: relative to `relative_to` when given,
    forward slashes, `prefix` prepended (e.g. a URL), and with `extended`
    an ``#EXTM3U`` header and ``#EXTINF:<seconds>,<artist> - <title>`` lines
    (the file's name for a track without a title, no " - " without an artist).
    """
    target = Path(os.fsdecode(path)).expanduser()
    # The folder is the caller's to make (write_playlists makes playlist_dir):
    # a mistyped --m3u path must not create folders anywhere.
    rel = None
    if relative_to is not None:
        rel = os.fsencode(os.path.abspath(os.path.expanduser(os.fsdecode(relative_to))))
    mode = (target.stat().st_mode & 0o777) if target.exists() else (0o666 & ~_umask())
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    count = 0
    try:
        with os.fdopen(fd, "wb") as out:
            if extended:
                out.write(b"#EXTM3U\n")
            for item in entries:
                entry = PlaylistEntry(*item)
                if extended:
                    out.write(_extinf(entry))
                out.write(_m3u_path(entry.path, rel, prefix.encode()) + b"\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, mode)  # mkstemp makes 0600; players need to read it
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return count


def write_playlists(
    playlists: Sequence[Playlist],
    directory: Path | str | bytes,
    entries_for: Callable[[Sequence[int]], Mapping[int, PlaylistEntry]],
    *,
    extended: bool = False,
    relative_to: Path | str | bytes | None = None,
    prefix: str = "",
    pretend: bool = False,
) -> list[tuple[Path, int]]:
    """Write each playlist into `directory`; return (file, entries) pairs.

    `entries_for(ids)` gives the lines of all the playlists' items at once,
    by id, asked once (an item that has gone has none and is left out). With
    `pretend` nothing is written and the pairs say what would be. A folder
    that cannot be created or a file that cannot be written raises
    PlaylistWriteError (one line; the playlists written before it stay).
    """
    directory = Path(os.fsdecode(directory)).expanduser()
    if playlists:
        # Once, here: a folder that cannot be made is named as the problem,
        # not the first playlist that would have gone into it. A dry run
        # foresees it: it says what the real run would do.
        try:
            if pretend:
                _check_folder(directory)
            else:
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PlaylistWriteError(
                f"cannot create playlist folder {directory}: {exc.strerror or exc}"
            ) from exc
    ids = [i for playlist in playlists for i in playlist.item_ids]
    table = entries_for(list(dict.fromkeys(ids)))
    written = []
    for playlist in playlists:
        entries = [table[i] for i in playlist.item_ids if i in table]
        target = directory / playlist.filename
        if not pretend:
            try:
                write_m3u(
                    target,
                    entries,
                    extended=extended,
                    relative_to=relative_to,
                    prefix=prefix,
                )
            except OSError as exc:
                raise PlaylistWriteError(
                    f"cannot write playlist {target}: {exc.strerror or exc}"
                ) from exc
        written.append((target, len(entries)))
    return written


def _check_folder(directory: Path) -> None:
    """Raise the OSError `directory.mkdir(parents=True, exist_ok=True)`
    would raise, making nothing: a file in its place or above it, or a
    nearest existing folder this user may not write into."""
    here = directory
    while not here.exists():
        if here.parent == here:
            return
        here = here.parent
    if here != directory and not here.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    if here == directory and not here.is_dir():
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))
    if here != directory and not os.access(here, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


def remove_stale(
    directory: Path | str | bytes, keep: Iterable[str], prefix: str = AUTO_PREFIX
) -> list[Path]:
    """Delete `prefix*.m3u` files in `directory` whose names are not in `keep`.

    Automatic playlists are renamed when the library's clusters change; this
    removes the lists of clusters that are gone, and only files this module
    named (the prefix), never a user's own playlists. A file that cannot be
    removed raises PlaylistWriteError.
    """
    keep = set(keep)
    removed = []
    for path in automatic_files(directory, prefix):
        if path.name not in keep:
            try:
                path.unlink()
            except OSError as exc:
                raise PlaylistWriteError(
                    f"cannot remove stale playlist {path}: {exc.strerror or exc}"
                ) from exc
            removed.append(path)
    return removed


def automatic_files(
    directory: Path | str | bytes, prefix: str = AUTO_PREFIX
) -> list[Path]:
    """The `prefix*.m3u` files in `directory` (none when it is not a folder)."""
    directory = Path(os.fsdecode(directory)).expanduser()
    if not directory.is_dir():
        return []
    found = directory.glob(f"{_glob_escape(prefix)}*.m3u")
    return sorted(path for path in found if path.is_file())


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def slugify(name: str) -> str:
    """A file-name-safe form of `name`: "R&B, no drums" -> "r-and-b-no-drums"."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = text.lower().replace("&", " and ")
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text or "playlist"
