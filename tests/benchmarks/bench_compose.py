"""Calibrates the composed query's like and unlike weights on synthetic minimal pairs.

Two tasks on a split of the synthetic corpus (Contract 3 layout: clips with
`pair_id`, `pair_attribute`, `base_piece` and their attributes), every clip
of the split a track of the library:

- "like this piece, without A": for each minimal pair that flips A (drums,
  vocals, an instrument), the render that has A is the --like seed and the
  description is "without A". The same piece's render without A should come
  first (sibling@1, sibling MRR), and the top 10 should be pieces like it
  (the seed's style) without A (good@10); clean@10 counts those without A.
  Sweeps clap.like_weight.
- "like this render, unlike its sibling with A": --like the render without
  A, --unlike the one with A, no description: the top 10 should again be
  pieces of the seed's style without A. Sweeps clap.unlike_weight (at the
  chosen like weight).

A third part measures song paths (paths.choose_path) between clips of
different styles across the split, per hub weight: the largest step
(1 - cosine between neighbours, the path's roughest move), how often the
path's tracks are the split's hubs (the tenth of clips with the highest
local density, which a path through the dense middle keeps returning to),
and how many distinct clips all the paths use.

Each weight is chosen by one rule: the task's objective (like: sibling
MRR + good@10; unlike: good@10) is highest, and among the weights within
one standard error (over pairs) of that best, the one with the highest
clean@10 (the fewest tracks with the attribute the user turned away from).
Choose on the valid split, report on test (docs/benchmarks.md, "Composed
queries"). Scores come from the plugin's own code (compose.ComposedQuery,
search.embed_query) over clips embedded as the plugin embeds tracks
(trainer.evaluate.clips.embed_clips: load_windows, Bundle, pool_embeddings).

    python tests/benchmarks/bench_compose.py --data /path/to/synth \\
        [--bundle models/clap-default] [--split valid] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from common import add_weight_options  # noqa: E402

from beetsplug.clap import compose, paths, search  # noqa: E402
from beetsplug.clap.model import Bundle, l2_normalize  # noqa: E402
from trainer.evaluate.clips import Clip, embed_clips, load_split  # noqa: E402

# inf: the seeds alone (clap-similar), the description left out.
LIKE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, float("inf"))
UNLIKE_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5)
TOP = 10
HUB_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
PATHS = 200
PATH_LENGTH = 12
GREEDY = -1.0  # the path table's baseline column (shown as -1)


@dataclass
class Pair:
    """A minimal pair: the render with the attribute, the one without."""

    term: str
    present: int  # clip index
    absent: int


def minimal_pairs(clips: list[Clip]) -> list[Pair]:
    """Every pair of the split whose attribute one render has and the other lacks."""
    by_pair: dict[str, list[int]] = {}
    for i, clip in enumerate(clips):
        if clip.pair_id and clip.pair_attribute:
            by_pair.setdefault(clip.pair_id, []).append(i)
    pairs = []
    for members in by_pair.values():
        if len(members) != 2:
            continue
        attr = clips[members[0]].pair_attribute or ""
        term = attr.split(":", 1)[1] if attr.startswith("instrument:") else attr
        has = [term in clips[i].present for i in members]
        if has.count(True) == 1:
            pairs.append(
                Pair(term, members[has.index(True)], members[has.index(False)])
            )
    return pairs


def _style(clip: Clip) -> str | None:
    return (clip.attributes or {}).get("style")


def _seed(index: int, emb: np.ndarray, name: str) -> compose.SeedSet:
    vector = l2_normalize(emb[index : index + 1])[0]
    return compose.SeedSet(name, 1, [index], vector)


def _judge(
    scores: np.ndarray, pair: Pair, clips: list[Clip], exclude: set[int]
) -> dict[str, float]:
    scores = scores.copy()
    scores[list(exclude)] = -np.inf
    order = np.argsort(-scores, kind="stable")
    rank = int(np.flatnonzero(order == pair.absent)[0]) + 1
    style = _style(clips[pair.present])
    top = order[:TOP]
    clean = [pair.term not in clips[i].present for i in top]
    good = [c and _style(clips[i]) == style for c, i in zip(clean, top, strict=True)]
    return {
        "sibling@1": float(rank == 1),
        "sibling_mrr": 1.0 / rank,
        "clean@10": float(np.mean(clean)),
        "good@10": float(np.mean(good)),
    }


def _mean(rows: list[dict[str, float]], objective: tuple[str, ...]) -> dict[str, float]:
    """Means over pairs, the objective's (the sum of `objective`) with its
    standard error."""
    out = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0]}
    per_pair = [sum(r[k] for k in objective) for r in rows]
    out["objective"] = round(float(np.mean(per_pair)), 3)
    out["objective_se"] = round(float(np.std(per_pair) / np.sqrt(len(rows))), 3)
    return out


def like_task(
    bundle: Bundle,
    clips: list[Clip],
    emb: np.ndarray,
    tags: np.ndarray | None,
    pairs: list[Pair],
    weights: tuple[float, ...] = LIKE_WEIGHTS,
) -> dict[float, dict[str, float]]:
    """ "without A" --like the render with A, per like weight."""
    negation = search.resolve_negation_weight(None, bundle)
    texts = {
        term: search.embed_query(bundle, f"without {term}", negation)
        for term in sorted({p.term for p in pairs})
    }
    out = {}
    for weight in weights:
        rows = []
        for pair in pairs:
            query = compose.ComposedQuery(
                None if np.isinf(weight) else texts[pair.term],
                [_seed(pair.present, emb, "seed")],
                like_weight=1.0 if np.isinf(weight) else weight,
            )
            scores = query.score(emb, tags if query.tag_width else None)
            rows.append(_judge(scores, pair, clips, {pair.present}))
        out[weight] = _mean(rows, ("sibling_mrr", "good@10"))
    return out


def unlike_task(
    clips: list[Clip],
    emb: np.ndarray,
    pairs: list[Pair],
    like_weight: float,
    weights: tuple[float, ...] = UNLIKE_WEIGHTS,
) -> dict[float, dict[str, float]]:
    """--like the render without A, --unlike the one with A, per unlike weight."""
    out = {}
    for weight in weights:
        rows = []
        for pair in pairs:
            query = compose.ComposedQuery(
                None,
                [_seed(pair.absent, emb, "like")],
                [_seed(pair.present, emb, "unlike")],
                like_weight=like_weight,
                unlike_weight=weight,
            )
            judged = _judge(query.score(emb), pair, clips, {pair.present, pair.absent})
            del judged["sibling@1"], judged["sibling_mrr"]  # the sibling is a seed
            rows.append(judged)
        out[weight] = _mean(rows, ("good@10",))
    return out


def path_task(
    clips: list[Clip], emb: np.ndarray, weights: tuple[float, ...] = HUB_WEIGHTS
) -> dict[float, dict[str, float]]:
    """Paths of PATH_LENGTH between PATHS random pairs of clips of different
    styles, every other clip a candidate, per hub weight."""
    rng = np.random.default_rng(0)
    ends = []
    while len(ends) < PATHS:
        a, b = (int(i) for i in rng.integers(0, len(clips), 2))
        if _style(clips[a]) != _style(clips[b]):
            ends.append((a, b))
    density = paths._density(emb)
    hubs = set(np.argsort(-density)[: len(clips) // 10].tolist())
    ids = np.arange(len(clips))
    out = {}
    for weight in (*weights, GREEDY):
        worst, hub_share, back, used = [], [], [], set()
        for a, b in ends:
            keep = (ids != a) & (ids != b)
            if weight == GREEDY:
                order = _greedy_path(a, b, emb, ids[keep])
            else:
                steps = paths.choose_path(
                    a, emb[a], b, emb[b], PATH_LENGTH, ids[keep], emb[keep], weight
                )
                order = [s.item_id for s in steps]
            mat = emb[order]
            worst.append(float(np.max(1.0 - np.sum(mat[1:] * mat[:-1], axis=1))))
            to_end = mat @ emb[b]
            back.append(float(np.mean(np.diff(to_end) < 0)))
            inner = order[1:-1]
            hub_share.append(np.mean([i in hubs for i in inner]) if inner else 0.0)
            used.update(inner)
        out[weight] = {
            "largest step": round(float(np.mean(worst)), 3),
            "steps away from TO": round(float(np.mean(back)), 3),
            "hub share": round(float(np.mean(hub_share)), 3),
            "distinct clips": float(len(used)),
        }
    return out


def _greedy_path(a: int, b: int, emb: np.ndarray, candidates: np.ndarray) -> list[int]:
    """The baseline: at each waypoint the nearest unused clip, nothing else."""
    points = paths.waypoints(emb[a], emb[b], PATH_LENGTH)
    free = set(candidates.tolist())
    order = [a]
    for point in points[1:-1]:
        pool = np.fromiter(free, np.int64)
        best = int(pool[np.argmax(emb[pool] @ point)])
        free.discard(best)
        order.append(best)
    return [*order, b]


def choose(results: dict[float, dict[str, float]]) -> float:
    """The weight with the highest clean@10 among those within one standard
    error of the best objective."""
    best = max(results, key=lambda w: results[w]["objective"])
    floor = results[best]["objective"] - results[best]["objective_se"]
    near = [w for w in results if results[w]["objective"] >= floor]
    return max(near, key=lambda w: (results[w]["clean@10"], -w))


def _table(results: dict[float, dict[str, float]], chosen: float) -> str:
    weights = list(results)
    head = "| weight | " + " | ".join(
        f"**{w:g}**" if w == chosen else f"{w:g}" for w in weights
    )
    lines = [head + " |", "|---" * (len(weights) + 1) + "|"]
    for metric in results[weights[0]]:
        cells = [
            f"**{results[w][metric]:.3f}**"
            if w == chosen
            else f"{results[w][metric]:.3f}"
            for w in weights
        ]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--split", default="valid")
    parser.add_argument("--cache", type=Path, default=None)
    add_weight_options(
        parser,
        {
            "like_weight": "report at this like weight (default: choose on this split)",
            "unlike_weight": "report at this unlike weight (default: choose on this "
            "split)",
        },
    )
    args = parser.parse_args(argv)
    bundle = Bundle.load(args.bundle, threads=1)
    clips = load_split(args.data, args.split)
    emb, tags, skipped = embed_clips(bundle, clips, args.cache, log=print)
    pairs = minimal_pairs(clips)
    print(
        f"{args.split}: {len(clips)} clips, {len(pairs)} minimal pairs, "
        f"{len(skipped)} skipped, bundle {bundle.label}"
    )
    like = like_task(bundle, clips, emb, tags, pairs)
    like_weight = choose(like) if args.like_weight is None else args.like_weight
    print(f"\n'without A' --like the render with A ({len(pairs)} pairs)\n")
    print(_table(like, like_weight))
    unlike = unlike_task(clips, emb, pairs, like_weight)
    unlike_weight = choose(unlike) if args.unlike_weight is None else args.unlike_weight
    print(
        f"\n--like the render without A --unlike the one with A, like {like_weight:g}\n"
    )
    print(_table(unlike, unlike_weight))
    walks = path_task(clips, emb)
    print(
        f"\nPaths of {PATH_LENGTH} between {PATHS} pairs of styles, per hub weight "
        "(-1: the nearest unused clip to each waypoint, the baseline)\n"
    )
    print(_table(walks, paths.HUB_WEIGHT))
    by_term: dict[str, list[Pair]] = {}
    for pair in pairs:
        kind = pair.term if pair.term in ("drums", "vocals") else "instruments"
        by_term.setdefault(kind, []).append(pair)
    print(f"\nBy attribute, at like {like_weight:g}:\n")
    for kind, group in sorted(by_term.items()):
        row = like_task(bundle, clips, emb, tags, group, (0.0, like_weight))
        print(
            f"{kind} ({len(group)}): text alone {row[0.0]}, composed {row[like_weight]}"
        )
    print(
        json.dumps(
            {
                "split": args.split,
                "pairs": len(pairs),
                "like_weight": like_weight,
                "unlike_weight": unlike_weight,
                "like": {f"{w:g}": v for w, v in like.items()},
                "unlike": {f"{w:g}": v for w, v in unlike.items()},
                "paths": {f"{w:g}": v for w, v in walks.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
