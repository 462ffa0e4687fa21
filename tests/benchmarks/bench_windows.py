"""Windows per track: what fewer windows cost in quality, on real recordings.

The shipped model's heads are trained by the lead; its two musicnn
taggers (the bundle's `tags` output) are pretrained on real music, so
their vocals/drums AUCs on the realset (tests/benchmarks/realset: real
recordings with sourced labels) measure what the windows see, whatever
the heads. Also: how close the pooled vector of w windows is to the one
of the most windows.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import REPO

REALSET = REPO / "tests" / "benchmarks" / "realset"


@dataclass
class WindowsQuality:
    windows: int
    mean_windows: float  # windows actually used (clips are 12-15 s)
    tag_auc: dict[str, float]  # attribute -> AUC of its primary tag
    cosine_to_most: float  # mean cosine of pooled vectors to the w_max ones


def build_realset(out: Path) -> Path | None:
    """The realset clips (Debian packages, ~20 s); None if it cannot be built."""
    if (out / "corpus.json").exists():
        return out
    proc = subprocess.run(
        [sys.executable, str(REALSET / "build.py"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    return out if proc.returncode == 0 else None


def measure(bundle_dir: Path, data: Path, counts: list[int]) -> list[WindowsQuality]:
    sys.path.insert(0, str(REALSET))
    import check  # the realset's own metrics (auc, labels, tag words)

    from beetsplug.clap.audio import load_windows, pool_embeddings
    from beetsplug.clap.model import Bundle

    bundle = Bundle.load(bundle_dir, threads=1)
    recipe = check.load_recipe(REALSET / "labels.json")
    paths = check.clip_paths(recipe, data)
    results = {}
    for w in sorted(counts, reverse=True):
        vecs, tags, used = [], [], []
        for path in paths:
            windows = load_windows(path, bundle.sample_rate, bundle.window_seconds, w)
            emb, tag = bundle.embed_audio(windows)
            vecs.append(pool_embeddings(emb))
            tags.append(tag.mean(axis=0) if tag is not None else None)
            used.append(len(windows))
        results[w] = (np.stack(vecs), tags, float(np.mean(used)))
    most = results[max(counts)][0]
    out = []
    for w in sorted(counts):
        vecs, tags, used = results[w]
        aucs: dict[str, float] = {}
        if tags[0] is not None:
            tag_mat = np.stack(tags)
            for attr in ("vocals", "drums", "guitar", "piano"):
                lab = check.known(recipe, attr)
                mask = lab >= 0
                y = lab[mask] == 1
                primary = check.tag_score(attr, bundle.tag_names, tag_mat)
                if primary is None or min(y.sum(), (~y).sum()) < check.MIN_CLASS:
                    continue
                aucs[attr] = check.auc(primary[1][mask], y)
        cosine = float(np.mean(np.sum(vecs * most, axis=1)))
        out.append(WindowsQuality(w, used, aucs, cosine))
    return out
