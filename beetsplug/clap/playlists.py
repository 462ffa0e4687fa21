"""Smart playlists: M3U files, library clusters, and names for them.

Everything here takes plain values (paths, ids, vectors, callables) so that the
`beet clap-playlists` command in __init__.py only has to fetch items and
report; numpy is imported inside the functions that need it.

Two kinds of playlist:

* prompt playlists come from the config (`clap.playlists`): a query text,
  an optional beets filter and a size; ranking them needs the search, which
  the caller passes in as `rank(query, filter) -> [(item_id, score), ...]`;
* automatic playlists cluster the library's embeddings (spherical k-means)
  and name each cluster with the descriptors the text tower finds closest to
  its centre ("mellow piano, no drums").
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "AUTO_PREFIX",
    "DESCRIPTORS",
    "Descriptors",
    "Playlist",
    "PlaylistConfigError",
    "PlaylistEntry",
    "PlaylistError",
    "PlaylistUpdate",
    "PlaylistWriteError",
    "PromptSpec",
    "automatic_playlists",
    "choose_k",
    "cluster_embeddings",
    "name_clusters",
    "prompt_playlists",
    "remove_stale",
    "slugify",
    "update_playlists",
    "validate_playlists",
    "write_m3u",
    "write_playlists",
]

AUTO_PREFIX = "clap-auto-"
"""File names of automatic playlists start with this, so that a later run can
remove the lists of clusters that no longer exist without touching anyone
else's files."""

DEFAULT_SIZE = 50

Rank = Callable[[str, str | None, int], Sequence[tuple[int, float]]]
"""The search: rank(query, beets filter or None, limit) -> [(item_id, score)]."""
MIN_K, MAX_K = 2, 30


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
# --------------------------------------------------------------------------


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
    label = f"{entry.artist} - {entry.title}"
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
    an ``#EXTM3U`` header and ``#EXTINF:<seconds>,<artist> - <title>`` lines.
    """
    target = Path(os.fsdecode(path)).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
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
    entry_for: Callable[[int], PlaylistEntry | None],
    *,
    extended: bool = False,
    relative_to: Path | str | bytes | None = None,
    prefix: str = "",
    pretend: bool = False,
) -> list[tuple[Path, int]]:
    """Write each playlist into `directory`; return (file, entries) pairs.

    `entry_for(item_id)` gives the line for an item, or None for an item that
    has gone (it is left out). With `pretend` nothing is written and the
    pairs say what would be. A file that cannot be written raises
    PlaylistWriteError (one line; the playlists written before it stay).
    """
    directory = Path(os.fsdecode(directory)).expanduser()
    written = []
    for playlist in playlists:
        entries = [e for e in map(entry_for, playlist.item_ids) if e is not None]
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


def remove_stale(
    directory: Path | str | bytes, keep: Iterable[str], prefix: str = AUTO_PREFIX
) -> list[Path]:
    """Delete `prefix*.m3u` files in `directory` whose names are not in `keep`.

    Automatic playlists are renamed when the library's clusters change; this
    removes the lists of clusters that are gone, and only files this module
    named (the prefix), never a user's own playlists.
    """
    directory = Path(os.fsdecode(directory)).expanduser()
    keep = set(keep)
    removed = []
    if not directory.is_dir():
        return removed
    for path in sorted(directory.glob(f"{_glob_escape(prefix)}*.m3u")):
        if path.name not in keep and path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------


def slugify(name: str) -> str:
    """A file-name-safe form of `name`: "R&B, no drums" -> "r-and-b-no-drums"."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = text.lower().replace("&", " and ")
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text or "playlist"


def _playlist_filename(name: str) -> str | None:
    """The file a prompt playlist called `name` is written to, or None if unusable.

    Like smartplaylist, the user's name is the file name (".m3u" added when
    missing); only characters that would leave the directory are replaced.
    """
    text = re.sub(r"[/\\\x00-\x1f]", "_", name).strip().lstrip(".")
    if not text:
        return None
    return text if text.lower().endswith((".m3u", ".m3u8")) else f"{text}.m3u"


# --------------------------------------------------------------------------
# Prompt playlists
# --------------------------------------------------------------------------


class PlaylistConfigError(PlaylistError, ValueError):
    """A `clap.playlists` entry that cannot be used; the message is one line."""


class PromptSpec(NamedTuple):
    name: str
    query: str
    filter: str | None
    size: int
    filename: str


_KEYS = ("name", "query", "filter", "size")


