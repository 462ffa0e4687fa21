"""Song paths: N tracks from one track to another, each step a small move on.

The path follows the great circle between the two ends' vectors: N - 2
waypoints spread evenly along it by angle (slerp), each with the tracks
nearest to it as candidates. A track's fit to a waypoint is its cosine to
it (a track that drifts off the arc, or sits ahead or behind along it, fits
less) minus HUB_WEIGHT times its local density, the mean cosine to its
DENSITY_NEIGHBOURS nearest tracks among all the candidates: the CSLS
correction against hubs (Conneau et al., 2018). Without it the tracks of
the library's dense middle, close to everything, would fill every waypoint
between two distant ends. The candidates are then sorted by how far along
the arc they lie and aligned to the waypoints in that order, the total fit
highest (dynamic programming): the path never steps back toward FROM, and
no track comes twice (docs/queries.md, "Paths from one track to another").
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, NamedTuple

from .results import not_indexed
from .search import SearchError, check_index
from .vectors import EXACT_MAX, Rows

if TYPE_CHECKING:
    import numpy as np

    from .model import Bundle
    from .store import Store

__all__ = [
    "DEFAULT_LENGTH",
    "HUB_WEIGHT",
    "PathStep",
    "choose_path",
    "song_path",
    "waypoints",
]

DEFAULT_LENGTH = 12
# How much a track's local density counts against its fit to a waypoint
# (CSLS subtracts the mean of the two sides' densities, so half of one side's).
HUB_WEIGHT = 0.5
# Tracks fetched around each waypoint: the candidates for it and, all
# together, the neighbourhood the density is measured in.
STEP_POOL = 48
# A long path scans at most this many of its waypoints (evenly spread),
# fetching proportionally more around each: the int8 pass is the path's
# main cost, and neighbouring waypoints share most of their candidates.
MAX_SCANS = 6
DENSITY_NEIGHBOURS = 10


class PathStep(NamedTuple):
    """One track of a path: its item id, its cosine to the waypoint it was
    chosen for (1 at the ends), and how far along the arc it lies (0..1)."""

    item_id: int
    fit: float
    progress: float


def waypoints(start: np.ndarray, end: np.ndarray, count: int) -> np.ndarray:
    """[count, D] unit vectors evenly spaced by angle from `start` to `end`,
    both included (spherical linear interpolation)."""
    import numpy as np

    start = np.asarray(start, np.float64)
    end = np.asarray(end, np.float64)
    t = np.linspace(0.0, 1.0, count)[:, None]
    theta = float(np.arccos(np.clip(start @ end, -1.0, 1.0)))
    if theta < 1e-6:  # the same direction: every waypoint is the start
        return np.repeat(start[None, :].astype(np.float32), count, axis=0)
    if np.pi - theta < 1e-6:
        raise SearchError("the two ends point in opposite directions: no path between")
    points = (np.sin((1 - t) * theta) * start + np.sin(t * theta) * end) / np.sin(theta)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def _progress(mat: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """How far along the arc from `start` to `end` each row lies, by the
    angle of its projection onto the arc's plane (0 at start, 1 at end)."""
    import numpy as np

    theta = float(np.arccos(np.clip(start @ end, -1.0, 1.0)))
    across = end - (start @ end) * start
    norm = float(np.linalg.norm(across))
    if theta < 1e-6 or norm < 1e-9:
        return np.zeros(len(mat), np.float32)
    angle = np.arctan2(mat @ (across / norm), mat @ start)
    return (angle / theta).astype(np.float32)


def _density(mat: np.ndarray) -> np.ndarray:
    """Each row's mean cosine to its DENSITY_NEIGHBOURS nearest other rows."""
    import numpy as np

    if len(mat) < 2:
        return np.zeros(len(mat), np.float32)
    sims = mat @ mat.T
    np.fill_diagonal(sims, -np.inf)
    k = min(DENSITY_NEIGHBOURS, len(mat) - 1)
    nearest = np.partition(sims, len(mat) - k, axis=1)[:, len(mat) - k :]
    return nearest.mean(axis=1).astype(np.float32)


