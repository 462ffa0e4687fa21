"""A 2-D map of the library's vectors: layout, named regions, one HTML file."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from .items import file_name, item_artist, item_path, track_label

if TYPE_CHECKING:
    import numpy as np
    from beets.library import Library

LAYOUTS = ("tsne", "pca")
DEFAULT_LAYOUT = "tsne"
# The refinement runs exact t-SNE on a fixed-seed sample and places every
# other track among its nearest sampled neighbours: its cost is quadratic in
# the sample and linear in the library (docs/benchmarks.md, "Map layout").
SAMPLE = 1000
ITERATIONS = 200
PERPLEXITY = 30.0
NEIGHBOURS = 8  # sampled neighbours an unsampled track is placed among
_CHUNK = 8192  # rows of a similarity block when placing the rest
# Regions: at most this many, so their names stay readable on one screen.
MAX_REGIONS = 12
FIT_2D = 20_000  # map positions the regions are fitted on (then all assigned)
# Colours of a categorical field: the most common values, the rest "other".
MAX_CATEGORIES = 10
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#aec7e8",
    "#ffbb78",
)
OTHER_COLOUR = "#c8c8c8"
STATIC = "static"  # package folder of the page's and the map's scripts


class MapError(Exception):
    """A map that cannot be drawn as asked; the message is one line."""


def static_text(name: str) -> str:
    """A file shipped in the package's static folder."""
    return resources.files(__package__).joinpath(STATIC, name).read_text("utf-8")


# Layout ----------------------------------------------------------------------


def pca_layout(vectors: np.ndarray) -> np.ndarray:
    """[n, 2]: the vectors projected on their two main axes.

    Signs are fixed (each axis points to its largest loading) so that the
    same library always gives the same picture.
    """
    import numpy as np

    x = np.asarray(vectors, dtype=np.float32)
    n, dim = x.shape
    if n == 0:
        return np.zeros((0, 2), np.float32)
    centred = x - x.mean(axis=0, keepdims=True)
    if n == 1 or dim == 1:
        out = np.zeros((n, 2), np.float32)
        out[:, 0] = centred[:, 0] if dim else 0
        return out
    cov = (centred.T @ centred).astype(np.float64) / n
    _values, vecs = np.linalg.eigh(cov)
    axes = vecs[:, ::-1][:, :2]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), [0, 1]])
    axes = axes * np.where(signs == 0, 1, signs)
    return (centred @ axes.astype(np.float32)).astype(np.float32)


def _affinities(x: np.ndarray, perplexity: float) -> np.ndarray:
    """t-SNE's symmetric P [m, m] for unit vectors (squared distance
    2 - 2 cos) over each point's 3 x perplexity nearest neighbours (the rest
    carry next to nothing), each row's bandwidth found by bisection on its
    entropy."""
    import numpy as np

    m = x.shape[0]
    k = min(m - 1, int(3 * perplexity))
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    d = np.maximum(2.0 - 2.0 * np.take_along_axis(sims, near, axis=1), 0.0)
    d = d.astype(np.float64)
    d -= d.min(axis=1, keepdims=True)  # stable exponentials; P is unchanged
    target = np.log(min(perplexity, k / 3))
    lo = np.zeros((m, 1))
    hi = np.full((m, 1), np.inf)
    beta = np.ones((m, 1))
    for _ in range(50):
        p = np.exp(-d * beta)
        total = p.sum(axis=1, keepdims=True)
        entropy = np.log(total) + beta * (d * p).sum(axis=1, keepdims=True) / total
        over = entropy > target  # too flat: narrow the kernel
        lo = np.where(over, beta, lo)
        hi = np.where(over, hi, beta)
        beta = np.where(np.isinf(hi), beta * 2, (lo + hi) / 2)
    p = np.exp(-d * beta)
    p /= p.sum(axis=1, keepdims=True)
    dense = np.zeros((m, m), np.float32)
    np.put_along_axis(dense, near, p.astype(np.float32), axis=1)
    dense += dense.T
    dense /= 2 * m
    return dense


