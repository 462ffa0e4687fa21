"""What a clip's labels make true: present terms (with implied ones) and true negations.

Shared by the corpus writer (the `absent` column, negations in captions) and
the benchmark (which clips violate "A without B"), so both judge presence the
same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from trainer import vocab

# A term present implies these are present too: a violin is a string
# instrument, a string section contains violins and cellos, a distorted
# guitar is an electric guitar, a choir is vocals.
IMPLIES: dict[str, frozenset[str]] = {
    "violin": frozenset({"strings"}),
    "cello": frozenset({"strings"}),
    "strings": frozenset({"violin", "cello"}),
    "trumpet": frozenset({"brass"}),
    "brass": frozenset({"trumpet"}),
    "distorted guitar": frozenset({"electric guitar"}),
    "choir": frozenset({"vocals"}),
}


def present_terms(tags: Iterable[str]) -> set[str]:
    """The clip's tags plus every term they imply (one step is enough: no chains)."""
    present = set(tags)
    for tag in list(present):
        present |= IMPLIES.get(tag, frozenset())
    return present


def absent_terms(tags: Iterable[str], style: str | None = None) -> list[str]:
    """Negatable vocabulary terms that are truly absent from a clip with these tags.

    Other styles count as absent only when the clip's own style is known.
    """
    present = present_terms(tags)
    candidates = [t for t in (*vocab.INSTRUMENTS, *vocab.PRESENCE) if t not in present]
    if style is not None:
        candidates += [s for s in vocab.STYLES if s != style]
    return candidates
