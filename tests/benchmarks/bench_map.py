"""clap-map's cost at 10k and 100k vectors (layout, regions, HTML, drawing
in Chromium) and what each layout keeps of the vectors' neighbourhoods.

    python tests/benchmarks/bench_map.py [--sizes 10000 100000] [--no-browser]

Cost on random unit vectors (256-d, the shipped embedding size); quality on
a mixture of clusters of unequal sizes (random vectors have no neighbourhoods
worth keeping): the share of each track's 10 nearest neighbours by cosine
that are among its 10 nearest on the map, and the share whose nearest track
on the map is from its own cluster.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import load_average, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from beetsplug.clap import mapview

DIM = 256
QUALITY_N = 10_000
QUALITY_QUERIES = 1_000
K = 10


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_vectors(n: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, DIM)))


def mixture(
    n: int, clusters: int = 200, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from `clusters` Gaussian clusters with Zipf-like sizes."""
    rng = np.random.default_rng(seed)
    sizes = 1.0 / np.arange(1, clusters + 1)
    labels = rng.choice(clusters, size=n, p=sizes / sizes.sum())
    centres = unit(rng.standard_normal((clusters, DIM)))
    return unit(centres[labels] + 0.06 * rng.standard_normal((n, DIM))), labels


def embed_text(texts: list[str]) -> np.ndarray:
    """A text tower of fixed random directions (the cost of naming is the
    clustering's; the tower itself is the search benchmarks' subject)."""
    seeds = [sum(map(ord, t)) for t in texts]
    return unit(
        np.stack([np.random.default_rng(s).standard_normal(DIM) for s in seeds])
    )


def neighbourhoods(
    x: np.ndarray, y: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    rng = np.random.default_rng(2)
    queries = rng.choice(len(x), QUALITY_QUERIES, replace=False)
    high = np.argsort(-(x[queries] @ x.T), axis=1)[:, 1 : K + 1]
    d = ((y[queries, None, :] - y[None, :, :]) ** 2).sum(-1)
    low = np.argsort(d, axis=1)[:, 1 : K + 1]
    kept = np.mean([len(set(a) & set(b)) / K for a, b in zip(high, low, strict=True)])
    same = np.mean(labels[low[:, 0]] == labels[queries])
    return {"kept@10": float(kept), "same_cluster": float(same)}


def draw_seconds(html: Path) -> float | None:
    """Seconds from navigation start until the map script has drawn every
    point, in headless Debian Chromium (None without it)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return None
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
    from web_helpers import headless_chromium

    with tempfile.TemporaryDirectory() as profile:
        driver = headless_chromium(Path(profile), "1200,900")
        try:
            driver.get(html.as_uri())
            WebDriverWait(driver, 300).until(
                lambda d: d.find_element(By.TAG_NAME, "canvas").get_attribute(
                    "data-points"
                )
            )
            return driver.execute_script(
                "return performance.now() / 1000"
            )  # since navigation start
        finally:
            driver.quit()


def cost(n: int, browser: bool, folder: Path) -> dict[str, Any]:
    x = random_vectors(n)
    row: dict[str, Any] = {"n": n}
    for method in mapview.LAYOUTS:
        with timed() as t:
            positions = mapview.layout(x, method)
        row[f"{method}_wall"], row[f"{method}_cpu"] = t.wall, t.cpu
    with timed() as t:
        _labels, regions = mapview.regions(x, positions, embed_text)
    row["regions_wall"], row["regions_cpu"] = t.wall, t.cpu
    row["regions"] = len(regions)
    tracks = [mapview.Track(i, f"Artist {i % 997}", f"Title {i}") for i in range(n)]
    with timed() as t:
        data = mapview.map_data(tracks, x, embed_text)
        page = mapview.map_html(data)
    row["map_total_wall"], row["map_total_cpu"] = t.wall, t.cpu
    html = folder / f"map-{n}.html"
    html.write_text(page, encoding="utf-8")
    row["html_mb"] = html.stat().st_size / 1e6
    row["draw_s"] = draw_seconds(html) if browser else None
    return row


def quality() -> dict[str, Any]:
    x, labels = mixture(QUALITY_N)
    out = {}
    for method in mapview.LAYOUTS:
        out[method] = neighbourhoods(x, mapview.layout(x, method), labels)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the numbers as JSON")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M")
    load = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [cost(n, not args.no_browser, Path(tmp)) for n in args.sizes]
    kept = quality()
    result = {
        "started": started,
        "load_start": load,
        "load_end": load_average(),
        "sample": mapview.SAMPLE,
        "iterations": mapview.ITERATIONS,
        "cost": rows,
        "quality": kept,
    }
    print(
        "| tracks | PCA | t-SNE of a sample + placement | regions (k-means + names) "
        "| whole map + HTML | HTML size | drawn in Chromium |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        draw = "–" if r["draw_s"] is None else f"{r['draw_s']:.1f} s"
        print(
            f"| {r['n']:,} | {r['pca_wall']:.2f} s ({r['pca_cpu']:.2f}) "
            f"| {r['tsne_wall']:.2f} s ({r['tsne_cpu']:.2f}) "
            f"| {r['regions_wall']:.2f} s ({r['regions_cpu']:.2f}) "
            f"| {r['map_total_wall']:.2f} s ({r['map_total_cpu']:.2f}) "
            f"| {r['html_mb']:.1f} MB | {draw} |"
        )
    print()
    print(
        f"| layout ({QUALITY_N:,} clustered vectors) | kept@10 "
        "| nearest on map from own cluster |"
    )
    print("|---|---|---|")
    for method, q in kept.items():
        print(f"| {method} | {q['kept@10']:.3f} | {q['same_cluster']:.3f} |")
    print(
        f"\nload average {load:.1f} at the start, {result['load_end']:.1f} at the end"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
