"""What a bundle's tags mean: as fixed in its manifest (checked), or read from names.

Export fixes each tag's meaning in the manifest (`audio.tag_meanings`,
aligned with `audio.tags`): the lexicon concept it names, or None, and the
concepts it says are absent. Bundles made before that carry only names,
read here the same way export reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .taglinks import TagMeaning

__all__ = ["from_manifest", "problem", "read_tag_meanings", "tag_label"]


def tag_label(name: str) -> str:
    """A tag name as its tagger labels it, without the prefix that keeps two
    taggers' names apart ("msd:80s" -> "80s")."""
    prefix, sep, label = name.partition(":")
    return label if sep and prefix.isalnum() and label.strip() else name


def read_tag_meanings(names: Sequence[str]) -> tuple[TagMeaning, ...]:
    """What each tag means, read from its label by the lexicon and the query
    parser (taglinks.tag_meanings): what export writes into the manifest."""
    from .taglinks import tag_meanings

    return tag_meanings(tuple(tag_label(n) for n in names))


def problem(meanings: Any, n_tags: int) -> str | None:
    """What is wrong with a manifest's `audio.tag_meanings` (None: nothing,
    or absent): one {"concept": word or null, "absent": [words]} per tag."""
    if meanings is None:
        return None
    if not isinstance(meanings, list) or len(meanings) != n_tags:
        return f"audio.tag_meanings must list one meaning for each of the {n_tags} tags"
    for i, entry in enumerate(meanings):
        concept = entry.get("concept") if isinstance(entry, dict) else None
        absent = entry.get("absent") if isinstance(entry, dict) else None
        if not (
            isinstance(entry, dict)
            and set(entry) == {"concept", "absent"}
            and (concept is None or (isinstance(concept, str) and concept != ""))
            and isinstance(absent, list)
            and all(isinstance(a, str) and a for a in absent)
        ):
            return (
                f"audio.tag_meanings[{i}] must be "
                '{"concept": a word or null, "absent": [words]}'
            )
    return None


def from_manifest(
    meanings: list[dict[str, Any]] | None, names: Sequence[str]
) -> tuple[TagMeaning, ...]:
    """The meanings a checked manifest fixes, else those read from `names`."""
    from .taglinks import TagMeaning

    if meanings is None:
        return read_tag_meanings(names)
    return tuple(TagMeaning(m["concept"], tuple(m["absent"])) for m in meanings)