def _tsne(p: np.ndarray, init: np.ndarray, iterations: int) -> np.ndarray:
    """Exact t-SNE gradient descent from `init` (early exaggeration,
    momentum and gains as van der Maaten's reference implementation), in
    float32 and in place: the m x m passes are the whole cost."""
    import numpy as np

    m = p.shape[0]
    y = init.astype(np.float32)
    y = (y - y.mean(axis=0)) / max(float(y[:, 0].std()), 1e-12) * 1e-4
    velocity = np.zeros_like(y)
    gains = np.ones_like(y)
    rate = np.float32(max(m / 12.0, 50.0))
    exaggerate = iterations // 4
    attract = p * np.float32(12.0)
    for step in range(iterations):
        if step == exaggerate:
            attract = p
        # Pairwise squared distances and the products with y per axis:
        # BLAS is slow for matrices two columns wide, elementwise and
        # matrix-vector passes are not.
        x0, x1 = np.ascontiguousarray(y[:, 0]), np.ascontiguousarray(y[:, 1])
        num = np.subtract.outer(x0, x0)
        num *= num
        other = np.subtract.outer(x1, x1)
        other *= other
        num += other
        num += 1.0
        np.reciprocal(num, out=num)
        np.fill_diagonal(num, 0.0)
        pq = num * np.float32(-1.0 / float(num.sum()))
        pq += attract
        pq *= num
        pull = np.stack([pq @ x0, pq @ x1], axis=1)
        grad = 4.0 * (pq.sum(axis=1)[:, None] * y - pull)
        same = np.sign(grad) == np.sign(velocity)
        gains = np.maximum(np.where(same, gains * 0.8, gains + 0.2), 0.01)
        momentum = 0.5 if step < exaggerate else 0.8
        velocity = momentum * velocity - rate * gains * grad
        y += velocity
    return y


def tsne_layout(
    vectors: np.ndarray,
    sample: int = SAMPLE,
    iterations: int = ITERATIONS,
    seed: int = 0,
) -> np.ndarray:
    """[n, 2]: t-SNE of a sample (PCA start), every other track placed at
    the similarity-weighted mean of its nearest sampled tracks.

    Neighbourhoods, not global axes, are what a map is read by: tracks that
    sound alike should sit together, which two principal axes of a 256-d
    space rarely achieve.
    """
    import numpy as np

    x = np.asarray(vectors, dtype=np.float32)
    n = x.shape[0]
    if n < 4:
        return pca_layout(x)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    chosen = np.arange(n) if n <= sample else np.sort(rng.choice(n, sample, False))
    sampled = x[chosen]
    y_sample = _tsne(_affinities(sampled, PERPLEXITY), pca_layout(sampled), iterations)
    out = np.empty((n, 2), np.float32)
    out[chosen] = y_sample
    rest = np.setdiff1d(np.arange(n), chosen, assume_unique=True)
    k = min(NEIGHBOURS, len(chosen))
    for start in range(0, len(rest), _CHUNK):
        rows = rest[start : start + _CHUNK]
        sims = x[rows] @ sampled.T
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near_sims = np.take_along_axis(sims, near, axis=1)
        # Sharp weights: the nearest neighbour dominates, so a track sits in
        # its neighbourhood instead of between two.
        weights = np.exp((near_sims - near_sims.max(axis=1, keepdims=True)) / 0.02)
        weights /= weights.sum(axis=1, keepdims=True)
        out[rows] = np.einsum("rk,rkc->rc", weights, y_sample[near])
    return out


def layout(vectors: np.ndarray, method: str = DEFAULT_LAYOUT) -> np.ndarray:
    """[n, 2] positions scaled into [0, 1] (aspect kept), by `method`."""
    import numpy as np

    if method not in LAYOUTS:
        raise MapError(f"unknown layout {method!r}: choose one of {', '.join(LAYOUTS)}")
    y = tsne_layout(vectors) if method == "tsne" else pca_layout(vectors)
    if not len(y):
        return y
    y = y - y.min(axis=0)
    span = float(y.max()) or 1.0
    y = y / span
    return (y + (1 - y.max(axis=0)) / 2).astype(np.float32)  # centred