def validate_playlists(
    entries: Any,
    *,
    default_size: int = DEFAULT_SIZE,
    key: str = "clap.playlists",
    check_query: Callable[[str], str | None] | None = None,
) -> list[PromptSpec]:
    """Check the `clap.playlists` config; PlaylistConfigError on the first
    problem. `check_query(query)` is the search's own check of a description
    (its problem in one line, or None): run here, a description that cannot
    be searched is reported with its playlist's name before any list is
    written."""
    if entries is None:
        return []
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise PlaylistConfigError(
            f"{key} must be a list of {{name, query, filter, size}} entries, "
            f"not {type(entries).__name__}"
        )
    specs: list[PromptSpec] = []
    files: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]"
        if not isinstance(entry, Mapping):
            raise PlaylistConfigError(
                f"{where}: expected a mapping with name and query, "
                f"not {type(entry).__name__}"
            )
        unknown = [k for k in entry if k not in _KEYS]
        if unknown:
            raise PlaylistConfigError(
                f"{where}: unknown key {unknown[0]!r} (valid: {', '.join(_KEYS)})"
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise PlaylistConfigError(
                f"{where}: missing 'name'"
                if name is None
                else f"{where}: 'name' must be a non-empty string, not {name!r}"
            )
        where = f"{where} ({name})"
        query = entry.get("query")
        if not isinstance(query, str) or not query.strip():
            raise PlaylistConfigError(
                f"{where}: missing 'query'"
                if query is None
                else f"{where}: 'query' must be a non-empty string, not {query!r}"
            )
        problem = check_query(query) if check_query is not None else None
        if problem is not None:
            raise PlaylistConfigError(f"{where}: {problem}")
        beets_filter = entry.get("filter")
        if beets_filter is not None and not isinstance(beets_filter, str):
            raise PlaylistConfigError(
                f"{where}: 'filter' must be a beets query string, not {beets_filter!r}"
            )
        size = entry.get("size", default_size)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise PlaylistConfigError(
                f"{where}: 'size' must be a whole number >= 1, not {size!r}"
            )
        filename = _playlist_filename(name)
        if filename is None:
            raise PlaylistConfigError(f"{where}: 'name' is not usable as a file name")
        if filename in files:
            raise PlaylistConfigError(
                f"{where}: {files[filename]!r} already writes {filename}"
            )
        files[filename] = name
        specs.append(
            PromptSpec(name, query.strip(), beets_filter or None, size, filename)
        )
    return specs


def prompt_playlists(
    entries: Any,
    rank: Rank,
    *,
    default_size: int = DEFAULT_SIZE,
) -> list[Playlist]:
    """Playlists for the configured prompts, best matches first.

    `rank(query, filter, limit)` is the plugin's search: up to `limit`
    (item_id, score) pairs among the items matching the beets `filter` (all
    items when None). Entries are validated first, so a bad one fails before
    any search runs.
    """
    return _rank_prompts(validate_playlists(entries, default_size=default_size), rank)


def _rank_prompts(
    specs: Sequence[PromptSpec],
    rank: Rank,
) -> list[Playlist]:
    playlists = []
    for spec in specs:
        ranked = sorted(rank(spec.query, spec.filter, spec.size), key=lambda p: -p[1])
        ids = list(dict.fromkeys(int(item_id) for item_id, _score in ranked))
        playlists.append(
            Playlist(spec.name, spec.filename, ids[: spec.size], "prompt", spec.query)
        )
    return playlists


# --------------------------------------------------------------------------
# Clustering
# --------------------------------------------------------------------------


def choose_k(n: int) -> int:
    """How many clusters for `n` tracks: round(sqrt(n / 2)) within [2, 30].

    The usual rule of thumb for k-means; it gives 2 lists for 10 tracks, 7 for
    100, 22 for 1000 and at most 30, a number a person can still browse.
    """
    if n < 1:
        raise ValueError("cannot cluster an empty library")
    return min(n, max(MIN_K, min(MAX_K, round(math.sqrt(n / 2)))))


def _normalise(x: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (as scikit-learn does it).

    For unit vectors the squared distance is 2 - 2 cos. Each new centre is the
    best of a few candidates drawn in proportion to it, which avoids the plain
    variant's habit of putting two seeds in one big cluster.
    """
    import numpy as np

    n = x.shape[0]
    trials = 2 + int(np.log(k))
    chosen = [int(rng.integers(n))]
    closest = np.maximum(2.0 - 2.0 * (x @ x[chosen[0]]).astype(np.float64), 0.0)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # every point coincides with a centre already
            break
        candidates = rng.choice(n, size=trials, p=closest / total)
        sims = (x @ x[candidates].T).T  # [trials, n]; x @ small is the fast order
        dists = np.maximum(2.0 - 2.0 * sims.astype(np.float64), 0.0)
        options = np.minimum(closest[None, :], dists)
        best = int(np.argmin(options.sum(axis=1)))
        chosen.append(int(candidates[best]))
        closest = options[best]
    return x[chosen].copy()


def _lloyd(
    x: np.ndarray, centres: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Spherical Lloyd iterations: (labels, centres, mean cosine to own centre)."""
    import numpy as np

    n, k = x.shape[0], centres.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(max_iter):
        sims = x @ centres.T
        new = sims.argmax(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        # Each cluster's sum as one matrix product with a one-hot [n, k]
        # (np.add.at is ~5x slower; x.T @ onehot is BLAS's fast layout).
        onehot = np.zeros((n, k), dtype=x.dtype)
        onehot[np.arange(n), labels] = 1.0
        sums = np.ascontiguousarray((x.T @ onehot).T)
        empty = np.flatnonzero(np.bincount(labels, minlength=k) == 0)
        if empty.size:
            # Reseed an empty cluster with the points their clusters fit worst.
            fit = sims[np.arange(n), labels]
            for c, point in zip(empty, np.argsort(fit, kind="stable"), strict=False):
                sums[c] = x[point]
        centres = _normalise(sums)
    sims = x @ centres.T
    labels = sims.argmax(axis=1)
    return labels, centres, float(sims[np.arange(n), labels].mean())


# Fit on at most this many tracks (a fixed-seed sample), then assign all:
# keeps `beet clap-playlists` to seconds on very large libraries.
MAX_FIT = 50_000


def cluster_embeddings(
    vectors: np.ndarray,
    k: int | None = None,
    seed: int = 0,
    max_iter: int = 100,
    n_init: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means: (labels [n], centres [k, D] L2-normalised).

    Cosine similarity is what the search ranks by, so clusters are formed by it
    too. Seeded greedy k-means++, best of `n_init` runs, makes it deterministic
    and robust; clusters are numbered by size (largest first, ties by their
    first member) so the same library gives the same labels. k is capped by
    the number of distinct vectors.
    """
    import numpy as np

    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"expected a non-empty [n, D] array of vectors, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or infinity")
    x = _normalise(x)
    n = x.shape[0]
    k = choose_k(n) if k is None else int(k)
    if k < 1:
        raise ValueError(f"number of clusters must be >= 1, not {k}")
    rng = np.random.default_rng(seed)
    fit = x if n <= MAX_FIT else x[np.sort(rng.choice(n, MAX_FIT, replace=False))]
    k = min(k, len(np.unique(fit, axis=0)))
    best: tuple[np.ndarray, float] | None = None
    for _ in range(max(1, n_init)):
        _labels, centres, score = _lloyd(fit, _kmeans_pp(fit, k, rng), max_iter)
        if best is None or score > best[1]:
            best = (centres, score)
    assert best is not None
    labels, centres, _score = _lloyd(x, best[0], 1 if fit is not x else 0)
    k = centres.shape[0]
    # Canonical numbering: by size, then by first member.
    counts = np.bincount(labels, minlength=k)
    first = np.array(
        [np.flatnonzero(labels == c)[0] if counts[c] else n for c in range(k)]
    )
    order = np.lexsort((first, -counts))
    order = order[counts[order] > 0]
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(order.size)
    return remap[labels], centres[order].astype(np.float32)


# --------------------------------------------------------------------------
# Naming clusters
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptors:
    """The words clusters are named with.

    `presence` lists attributes whose absence is worth saying ("no vocals"):
    a cluster gets "no X" when its centre is closer to the text "no X" than
    to "X". The wording matches trainer/vocab.py, which the model was trained
    on.
    """

    genres: tuple[str, ...]
    moods: tuple[str, ...]
    instruments: tuple[str, ...]
    presence: tuple[str, ...] = ("vocals", "drums")


DESCRIPTORS = Descriptors(
    genres=(
        "rock",
        "pop",
        "jazz",
        "blues",
        "classical",
        "ambient",
        "electronic",
        "folk",
        "hip hop",
        "metal",
        "latin",
        "reggae",
        "funk",
        "country",
        "soul",
        "punk",
        "house",
        "techno",
        "r&b",
        "soundtrack",
    ),
    moods=(
        "happy",
        "bright",
        "uplifting",
        "cheerful",
        "sad",
        "dark",
        "melancholic",
        "moody",
        "mellow",
        "calm",
        "energetic",
        "aggressive",
        "dreamy",
        "romantic",
        "slow",
        "fast",
        "upbeat",
    ),
    instruments=(
        "piano",
        "guitar",
        "acoustic guitar",
        "electric guitar",
        "distorted guitar",
        "bass",
        "strings",
        "violin",
        "cello",
        "brass",
        "trumpet",
        "saxophone",
        "flute",
        "clarinet",
        "organ",
        "synth",
        "harp",
        "choir",
    ),
)


def _embed(
    embed_text: Callable[[list[str]], np.ndarray], texts: list[str]
) -> np.ndarray:
    import numpy as np

    out = np.asarray(embed_text(texts), dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != len(texts):
        raise ValueError(
            f"embed_text returned shape {out.shape} for {len(texts)} texts"
        )
    return _normalise(out)


def name_clusters(
    centres: np.ndarray,
    embed_text: Callable[[list[str]], np.ndarray],
    vocabulary: Descriptors = DESCRIPTORS,
) -> list[str]:
    """A short, unique name for each cluster centre.

    Name = the best genre or mood + the best instrument, then ", no X" for the
    presence attribute whose negation beats its positive by the widest margin
    (if any does). Genre, mood and instrument are chosen by 2*sim - mean over
    clusters: a descriptor every cluster is close to (a "hub" of the text
    space) would otherwise name them all the same. Presence is judged on raw
    similarities, so a library where everything has vocals is not told half
    of it has none. Duplicate names fall back to the next-best descriptors.
    """
    import numpy as np

    centres = _normalise(np.asarray(centres, dtype=np.float32))
    if centres.ndim != 2 or centres.shape[0] == 0:
        return []
    v = vocabulary
    facets = {
        "genre": list(v.genres),
        "mood": list(v.moods),
        "instrument": list(v.instruments),
    }
    if not all(facets.values()):
        raise ValueError("the naming vocabulary needs genres, moods and instruments")
    texts = [
        *v.genres,
        *v.moods,
        *v.instruments,
        *v.presence,
        *(f"no {p}" for p in v.presence),
    ]
    emb = _embed(embed_text, texts)
    if emb.shape[1] != centres.shape[1]:
        raise ValueError(
            f"text embeddings have {emb.shape[1]} dimensions, "
            f"centres {centres.shape[1]}"
        )
    sims = centres @ emb.T  # [k, m]
    contrast = 2 * sims - sims.mean(axis=0, keepdims=True)
    bounds = np.cumsum(
        [0, len(v.genres), len(v.moods), len(v.instruments), len(v.presence)]
    )
    genre_s, mood_s, instr_s = (
        contrast[:, a:b] for a, b in itertools.pairwise(bounds[:4])
    )
    pos = sims[:, bounds[3] : bounds[4]]
    neg = sims[:, bounds[4] :]

    names: list[str] = []
    slugs: set[str] = set()
    for c in range(centres.shape[0]):
        # Genres and moods compete for the first word.
        lead = sorted(
            [(s, w) for s, w in zip(genre_s[c], v.genres, strict=True)]
            + [(s, w) for s, w in zip(mood_s[c], v.moods, strict=True)],
            key=lambda sw: -sw[0],
        )
        instruments = [v.instruments[i] for i in np.argsort(-instr_s[c], kind="stable")]
        best_genre = v.genres[int(np.argmax(genre_s[c]))]
        best_mood = v.moods[int(np.argmax(mood_s[c]))]
        suffix = ""
        if v.presence:
            margin = neg[c] - pos[c]
            best = int(np.argmax(margin))
            if margin[best] > 0:
                suffix = f", no {v.presence[best]}"
        first, second = lead[0][1], (lead[1][1] if len(lead) > 1 else lead[0][1])
        candidates = [
            f"{first} {instruments[0]}",
            f"{best_mood} {best_genre} {instruments[0]}",
            f"{second} {instruments[0]}",
            f"{first} {instruments[1] if len(instruments) > 1 else instruments[0]}",
        ]
        candidates = [name + suffix for name in candidates]
        # Unique file names make unique names: numbered as the last resort.
        numbered = (f"{candidates[0]} {n}" for n in itertools.count(2))
        name = next(
            n for n in itertools.chain(candidates, numbered) if slugify(n) not in slugs
        )
        names.append(name)
        slugs.add(slugify(name))
    return names


def automatic_playlists(
    ids: Sequence[int],
    vectors: np.ndarray,
    embed_text: Callable[[list[str]], np.ndarray],
    *,
    k: int | None = None,
    min_size: int = 5,
    size: int | None = None,
    seed: int = 0,
    vocabulary: Descriptors = DESCRIPTORS,
    prefix: str = AUTO_PREFIX,
) -> list[Playlist]:
    """Cluster the library and make a named playlist of each big-enough cluster.

    Tracks are ordered by closeness to their cluster's centre (the most typical
    first), clusters by size; clusters under `min_size` tracks are skipped and
    `size` caps a playlist's length. Same ids and vectors, same playlists.
    """
    import numpy as np

    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, not {min_size}")
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, not {size}")
    if len(ids) == 0:
        return []
    x = _normalise(np.asarray(vectors, dtype=np.float32))
    labels, centres = cluster_embeddings(x, k, seed=seed)
    members = []
    kept = []
    for c in range(centres.shape[0]):
        idx = np.flatnonzero(labels == c)
        if idx.size < min_size:
            continue
        closeness = x[idx] @ centres[c]
        members.append(idx[np.argsort(-closeness, kind="stable")])
        kept.append(c)
    if not kept:
        return []
    names = name_clusters(centres[kept], embed_text, vocabulary)
    playlists = []
    for name, idx in zip(names, members, strict=True):
        item_ids = [int(ids[i]) for i in idx[:size]]
        playlists.append(
            Playlist(name, f"{prefix}{slugify(name)}.m3u", item_ids, "auto")
        )
    return playlists


# --------------------------------------------------------------------------
# Everything `beet clap-playlists` does, minus beets itself
# --------------------------------------------------------------------------


class PlaylistUpdate(NamedTuple):
    """What an update wrote (or would write): playlists with file and length."""

    written: list[tuple[Playlist, Path, int]]
    removed: list[Path]


def update_playlists(
    directory: Path | str | bytes,
    entry_for: Callable[[int], PlaylistEntry | None],
    *,
    prompts: Any = None,
    rank: Rank | None = None,
    library: Callable[[], tuple[Sequence[int], np.ndarray]] | None = None,
    embed_text: Callable[[list[str]], np.ndarray] | None = None,
    clusters: int | None = None,
    min_size: int = 5,
    auto_size: int | None = None,
    default_size: int = DEFAULT_SIZE,
    check_query: Callable[[str], str | None] | None = None,
    extended: bool = False,
    relative_to: Path | str | bytes | None = None,
    prefix: str = "",
    pretend: bool = False,
) -> PlaylistUpdate:
    """Build and write the prompt playlists and, with `library`, the automatic ones.

    `prompts` is the raw `clap.playlists` config (validated here, before any
    search), `rank` the search, `library()` the indexed (ids, vectors) in a
    stable order (sorted by id, so the same library gives the same clusters)
    and `embed_text` the bundle's text tower, `check_query` the search's
    check of a description (validate_playlists). Automatic playlists of
    clusters that no longer exist are removed unless `pretend`.
    """
    specs = validate_playlists(
        prompts, default_size=default_size, check_query=check_query
    )
    playlists: list[Playlist] = []
    if specs:
        if rank is None:
            raise ValueError("prompt playlists need a rank function")
        playlists += _rank_prompts(specs, rank)
    auto: list[Playlist] = []
    if library is not None:
        if embed_text is None:
            raise ValueError("automatic playlists need a text encoder")
        ids, vectors = library()
        auto = automatic_playlists(
            ids, vectors, embed_text, k=clusters, min_size=min_size, size=auto_size
        )
        clash = {p.filename for p in playlists} & {p.filename for p in auto}
        if clash:  # a prompt named like a cluster file: the user's list wins
            auto = [p for p in auto if p.filename not in clash]
    playlists += auto
    results = write_playlists(
        playlists,
        directory,
        entry_for,
        extended=extended,
        relative_to=relative_to,
        prefix=prefix,
        pretend=pretend,
    )
    written = [(p, path, n) for p, (path, n) in zip(playlists, results, strict=True)]
    removed: list[Path] = []
    if library is not None and not pretend:
        removed = remove_stale(directory, {p.filename for p in auto})
    return PlaylistUpdate(written, removed)
