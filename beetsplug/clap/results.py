"""What the search commands say: result lines and scores, track names, empty results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beets.dbcore.types import NullFloat

from .items import item_artist, track_label

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

    from beets.library import Library

    from .store import Store

RUN_INDEX = "run `beet clap-index`"
# The field of a search's scores ($clap_score): computed per command, never
# stored, so only the command that ranked can show it.
SCORE_FIELD = "clap_score"
SCORE_DIGITS = 4


class ScoreType(NullFloat):
    """The type of `$clap_score` (item_types, album_types): always
    SCORE_DIGITS decimals, so a column of scores lines up (0.4900, not
    0.49), and empty for an item the command did not rank (NullFloat would
    print 0.0000). Formatting only: the value is the score itself."""

    def __init__(self) -> None:
        super().__init__(SCORE_DIGITS)

    def format(self, value: float | None) -> str:
        return "" if value is None else super().format(value)


def counted(count: int, noun: str) -> str:
    """A count and its noun, singular for one: "1 track", "2 tracks"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# Before a result's note (ranked_lines): set off from the result lines,
# whatever the user's format.
NOTE_INDENT = "    "


def ranked_lines(
    ranked: Sequence[tuple[int, float]],
    get: Callable[[int], Any],
    show_score: bool,
    notes: Mapping[int, str] | None = None,
) -> Iterator[str]:
    """(id, score) results in the user's format, best first; ids no longer
    in the library (removed since they were embedded) are left out. A
    result's note (`notes`, by id: its score's terms for --explain) follows
    it on a line of its own, indented."""
    for obj_id, score in ranked:
        obj = get(obj_id)
        if obj is None:
            continue
        line = format(obj)
        yield f"{score:.{SCORE_DIGITS}f} {line}" if show_score else line
        if notes and obj_id in notes:
            yield f"{NOTE_INDENT}{notes[obj_id]}"


def not_indexed(
    one: str,
    none_of: str,
    count: int,
    failures: Mapping[int, str],
    name_of: Callable[[int], str] = str,
) -> str:
    """Why `count` tracks have no vector, in one line: `one` names the track
    when there is one ("the one track matching Q"), `none_of` the tracks
    otherwise ("none of the 3 tracks matching Q"). `failures` holds the
    recorded reason of those whose embedding failed (Store.failures), the
    first named by `name_of`: clap-index would only fail on them again until
    their file is fixed, so they are not sent there; the others are."""
    if count == 1:
        if failures:
            (reason,) = failures.values()
            return f"{one} failed to index: {reason}"
        return f"{one} is not indexed yet: {RUN_INDEX}"
    if not failures:
        return f"{none_of} is indexed yet: {RUN_INDEX}"
    item_id, reason = next(iter(failures.items()))
    failed = len(failures)
    which = f"{name_of(item_id)}: {reason}" + (
        f"; and {failed - 1} more" if failed > 1 else ""
    )
    if failed >= count:
        every = "both" if count == 2 else f"all {count}"
        return f"{none_of} is indexed: {every} failed to index ({which})"
    return (
        f"{none_of} is indexed yet: {failed} failed to index ({which}); "
        f"{RUN_INDEX} for the other {count - failed}"
    )


def nothing_indexed(
    count: int, failures: Mapping[int, str], name_of: Callable[[int], str]
) -> str:
    """Why the index holds no vector though clap-index has run: `failures`
    (the recorded reasons, as not_indexed takes them) among the library's
    `count` tracks. When every track failed, running clap-index again only
    fails again: their files need fixing first."""
    first = next(iter(failures))
    line = not_indexed(
        f"the one track in the library ({name_of(first)})",
        f"none of the {count} tracks in the library",
        count,
        failures,
        name_of,
    )
    if len(failures) < count:
        return line
    files = "its file" if count == 1 else "their files"
    return f"{line}; fix or replace {files}, then {RUN_INDEX}"


def nothing_found(
    query: Sequence[str],
    matched: Collection[int] | None,
    kind: str,
    description: str | None = None,
    failures: Mapping[int, str] | None = None,
    name_of: Callable[[int], str] = str,
) -> str:
    """Why a search printed nothing, in one line (`kind`: tracks or albums).
    With the search's `description`, a query of bare words that matches
    nothing is said to be perhaps the rest of it typed without quotes
    (`beet clap jazz without vocals` searches "jazz" among the tracks that
    match "without vocals"). `failures` and `name_of`: tracks matched that
    failed to index, as not_indexed takes them."""
    text = " ".join(query)
    if matched is None:
        return "none of the indexed tracks is in the library: run `beet clap-index`"
    if not matched:
        if description and query and not any(":" in term for term in query):
            whole = f"{description} {text}"
            return (
                f"no {kind} match {text} (the words after the description are "
                f'a beets query; to search for "{whole}", put it in quotes)'
            )
        return f"no {kind} match {text}"
    if kind == "tracks":
        return not_indexed(
            f"the one track matching {text}",
            f"none of the {len(matched)} tracks matching {text}",
            len(matched),
            failures or {},
            name_of,
        )
    if len(matched) == 1:
        return f"the one album matching {text} has no indexed track yet: {RUN_INDEX}"
    return (
        f"none of the {len(matched)} albums matching {text} has an indexed "
        f"track yet: {RUN_INDEX}"
    )


def tracks_not_found(
    lib: Library,
    store: Store,
    query: Sequence[str],
    matched: Collection[int] | None,
    description: str | None = None,
) -> str:
    """nothing_found for tracks, with the recorded failures of those matched
    read from `store` and the failed ones named as track_name names them."""
    failures = store.failures(matched) if matched else {}
    return nothing_found(
        query,
        matched,
        "tracks",
        description,
        failures,
        lambda item_id: track_name(lib, item_id),
    )


def track_name(lib: Library, item_id: int) -> str:
    """ "artist - title" of an item, for --explain and error lines: its
    file's name for a track without a title, no " - " without an artist
    (items.track_label); "item ID" for an item that is not in `lib`."""
    item = lib.get_item(item_id)
    if item is None:
        return f"item {item_id}"
    return track_label(item_artist(item), item.title, item.path) or f"item {item_id}"
