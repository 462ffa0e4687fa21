"""docs/benchmarks.md (# Speed part) and its plots, from run.py's results."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

QUALITY_HEADING = "# Model quality"
MB = 1e6


def _fmt_n(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def _by_n(results: dict[str, Any], key: str) -> dict[int, dict[str, Any]]:
    return {r["n"]: r for r in results.get(key, [])}


def _status(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def _ms(pair: list[float] | tuple[float, float] | None) -> str:
    return "–" if not pair else f"{pair[0]:.1f} / {pair[1]:.1f}"


def _cores(results: dict[str, Any]) -> int:
    return int(results["machine"]["cores"] or 1)


def _rate(cpu_ms: float, cores: int) -> float:
    """Tracks per minute if the run had every core to itself."""
    return cores * 60_000 / cpu_ms if cpu_ms else 0.0


def targets(results: dict[str, Any]) -> list[list[str]]:
    from run import TARGETS

    cores = _cores(results)
    rows = []
    default_w = results["bundle"]["max_windows"]
    for w in sorted({2, default_w}):
        for fmt in ("mp3", "flac"):
            run = next(
                (
                    r
                    for r in results["index"]
                    if r["fmt"] == fmt and r["jobs"] == cores and r["windows"] == w
                ),
                None,
            )
            if run is None:
                continue
            est = _rate(run["steady_cpu_ms_per_track"], cores)
            note = "bundle default" if w == default_w else "clap.max_windows"
            rows.append(
                [
                    f"index ≥ {TARGETS['index_per_min']:,} tracks/min, 3-min {fmt}, "
                    f"{w} windows ({note})",
                    f"{est:,.0f} with {cores} idle cores (CPU time); measured "
                    f"{run['steady_per_minute']:,.0f} at load {run['load']:.1f}",
                    _status(est >= TARGETS["index_per_min"]),
                ]
            )
    query = _by_n(results, "query")
    for n, key in ((100_000, "p95_100k_ms"), (1_000_000, "p95_1m_ms")):
        q = query.get(n)
        rows.append(
            [
                f"query p95 ≤ {TARGETS[key]} ms at {_fmt_n(n)} (text embedding "
                "included)",
                "–"
                if q is None
                else f"{q['ms']['plain'][1]:.1f} ms (negated: "
                f"{q['ms']['negated'][1]:.1f} ms; its attributes new: "
                f"{_new_attributes(q)[1]:.1f} ms)",
                _status(
                    None
                    if q is None
                    else max(q["ms"]["plain"][1], q["ms"]["negated"][1]) <= TARGETS[key]
                ),
            ]
        )
    recalls = [v for q in results["query"] for v in q["recall"].values()]
    rows.append(
        [
            f"recall@10 ≥ {TARGETS['recall']} against exact search",
            f"{min(recalls):.3f} (lowest of all sizes and query kinds)",
            _status(min(recalls) >= TARGETS["recall"]),
        ]
    )
    cold = results["cold"][-1]
    cold_median = statistics.median(cold["clap_wall"])
    rows.append(
        [
            f'`beet clap "…"` cold ≤ {TARGETS["cold_s"]} s',
            f"{cold_median:.2f} s median at {_fmt_n(cold['n'])} tracks",
            _status(cold_median <= TARGETS["cold_s"]),
        ]
    )
    ratio = results["startup"]["ratio"]
    rows.append(
        [
            f"`beet version` with the plugin ≤ {TARGETS['version_ratio']}× without",
            f"{ratio:.2f}×",
            _status(ratio <= TARGETS["version_ratio"]),
        ]
    )
    big = next((c for c in results["cold"] if c["n"] == 1_000_000), None)
    rss = None if big is None else max(big["clap_rss"], big["search_rss"]) / MB
    rows.append(
        [
            f"peak RSS ≤ {TARGETS['rss_1m_mb']} MB searching 1M vectors",
            "–" if rss is None else f"{rss:.0f} MB",
            _status(None if rss is None else rss <= TARGETS["rss_1m_mb"]),
        ]
    )
    q1m = query.get(1_000_000)
    size = None if q1m is None else sum(q1m["store_bytes"].values()) / 1e9
    rows.append(
        [
            f"vector store for 1M tracks ≤ {TARGETS['store_1m_gb']} GB on disk",
            "–" if size is None else f"{size:.2f} GB",
            _status(None if size is None else size <= TARGETS["store_1m_gb"]),
        ]
    )
    return rows


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def speed_markdown(results: dict[str, Any]) -> str:
    m, b = results["machine"], results["bundle"]
    cores = _cores(results)
    out = [
        "# Speed",
        "",
        f"Measured by `{results['command']}` (all figures below come from that "
        f"one run, {results['started'][:16].replace('T', ' ')} to "
        f"{results['finished'][11:16]}), raw numbers in "
        "[benchmarks_speed.json](benchmarks_speed.json).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores **shared with other jobs** "
        f"(load average {m['load_start']:.1f} at the start, "
        f"{results['load_end']:.1f} at the end), Python {m['python']}, "
        f"onnxruntime {m['onnxruntime']}, numpy {m['numpy']}, SQLite {m['sqlite']}. "
        "Absolute times move with the load; every baseline ran in the same run "
        "as what it is compared with, so the ratios are the robust part.",
        "",
        f"Model: {b['name']} — the shipped architecture (trainer config "
        "`clap_default`: MTT and MSD musicnn backbones, MiniLM text tower, "
        f"{b['dim']}-d embeddings, {b['tags']} tags) exported to int8 "
        "with untrained projection heads: the right graphs for speed, not for "
        f"quality. Its manifest says max_windows {b['max_windows']} "
        f"({b['window_seconds']:g} s windows).",
        "",
        "## Targets",
        "",
        _table(["target", "measured", "status"], targets(results)),
        "",
    ]
    out += _query_section(results)
    out += _index_section(results, cores)
    out += _windows_section(results, cores)
    out += _model_section(results)
    out += _notes(results, cores)
    return "\n".join(out) + "\n"


def _new_attributes(q: dict[str, Any]) -> tuple[float, float]:
    """Negated searches whose attributes no earlier search embedded (runs
    from before the bundle remembered attributes timed every search so)."""
    return q["ms"].get("negated, new attributes", q["ms"]["negated"])


def _query_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for q in results["query"]:
        ms = q["ms"]
        rows.append(
            [
                _fmt_n(q["n"]),
                _ms(ms["plain"]),
                _ms(ms["negated"]),
                _ms(_new_attributes(q)),
                _ms(ms["text embedding"]),
                _ms(ms["knn"]),
                _ms(ms["numpy brute force"]),
                _ms(ms["sqlite-vec exact KNN"]),
                f"{ms['numpy brute force'][0] / ms['knn'][0]:.1f}× / "
                f"{ms['sqlite-vec exact KNN'][0] / ms['knn'][0]:.0f}×",
                " / ".join(f"{v:.3f}" for v in q["recall"].values()),
            ]
        )
    filt = []
    for q in results["query"]:
        for name in [k for k in q["ms"] if k.startswith("filter") and "ids" not in k]:
            query = name.removeprefix("filter ")
            ids = q["ms"][f"{name}: ids"]
            whole = q["ms"][name]
            filt.append(
                [
                    _fmt_n(q["n"]),
                    f"`{query}` ({q['notes'][f'matches {query}']:,} items)",
                    _ms(whole),
                    _ms(ids),
                    f"{whole[0] - ids[0]:.1f}",
                ]
            )
    store_rows = []
    for q in results["query"]:
        sizes = q["store_bytes"]
        total = sum(sizes.values())
        store_rows.append(
            [
                _fmt_n(q["n"]),
                f"{sizes.get('clap_vectors', 0) / MB:,.1f}",
                f"{sizes.get('clap_codes', 0) / MB:,.1f}",
                f"{sizes.get('clap_tags', 0) / MB:,.1f}",
                f"{(sizes.get('clap_state', 0) + sizes.get('clap_meta', 0)) / MB:,.1f}",
                f"{total / MB:,.1f}",
                f"{total / q['n']:,.0f}",
                f"{q['build_seconds']:.1f} s",
                f"{q['notes']['coarse_load_ms']:.0f} ms",
            ]
        )
    cold_rows = [
        [
            _fmt_n(c["n"]),
            f"{statistics.median(c['clap_wall']):.2f} s",
            f"{c['clap_rss'] / MB:.0f} MB",
            f"{c['search_rss'] / MB:.0f} MB",
        ]
        for c in results["cold"]
    ]
    st = results["startup"]
    rescored = results["query"][0]["notes"].get("plain_rescored", 0)
    lines = [
        "## Query latency",
        "",
        "p50 / p95 in ms over 20 plain and 20 negated descriptions (×3), in one "
        "process after a first search, `limit` 20. *Search* is what `beet clap` "
        "does after start-up: `embed_query` (text model) + `rank_items`; "
        f"{rescored} of the plain descriptions name an attribute the bundle's "
        "tagger knows "
        "(piano, guitar, drums…), so they are rescored with the stored tags "
        "like the negated ones (docs/queries.md). A bundle remembers the "
        "embeddings of the attributes a query negates (`embed_attributes`: "
        "the parser's closed vocabulary), so after a first search a negated "
        "one costs one text-model run; *attributes new* times the negated "
        "searches with that memory cleared before each, the cost of the "
        "first search to negate a word. *knn* "
        "is the store alone (int8 scan of every code, then exact cosine of the "
        "best k + 100), compared on the same vectors and query vectors with "
        "exact numpy brute force (all floats in RAM, one BLAS thread per core, "
        "as the scan has) and sqlite-vec's exact float KNN (vec0, what the plugin "
        "used before). Recall@10 of knn against numpy's exact top 10, for the "
        "text queries and for track-like queries (other draws of the mixture).",
        "",
        _table(
            [
                "vectors",
                "search, plain",
                "search, negated",
                "negated, attributes new",
                "text embedding",
                "knn",
                "numpy brute force",
                "sqlite-vec exact",
                "knn speed-up (numpy / sqlite-vec)",
                "recall@10 (text / track-like)",
            ],
            rows,
        ),
        "",
        "![query latency](img/speed_query.png)",
        "",
        "Vectors: a mixture of 2,000 Gaussian clusters with Zipf-like sizes on "
        "the unit sphere, 256-d, injected through `Store.write_batch` into a "
        "beets library whose items were written in bulk (no audio), with one "
        "random probability per bundle tag (50) per item, as indexing stores "
        "them.",
        "",
        "### With a beets filter",
        "",
        "Same search with a beets query (`beet clap TEXT QUERY`): *ids* is "
        "`search.matching_ids` (beets' own SQL clause over the items table, "
        "no Item objects), the rest is the plugin (a filter of up to 2,000 "
        "items is scored exactly, a larger one masks the int8 scan).",
        "",
        _table(
            [
                "vectors",
                "filter",
                "whole search p50 / p95",
                "ids p50 / p95",
                "plugin part p50",
            ],
            filt,
        ),
        "",
        "### Storage and cold start",
        "",
        _table(
            [
                "vectors",
                "float vectors MB",
                "int8 codes MB",
                "tags MB",
                "state MB",
                "total MB",
                "bytes per track",
                "write time",
                "codes load",
            ],
            store_rows,
        ),
        "",
        "Sizes are SQLite pages (dbstat), indexes included. *write time*: all "
        "vectors through `Store.write_batch`, 4,096 per transaction. *codes "
        "load*: the first search of a process reads every chunk of codes.",
        "",
        _table(
            [
                "library",
                '`beet clap "…" -n 20`, cold',
                "its peak RSS",
                "RSS, 20 searches in one process",
            ],
            cold_rows,
        ),
        "",
        f"`beet version`: {statistics.median(st['with_plugin']) * 1000:.0f} ms with "
        f"the plugin, {statistics.median(st['without_plugin']) * 1000:.0f} ms "
        f"without (`plugins: []`), medians of {len(st['with_plugin'])} alternated "
        f"runs: ratio {st['ratio']:.2f}.",
        "",
    ]
    q512 = results.get("query512")
    if q512:
        total = sum(q512["store_bytes"].values())
        lines += [
            f"At 512 dimensions ({_fmt_n(q512['n'])} vectors, search alone): knn "
            f"{_ms(q512['ms']['knn'])} ms against numpy "
            f"{_ms(q512['ms']['numpy brute force'])} ms, recall@10 "
            f"{q512['recall']['track-like queries']:.3f}, "
            f"{total / q512['n']:,.0f} bytes per track on disk "
            f"(⇒ {total / q512['n'] * 1e6 / 1e9:.1f} GB at 1M).",
            "",
        ]
    curve = results["recall_curve"]
    lines += [
        f"Recall@10 against the number of int8 candidates rescored exactly, "
        f"{_fmt_n(results['recall_curve_n'])} vectors (the plugin rescores "
        "k + 100):",
        "",
        _table(
            ["candidates", *[str(r) for r in next(iter(curve.values()))]],
            [[kind, *[f"{v:.3f}" for v in c.values()]] for kind, c in curve.items()],
        ),
        "",
        "![recall](img/speed_recall.png)",
        "",
    ]
    return lines


def _index_section(results: dict[str, Any], cores: int) -> list[str]:
    rows = [
        [
            r["fmt"],
            r["jobs"],
            r["windows"],
            f"{r['wall']:.1f} s",
            f"{r['per_minute']:,.0f}",
            f"{r['steady_per_minute']:,.0f}",
            f"{r['steady_cpu_ms_per_track']:.0f}",
            f"{_rate(r['steady_cpu_ms_per_track'], cores):,.0f}",
            f"{r['peak_rss'] / MB:,.0f} MB",
            f"{r['load']:.1f}",
        ]
        for r in results["index"]
    ]
    prof = [
        [
            p["fmt"],
            p["windows"],
            f"{p['decode_ms']:.0f}",
            f"{p['resample_ms']:.0f}",
            f"{p['inference_ms']:.0f}",
            f"{p['db_ms']:.1f}",
            f"{p['decode_ms'] + p['resample_ms'] + p['inference_ms'] + p['db_ms']:.0f}",
            f"{p['full_decode_ms']:.0f}",
        ]
        for p in results["profile"]
    ]
    n = results["index"][0]["tracks"] if results["index"] else 0
    return [
        "## Index throughput",
        "",
        f"`beet clap-index -j J` in a new process on a new library of {n} "
        "generated 3-minute tracks (stereo 44.1 kHz music-like audio: chords, "
        "bass, noise drums; mp3 192k, flac, ogg q5, m4a/AAC 192k), batches of "
        "8. *whole run* includes start-up (beets, the bundle, the workers' "
        "sessions: ~2 CPU-s); *steady* is between the first and the last batch "
        "commit (clap_state.updated), what a large library sees. *CPU "
        "ms/track* sums every process of the run (sampled from /proc every "
        f"20 ms); *with {cores} idle cores* is the rate that CPU time gives when "
        "the run has the cores to itself — the machine's other jobs lower "
        "the measured wall rates by a factor that moves with their load.",
        "",
        _table(
            [
                "format",
                "-j",
                "windows",
                "wall",
                "tracks/min, whole run",
                "tracks/min, steady",
                "CPU ms/track, steady",
                f"tracks/min with {cores} idle cores",
                "peak RSS (all processes)",
                "load",
            ],
            rows,
        ),
        "",
        "### Where the time goes",
        "",
        "CPU ms per track for each stage as one worker runs it (one thread): "
        "decoding only the windows (seeking; ffmpeg for m4a, with one seeking "
        "input per window), resampling to 16 kHz (soxr), the audio model "
        "(int8, one window per call), and the database (a batch of vectors, "
        "codes and state). *full decode* is the baseline without seeking: the "
        "whole file decoded and resampled.",
        "",
        _table(
            [
                "format",
                "windows",
                "decode",
                "resample",
                "inference",
                "database",
                "total",
                "full decode (baseline)",
            ],
            prof,
        ),
        "",
        "![index](img/speed_index.png)",
        "",
    ]


def _windows_section(results: dict[str, Any], cores: int) -> list[str]:
    quality = results.get("windows_quality")
    if not quality:
        return [
            "## Windows per track: quality against speed",
            "",
            "Not measured in this run (the realset could not be built).",
            "",
        ]
    mp3 = {p["windows"]: p for p in results["profile"] if p["fmt"] == "mp3"}
    attrs = sorted({a for q in quality for a in q["tag_auc"]})
    rows = []
    for q in quality:
        p = mp3.get(q["windows"])
        total = (
            p["decode_ms"] + p["resample_ms"] + p["inference_ms"] + p["db_ms"]
            if p
            else None
        )
        rows.append(
            [
                q["windows"],
                f"{q['mean_windows']:.1f}",
                *[f"{q['tag_auc'].get(a, float('nan')):.3f}" for a in attrs],
                f"{q['cosine_to_most']:.3f}",
                "–" if total is None else f"{_rate(total, cores):,.0f}",
            ]
        )
    return [
        "## Windows per track: quality against speed",
        "",
        "The model is most of the indexing cost and scales with the windows per "
        "track. What fewer windows lose, measured on the realset "
        "(tests/benchmarks/realset: 67 real recordings of 12-15 s with sourced "
        "labels): the AUC of the bundle's pretrained musicnn tag for each "
        "attribute, and the mean cosine of a clip's pooled vector to its "
        "vector from the most windows. The clips hold at most 4 windows; on "
        "3-minute songs with intros, verses and solos, more windows see more.",
        "",
        _table(
            [
                "max windows",
                "windows used",
                *[f"AUC {a}" for a in attrs],
                "cosine to most windows",
                f"mp3 tracks/min, {cores} idle cores (profile)",
            ],
            rows,
        ),
        "",
        "![windows](img/speed_windows.png)",
        "",
    ]


def _model_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for m in results["model"]:
        w = m["window_ms"]
        rows.append(
            [
                m["variant"],
                f"{m['size_bytes'] / MB:.1f} MB (audio "
                f"{m['audio_files_bytes'] / MB:.1f}, text "
                f"{m['text_files_bytes'] / MB:.1f})",
                *[f"{v:.1f}" for v in w.values()],
                f"{m['ten_seconds_ms']:.1f}",
                _ms(m["text_ms"]),
                _ms(m.get("text_ms_2threads")),
            ]
        )
    keys = list(results["model"][0]["window_ms"])
    int8, fp32 = results["model"][0], results["model"][1]
    return [
        "## Model: int8 against fp32",
        "",
        "Audio encoder ms per 3-s window (what the plugin feeds) by batch and "
        "threads, ms per 10-s input (three windows averaged inside the graph), "
        "text encoder ms per query (p50 / p95). Same architecture "
        "and weights; int8 is static QDQ for audio (the log-mel front end and "
        "musicnn's mid/temporal layers stay float), dynamic for text.",
        "",
        _table(
            [
                "bundle",
                "size",
                *[f"audio ms/window, {k}" for k in keys],
                "audio ms per 10 s",
                "text ms/query, 1 thread",
                "text ms/query, 2 threads",
            ],
            rows,
        ),
        "",
        "int8 / fp32: audio "
        f"{int8['window_ms'][keys[0]] / fp32['window_ms'][keys[0]]:.2f}× "
        f"the time per window (batch 1, 1 thread), text "
        f"{int8['text_ms'][0] / fp32['text_ms'][0]:.2f}×, size "
        f"{int8['size_bytes'] / fp32['size_bytes']:.2f}×.",
        "",
    ]


def _notes(results: dict[str, Any], cores: int) -> list[str]:
    return [
        "## How the search works, and what bounds it",
        "",
        "- Vectors are float32 rows of a plain table keyed by item id; their "
        "int8 codes (one scale per vector) sit in chunks of 4,096 in another "
        "table, written in the same transaction. A search scans every code "
        "with one `MatMulInteger` (onnxruntime, u8 × s8, a hand-encoded graph "
        "in `beetsplug/clap/coarse.py`) plus TopK, then reads the float "
        "vectors of the best k + 100 by id and ranks them exactly (a search "
        "the query layer rescores reads its pool of 256 with their tags, "
        "without the margin). The scan runs on one onnxruntime thread per "
        "core (`clap.threads`). The codes "
        "stay in memory between searches of one process (1M × 256: 256 MB) "
        "and are re-read chunk by chunk when another process changed them.",
        *_store_notes(results),
        *_index_bound(results, cores),
        "",
        "## Reproduce",
        "",
        "```sh",
        "pip install -e '.[dev]'   # trainer extra: torch builds the bundles",
        f"{results['command']}",
        "```",
        "",
        "The first run generates audio, libraries and bundles under --work "
        "(~3 GB for 1M vectors); later runs reuse them.",
        "",
    ]


def _store_notes(results: dict[str, Any]) -> list[str]:
    big = max(results["query"], key=lambda q: q["n"])
    ms = big["ms"]
    plain = ms.get("fetch 120 vectors by id, plain table")
    vec0 = ms.get("fetch 120 vectors by id, vec0")
    lines = []
    if plain and vec0:
        lines.append(
            "- sqlite-vec is no longer used at run time: its vec0 KNN is an "
            "exact scan (the sqlite-vec column above), and reading the 120 "
            f"vectors to rescore takes {vec0[0]:.1f} ms through vec0's point "
            f"lookups at {_fmt_n(big['n'])} against {plain[0]:.1f} ms from a "
            "plain table in one query. An index made with vec0 is converted "
            "in place the first time the plugin opens it."
        )
    ids = [v for k, v in ms.items() if k.startswith("filter") and k.endswith("ids")]
    if ids:
        lines.append(
            f"- Filtered searches at {_fmt_n(big['n'])} are bounded by beets' "
            "items table: SQLite scans it in full for `year:` (beets has no "
            f"index on that column), {min(v[0] for v in ids):.0f}-"
            f"{max(v[0] for v in ids):.0f} ms here (p50), as for any beets "
            "command with that filter; the plugin's part is the last column "
            "of the filter table."
        )
    return lines


def _index_bound(results: dict[str, Any], cores: int) -> list[str]:
    """The indexing budget against the model's cost, from the profile."""
    budget = cores * 60_000 / 1000  # CPU ms per track at 1,000 tracks/min
    mp3 = sorted(
        (p for p in results["profile"] if p["fmt"] == "mp3"),
        key=lambda p: p["windows"],
    )
    if len(mp3) < 2:
        return []
    lo, hi = mp3[0], mp3[-1]
    per_window = (hi["inference_ms"] - lo["inference_ms"]) / (
        hi["windows"] - lo["windows"]
    )
    decode = (
        hi["decode_ms"] + hi["resample_ms"] - lo["decode_ms"] - lo["resample_ms"]
    ) / (hi["windows"] - lo["windows"])
    fixed = (
        lo["decode_ms"]
        + lo["resample_ms"]
        + lo["inference_ms"]
        + lo["db_ms"]
        - lo["windows"] * (per_window + decode)
    )
    fits = max(0.0, (budget - fixed) / (per_window + decode))
    default = results["bundle"]["max_windows"]
    need = fixed + default * (per_window + decode)
    return [
        "- Indexing is bounded by the model: the two musicnn backbones cost "
        f"~{per_window:.0f} CPU ms per 3-s window (int8, one thread), decoding "
        f"~{decode:.0f} ms more per window of mp3 and ~{fixed:.0f} ms per track. "
        f"1,000 tracks/min on {cores} cores leaves {budget:.0f} CPU ms per track, "
        f"which fits {fits:.1f} windows; the bundle's {default} windows need "
        f"~{need:.0f} ms ({need / budget:.1f}× the budget, "
        f"~{_rate(need, cores):,.0f} tracks/min on idle cores). The steady "
        "runs above add the workers' overhead (process hand-over, "
        "pickling, the two workers sharing caches).",
        *_levers(results),
    ]