def song_path(
    store: Store,
    bundle: Bundle,
    start_id: int,
    end_id: int,
    length: int = DEFAULT_LENGTH,
    candidates: Collection[int] | None = None,
    name_of: Callable[[int], str] = str,
) -> list[PathStep]:
    """`length` tracks from `start_id` to `end_id`, both included, no track
    twice, through `candidates` (item ids a beets query matches; the whole
    index when None). Shorter when too few tracks are left to pass through.
    `name_of` names a track in the one-line errors."""

    check_index(store, bundle)
    if length < 2:
        raise SearchError(f"a path needs at least 2 tracks (FROM and TO), not {length}")
    if start_id == end_id:
        raise SearchError(
            f"FROM and TO are the same track ({name_of(start_id)}): a path needs two"
        )
    ids, mat = store.vectors([start_id, end_id])
    vectors = dict(zip(ids.tolist(), mat, strict=True))
    for end_name, item_id in (("FROM", start_id), ("TO", end_id)):
        if item_id not in vectors:
            failures = store.failures([item_id])
            end = f"{end_name} ({name_of(item_id)})"
            raise SearchError(not_indexed(end, end, 1, failures))
    start, end = vectors[start_id], vectors[end_id]
    # No path is longer than the tracks it may pass through: a huge -n
    # would only allocate waypoints (length x dim floats) for nothing.
    left = (
        store.counts()["ok"]
        if candidates is None
        else len(set(candidates) - {start_id, end_id})
    )
    length = min(length, 2 + left)
    points = waypoints(start, end, length)  # where to look for candidates
    ends = {start_id, end_id}
    pool = _pool(store, points[1:-1], candidates, ends)
    if not len(pool.ids):
        return [PathStep(start_id, 1.0, 0.0), PathStep(end_id, 1.0, 1.0)]
    return choose_path(start_id, start, end_id, end, length, pool.ids, pool.vectors)


def _pool(
    store: Store,
    points: np.ndarray,
    candidates: Collection[int] | None,
    ends: set[int],
) -> Rows:
    """The candidates of every waypoint, read in one go: the STEP_POOL
    nearest to each by the int8 pass, or every candidate when a beets
    query leaves no more than the exact search would read anyway."""
    import numpy as np

    wanted = None
    if candidates is not None:
        wanted = np.fromiter(set(candidates) - ends, np.int64)
        if len(wanted) <= EXACT_MAX:
            return store.rows(wanted.tolist())
    index = store.coarse_index()
    if index is None:
        return store.rows(())
    found: set[int] = set()
    scans = min(len(points), MAX_SCANS)
    per_scan = STEP_POOL * -(-len(points) // max(scans, 1)) + len(ends)
    for row in np.linspace(0, len(points) - 1, scans).round().astype(int):
        ids, _ = index.top(points[row], per_scan, wanted)
        found.update(ids.tolist())
    return store.rows(found - ends)


def choose_path(
    start_id: int,
    start: np.ndarray,
    end_id: int,
    end: np.ndarray,
    length: int,
    ids: np.ndarray,
    mat: np.ndarray,
    hub_weight: float = HUB_WEIGHT,
) -> list[PathStep]:
    """The path through the candidates `ids` (vectors `mat`, the ends not
    among them): up to `length` - 2 of them aligned to the waypoints."""
    import numpy as np

    points = waypoints(start, end, length)
    progress = _progress(mat, start, end)
    # Only tracks between the ends: none behind FROM or past TO.
    between = np.flatnonzero((progress > 0.0) & (progress < 1.0))
    between = between[np.argsort(progress[between], kind="stable")]
    if len(between) < length - 2:  # too few: fewer waypoints, evenly spread
        points = waypoints(start, end, len(between) + 2)
    fits = mat[between] @ points[1:-1].T  # [tracks, waypoints]
    chosen = _align(fits - hub_weight * _density(mat)[between, None])
    steps = [PathStep(start_id, 1.0, 0.0)]
    for waypoint, row in enumerate(chosen):
        index = between[row]
        steps.append(
            PathStep(
                int(ids[index]), float(fits[row, waypoint]), float(progress[index])
            )
        )
    steps.append(PathStep(end_id, 1.0, 1.0))
    return steps


def _align(score: np.ndarray) -> list[int]:
    """One track (row) per waypoint (column), rows increasing with the
    column, none twice, the total score highest: the tracks sorted by
    progress are aligned to the waypoints in order (dynamic programming
    over waypoints x tracks, as sequence alignment does). Needs at least as
    many rows as columns."""
    import numpy as np

    tracks, count = score.shape
    if count == 0:
        return []
    best = np.full((count, tracks), -np.inf)
    came_from = np.zeros((count, tracks), np.int64)
    best[0] = score[:, 0]
    for w in range(1, count):
        # The best path to any earlier track, for each track.
        prev = np.concatenate([[-np.inf], best[w - 1, :-1]])
        arg = np.concatenate([[0], np.arange(tracks - 1)])
        running = np.maximum.accumulate(prev)
        where = np.where(prev == running, arg, 0)
        where = np.maximum.accumulate(where)
        best[w] = score[:, w] + running
        came_from[w] = where
    rows = [int(np.argmax(best[-1]))]
    for w in range(count - 1, 0, -1):
        rows.append(int(came_from[w, rows[-1]]))
    return rows[::-1]