# Regions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    name: str
    x: float
    y: float
    size: int


def _kmeans_2d(points: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Labels of k-means on map positions (k-means++ start, fixed seed,
    fitted on at most FIT_2D points), numbered by size, largest first."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(points)
    fit = points if n <= FIT_2D else points[rng.choice(n, FIT_2D, replace=False)]
    centres = [fit[rng.integers(len(fit))]]
    closest = ((fit - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        if closest.sum() <= 0:
            break
        centres.append(fit[rng.choice(len(fit), p=closest / closest.sum())])
        closest = np.minimum(closest, ((fit - centres[-1]) ** 2).sum(axis=1))
    centre = np.array(centres)
    for _ in range(100):
        labels = ((fit[:, None, :] - centre[None]) ** 2).sum(axis=2).argmin(axis=1)
        moved = np.array(
            [
                fit[labels == c].mean(axis=0) if (labels == c).any() else centre[c]
                for c in range(len(centre))
            ]
        )
        if np.allclose(moved, centre):
            break
        centre = moved
    labels = ((points[:, None, :] - centre[None]) ** 2).sum(axis=2).argmin(axis=1)
    counts = np.bincount(labels, minlength=len(centre))
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]
    remap = np.empty(len(centre), np.int64)
    remap[order] = np.arange(len(order))
    return remap[labels]


def regions(
    vectors: np.ndarray,
    positions: np.ndarray,
    embed_text: Callable[[list[str]], np.ndarray],
) -> tuple[np.ndarray, list[Region]]:
    """(region per track, named regions): k-means of the map positions, so
    a region is one patch of the map, each named by the text tower's
    descriptors nearest its tracks' mean vector (the automatic playlists'
    vocabulary and naming) and labelled at the median of its tracks."""
    import numpy as np

    from .clusters import DESCRIPTORS, choose_k, name_clusters

    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64), []
    k = min(MAX_REGIONS, choose_k(n), len(np.unique(positions, axis=0)))
    labels = _kmeans_2d(positions, k)
    k = int(labels.max()) + 1
    members = [vectors[labels == c] for c in range(k)]
    means = np.stack([m.mean(axis=0) for m in members])
    names = name_clusters(means, embed_text, DESCRIPTORS, members=members)
    out = []
    for c, name in enumerate(names):
        spot = positions[labels == c]
        x, y = np.median(spot, axis=0)
        out.append(Region(name, round(float(x), 4), round(float(y), 4), len(spot)))
    return labels, out


# Colours -----------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_name(value: Any) -> str:
    """A value as the legend names it: whole numbers without a point,
    fractions to two places."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(round(value, 2))
    return str(value)


def colours(
    values: Sequence[Any], field: str
) -> tuple[list[int], list[dict[str, str]], list[str]]:
    """(colour index per track, legend, colour of each index).

    Numbers shade from low to high when they take more than MAX_CATEGORIES
    values, and get a colour each, in ascending order, when they take fewer;
    anything else gets a colour for each of its MAX_CATEGORIES most common
    values. For numbers 0 is no value: beets stores 0 for a number it does
    not know (a year, a bpm). Tracks without a colour are grey, and the
    legend says why ("no value", "other") only when some track is grey.
    """
    present = [v for v in values if v not in (None, "")]
    numeric = bool(present) and all(_is_number(v) for v in present)
    if numeric:
        known = sorted({v for v in present if v != 0})
        if len(known) > MAX_CATEGORIES:
            return _shades(values, known, field)
        common = known
    else:
        common = [v for v, _ in Counter(present).most_common(MAX_CATEGORIES)]
    slot = {v: i for i, v in enumerate(common)}
    index = [slot.get(v, len(common)) for v in values]
    palette = [*(PALETTE[i % len(PALETTE)] for i in range(len(common))), OTHER_COLOUR]
    legend = [
        {"name": _value_name(v), "colour": palette[i]} for i, v in enumerate(common)
    ]
    missing = len(present) < len(values) or (numeric and 0 in present)
    other = any(v not in slot for v in present if not (numeric and v == 0))
    grey = " / ".join(
        name for name, shown in (("other", other), ("no value", missing)) if shown
    )
    if grey:
        legend.append({"name": grey, "colour": OTHER_COLOUR})
    return index, legend, palette


def _shades(
    values: Sequence[Any], known: Sequence[float], field: str
) -> tuple[list[int], list[dict[str, str]], list[str]]:
    """colours() of numbers with many values (`known`, ascending, without
    the 0 that means none): a shade each from low to high, grey for none."""
    lo, hi = known[0], known[-1]
    steps = len(PALETTE)
    shades = [_shade(i / (steps - 1)) for i in range(steps)]
    index = [
        steps
        if v in (None, "", 0)
        else round((v - lo) / ((hi - lo) or 1) * (steps - 1))
        for v in values
    ]
    legend = [
        {"name": f"{field} {_value_name(lo)}", "colour": shades[0]},
        {"name": f"{field} {_value_name(hi)}", "colour": shades[-1]},
    ]
    if steps in index:
        legend.append({"name": "no value", "colour": OTHER_COLOUR})
    return index, legend, [*shades, OTHER_COLOUR]


def _shade(t: float) -> str:
    """Blue to orange through grey-violet: readable on white, no rainbow."""
    low, high = (0x2B, 0x5C, 0xC4), (0xE8, 0x6A, 0x17)
    r, g, b = (round(a + (c - a) * t) for a, c in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


# Data and HTML ---------------------------------------------------------------


@dataclass(frozen=True)
class Track:
    """What the map shows of a track: `title` is the file's name where the
    track has none."""

    item_id: int
    artist: str
    title: str
    value: Any = None  # the --color field's value


def map_data(
    tracks: Sequence[Track],
    vectors: np.ndarray,
    embed_text: Callable[[list[str]], np.ndarray],
    color: str | None = None,
    method: str = DEFAULT_LAYOUT,
    title: str = "beets library",
) -> dict[str, Any]:
    """Everything the map script draws, as JSON-ready values: positions,
    hover texts, colours and legend (by region unless `color` names a
    field), and the named regions."""
    if len(tracks) != len(vectors):
        raise ValueError(f"{len(tracks)} tracks for {len(vectors)} vectors")
    if not len(tracks):
        raise MapError("no indexed tracks to put on the map: run `beet clap-index`")
    positions = layout(vectors, method)
    labels, named = regions(vectors, positions, embed_text)
    if color:
        index, legend, palette = colours([t.value for t in tracks], color)
    else:
        index = [int(c) for c in labels]
        legend = [
            {"name": r.name, "colour": PALETTE[i % len(PALETTE)]}
            for i, r in enumerate(named)
        ]
        palette = [entry["colour"] for entry in legend]
    return {
        "title": title,
        "layout": method,
        "color": color or "region",
        "ids": [t.item_id for t in tracks],
        "x": [round(float(v), 4) for v in positions[:, 0]],
        "y": [round(float(v), 4) for v in positions[:, 1]],
        "hover": [track_label(t.artist, t.title, None, " – ") or "?" for t in tracks],
        "colour": index,
        "palette": palette,
        "legend": legend,
        "regions": [r.__dict__ for r in named],
    }


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element (no closing tag, no comment)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def map_html(data: dict[str, Any]) -> str:
    """One self-contained page: the data, the map script and its styles
    inline, nothing fetched from anywhere."""
    from .results import counted

    title = html.escape(f"{data['title']}: {counted(len(data['ids']), 'track')}")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>
{static_text("map.css")}
body {{ margin: 0; font-family: system-ui, sans-serif; }}
h1 {{ font-size: 1.1rem; margin: .6rem 1rem; }}
</style>
</head>
<body>
<h1>{title}</h1>
<div id="clap-map" class="clap-map"></div>
<script>
{static_text("map.js")}
</script>
<script>
clapMap(document.getElementById("clap-map"), {_script_json(data)});
</script>
</body>
</html>
"""


# Reading the library -----------------------------------------------------------


def library_tracks(
    lib: Library, item_ids: Sequence[int], color: str | None = None
) -> list[Track]:
    """A Track per id (ids no longer in the library are left out), read with
    one SQL query unless the colour field needs beets' own item objects."""
    from beets.dbcore.types import Boolean
    from beets.library import Item
    from beets.util import displayable_path

    from .results import SCORE_FIELD
    from .search import known_fields, list_fields

    # Fields a --color can name: a named query (`clap:`) is not one, nor
    # $clap_score, which only the command that ranked has values of. The
    # single-value names beets still takes for its list fields colour by
    # the list's first value ("genre": the first of `genres`).
    lists = list_fields()
    field = lists.get(color, color) if color is not None else None
    if field is not None and (field not in known_fields(lib) or field == SCORE_FIELD):
        examples = "genre, year, artist, album, format, bpm"
        raise MapError(
            f"no field {color!r} in this library for --color: e.g. {examples}"
        )
    wanted = {int(i) for i in item_ids}
    found: dict[int, Track] = {}
    # Read with SQL: the columns of items, but the path (stored relative to
    # the library's folder, shown whole as beets shows it) and list fields.
    if field is None or (
        field in Item._fields and field not in lists.values() and field != "path"
    ):
        column = f", {field}" if field else ""
        # A flag is stored as 0 or 1, which are no number here: yes or no.
        flag = field is not None and isinstance(Item._fields[field], Boolean)
        with lib.transaction() as tx:
            rows = tx.query(
                f"SELECT id, artist, title, path, albumartist{column} FROM items"
            )
        for row in rows:
            if row[0] in wanted:
                value = row[5] if color else None
                if flag and value is not None:
                    value = bool(value)
                name = row[2] or file_name(row[3])
                found[row[0]] = Track(row[0], row[1] or row[4], name, value)
    else:
        for item in lib.items():
            if item.id in wanted:
                name = item.title or file_name(item.path)
                value = item_path(lib, item) if field == "path" else item.get(field)
                if isinstance(value, list):
                    value = value[0] if value else None
                if isinstance(value, bytes):  # a path-typed flexible field
                    value = displayable_path(value)
                found[item.id] = Track(item.id, item_artist(item), name, value)
    return [found[i] for i in item_ids if i in found]


def library_points(
    lib: Library,
    store: Any,
    bundle: Any,
    query: Sequence[str] | str | None = None,
    color: str | None = None,
) -> tuple[list[Track], np.ndarray]:
    """(tracks, their vectors) of the indexed items a beets query matches
    (all without one): the map's reading of the library, apart from its
    computing. SearchError when the index cannot be searched, MapError when
    nothing is left to draw: said as the search commands say why they
    found nothing (results.tracks_not_found: no match, not indexed yet,
    failed to index)."""
    import numpy as np

    from .results import tracks_not_found
    from .search import check_index, matching_ids

    check_index(store, bundle)
    ids, vectors = store.all_vectors(bundle.identity)
    wanted = matching_ids(lib, query)
    if wanted is not None:
        keep = np.isin(ids, np.fromiter(wanted, np.int64, len(wanted)))
        ids, vectors = ids[keep], vectors[keep]
        if not len(ids):
            terms = [query] if isinstance(query, str) else list(query or ())
            raise MapError(tracks_not_found(lib, store, terms, wanted))
    tracks = library_tracks(lib, ids.tolist(), color)
    present = np.isin(ids, np.array([t.item_id for t in tracks], np.int64))
    return tracks, vectors[present]


def library_title(query: Sequence[str] | str | None = None) -> str:
    """The map's title: the library, and the beets query that picked its
    tracks."""
    words = " ".join(query) if isinstance(query, list | tuple) else query
    return f"beets library, {words}" if words else "beets library"