def _levers(results: dict[str, Any]) -> list[str]:
    int8 = results["model"][0]
    ops = int8.get("op_ms") or {}
    total = sum(ops.values()) or 1.0
    load = int8.get("load_ms") or {}
    two = int8.get("text_ms_2threads")
    lines = []
    if ops:
        lines.append(
            "- The audio graph in onnxruntime's profile (one window, one "
            f"thread): int8 `QLinearConv` {ops.get('QLinearConv', 0):.1f} ms and "
            f"float `Conv` {ops.get('Conv', 0):.1f} ms of {total:.1f} ms. The float "
            "convolutions are the log-mel front end and musicnn's mid-end and "
            "temporal layers, kept float on purpose "
            "(trainer/models/backbones.py): quantized, the mid-end's output fell "
            "to ~0.94 cosine of fp32's, and the tall temporal kernels ran slower "
            "as `QLinearConv` than in float."
        )
    if two:
        lines.append(
            f"- The text encoder embeds a query in {int8['text_ms'][0]:.1f} ms "
            f"with one thread and {two[0]:.1f} ms with two on this busy machine: "
            "`threads: 1` (or a single-threaded text session) is the better "
            "default for searching."
        )
    if load:
        lines.append(
            f"- `Bundle.load` takes {load['Bundle.load']:.0f} ms of every "
            "`beet clap`, which opens only the text tower (text.onnx "
            f"{load['open text.onnx']:.0f} ms, hashing the files "
            f"{load['sha256 of the files']:.0f} ms); audio.onnx "
            f"({load['open audio.onnx']:.0f} ms) is opened when tracks are "
            "embedded."
        )
    return lines


