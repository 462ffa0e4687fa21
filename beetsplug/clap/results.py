"""What the search commands say: result lines and scores, track names, empty results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beets.dbcore.types import NullFloat

from .items import track_label

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Sequence

    from beets.library import Library


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


def ranked_lines(
    ranked: Sequence[tuple[int, float]],
    get: Callable[[int], Any],
    show_score: bool,
) -> Iterator[str]:
    """(id, score) results in the user's format, best first; ids no longer
    in the library (removed since they were embedded) are left out."""
    for obj_id, score in ranked:
        obj = get(obj_id)
        if obj is None:
            continue
        line = format(obj)
        yield f"{score:.3f} {line}" if show_score else line


def nothing_found(
    query: Sequence[str],
    matched: Collection[int] | None,
    kind: str,
    description: str | None = None,
) -> str:
    """Why a search printed nothing, in one line (`kind`: tracks or albums).
    With the search's `description`, a query of bare words that matches
    nothing is said to be perhaps the rest of it typed without quotes
    (`beet clap jazz without vocals` searches "jazz" among the tracks that
    match "without vocals")."""
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
    if len(matched) == 1:
        what = "is not indexed" if kind == "tracks" else "has no indexed track"
        return f"the one {kind[:-1]} matching {text} {what} yet: run `beet clap-index`"
    what = "is indexed" if kind == "tracks" else "has an indexed track"
    return (
        f"none of the {len(matched)} {kind} matching {text} {what} yet: "
        "run `beet clap-index`"
    )


def track_name(lib: Library, item_id: int) -> str:
    """ "artist - title" of an item, for --explain and error lines: its
    file's name for a track without a title, no " - " without an artist
    (items.track_label); "item ID" for an item that is not in `lib`."""
    item = lib.get_item(item_id)
    label = None if item is None else track_label(item.artist, item.title, item.path)
    return label or f"item {item_id}"