def write(results: dict[str, Any], out: Path) -> Path:
    """Write the # Speed part of out/benchmarks.md (keeping any # Model
    quality part after it) and out/img/speed_*.png."""
    plots(results, out / "img")
    path = out / "benchmarks.md"
    tail = (
        f"{QUALITY_HEADING}\n\n"
        "(The lead's section: model quality on the negation benchmark.)\n"
    )
    if path.exists():
        text = path.read_text()
        if QUALITY_HEADING in text:
            tail = text[text.index(QUALITY_HEADING) :]
    path.write_text(speed_markdown(results) + "\n" + tail)
    return path


def plots(results: dict[str, Any], img: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    cores = _cores(results)
    # Query latency against library size.
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ns = [q["n"] for q in results["query"]]
    for key, label, style in (
        ("plain", "plugin search (text + knn)", "o-"),
        ("knn", "knn (int8 scan + exact rescoring)", "s-"),
        ("numpy brute force", "numpy brute force (exact)", "^--"),
        ("sqlite-vec exact KNN", "sqlite-vec vec0 (exact)", "v--"),
    ):
        p50 = [q["ms"][key][0] for q in results["query"]]
        p95 = [q["ms"][key][1] for q in results["query"]]
        line = ax.plot(ns, p50, style, label=f"{label}, p50")[0]
        ax.fill_between(ns, p50, p95, color=line.get_color(), alpha=0.15)
    ax.axhline(10, color="grey", lw=0.8, ls=":")
    ax.axhline(60, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("vectors in the library (256-d)")
    ax.set_ylabel("ms per query (band: p50 to p95)")
    ax.set_title("Query latency (targets: 10 ms at 100k, 60 ms at 1M)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "speed_query.png", dpi=110)
    plt.close(fig)
    # Recall against candidates.
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for kind, curve in results["recall_curve"].items():
        xs = [int(k) for k in curve]
        ax.plot(xs, list(curve.values()), "o-", label=f"{kind} vectors")
    ax.axhline(0.99, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("int8 candidates rescored exactly")
    ax.set_ylabel("recall@10")
    ax.set_title(f"Recall@10 at {_fmt_n(results['recall_curve_n'])} vectors")
    ax.legend()
    fig.tight_layout()
    fig.savefig(img / "speed_recall.png", dpi=110)
    plt.close(fig)
    # Indexing: where the time goes, and rate against windows.
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    prof = results["profile"]
    labels = [f"{p['fmt']}\n{p['windows']}w" for p in prof]
    bottom = [0.0] * len(prof)
    for key, name in (
        ("decode_ms", "decode"),
        ("resample_ms", "resample"),
        ("inference_ms", "inference"),
        ("db_ms", "database"),
    ):
        vals = [p[key] for p in prof]
        left.bar(range(len(prof)), vals, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    left.axhline(cores * 60, color="grey", lw=0.8, ls=":")
    left.set_xticks(range(len(prof)), labels, fontsize=7)
    left.set_ylabel("CPU ms per track (one worker)")
    left.set_title(f"Where the time goes (line: 1,000 tracks/min on {cores} cores)")
    left.legend(fontsize=8)
    for fmt in ("mp3", "flac", "ogg", "m4a"):
        pts = [p for p in prof if p["fmt"] == fmt]
        right.plot(
            [p["windows"] for p in pts],
            [
                _rate(
                    p["decode_ms"] + p["resample_ms"] + p["inference_ms"] + p["db_ms"],
                    cores,
                )
                for p in pts
            ],
            "o-",
            label=fmt,
        )
    right.axhline(1000, color="grey", lw=0.8, ls=":")
    right.set_xlabel("windows per track")
    right.set_ylabel(f"tracks/min with {cores} idle cores")
    right.set_title("Index rate from the profile")
    right.legend()
    fig.tight_layout()
    fig.savefig(img / "speed_index.png", dpi=110)
    plt.close(fig)
    quality = results.get("windows_quality")
    if quality:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        ws = [q["windows"] for q in quality]
        for attr in sorted({a for q in quality for a in q["tag_auc"]}):
            ax.plot(
                ws,
                [q["tag_auc"].get(attr) for q in quality],
                "o-",
                label=f"AUC {attr} tag",
            )
        ax.plot(
            ws,
            [q["cosine_to_most"] for q in quality],
            "k--",
            label="cosine to most windows",
        )
        ax.set_xlabel("max windows per track")
        ax.set_ylabel("AUC / cosine (realset)")
        ax.set_xticks(ws)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title("What fewer windows cost (real recordings)")
        fig.tight_layout()
        fig.savefig(img / "speed_windows.png", dpi=110)
        plt.close(fig)
