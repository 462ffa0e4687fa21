"""Index throughput: `beet clap-index` on generated 3-minute tracks, and
where the time goes per track (decode, resample, inference, database)."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import (
    beets_env,
    make_tracks,
    run_measured,
    timed,
    write_beets_config,
)

BATCH = 8


@dataclass
class IndexRun:
    fmt: str
    jobs: int
    windows: int
    tracks: int
    wall: float
    cpu: float
    peak_rss: int
    summary: str
    # Between the first and the last batch commit: start-up excluded.
    steady_tracks: int = 0
    steady_wall: float = 0.0
    steady_cpu: float = 0.0

    @property
    def per_minute(self) -> float:
        return self.tracks / self.wall * 60

    @property
    def cpu_ms_per_track(self) -> float:
        return self.cpu / self.tracks * 1000

    @property
    def steady_per_minute(self) -> float:
        return self.steady_tracks / self.steady_wall * 60 if self.steady_wall else 0.0

    @property
    def steady_cpu_ms_per_track(self) -> float:
        return (
            self.steady_cpu / self.steady_tracks * 1000 if self.steady_tracks else 0.0
        )


def _library(db: Path, files: list[Path]) -> None:
    from beets import config
    from beets.library import Item, Library

    config["create_backup_before_migrations"] = False
    lib = Library(str(db))
    with lib.transaction():
        for i, path in enumerate(files):
            lib.add(Item(path=str(path).encode(), title=f"t{i:04d}", artist="a"))
    lib._close()


def index_run(
    work: Path,
    bundle: Path,
    fmt: str,
    tracks: int,
    jobs: int,
    windows: int,
    **clap: object,
) -> IndexRun:
    """One whole `beet clap-index` in a new process on a new library."""
    files = make_tracks(work / "audio" / fmt, fmt, tracks)
    beetsdir = work / f"index-{fmt}-j{jobs}-w{windows}"
    shutil.rmtree(beetsdir, ignore_errors=True)
    db = beetsdir / "library.db"
    # Small batches: their commit times (clap_state.updated) give the rate
    # once the workers run, start-up excluded.
    write_beets_config(
        beetsdir, db, bundle, max_windows=windows, batch_size=BATCH, **clap
    )
    _library(db, files)
    run = run_measured(
        [sys.executable, "-m", "beets", "clap-index", "-j", str(jobs)],
        env=beets_env(beetsdir),
    )
    if run.returncode != 0:
        raise RuntimeError(f"clap-index failed: {run.stderr.strip()[-500:]}")
    summary = run.stdout.strip().splitlines()[-1]
    if f"embedded {tracks}," not in summary:
        raise RuntimeError(f"clap-index did not embed everything: {summary}")
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        commits = conn.execute(
            "SELECT updated, count(*) FROM clap_state GROUP BY updated ORDER BY updated"
        ).fetchall()
    finally:
        conn.close()
    first, last = commits[0][0], commits[-1][0]
    return IndexRun(
        fmt,
        jobs,
        windows,
        tracks,
        run.wall,
        run.cpu,
        run.peak_rss,
        summary,
        steady_tracks=tracks - commits[0][1],
        steady_wall=last - first,
        steady_cpu=run.cpu_at(last) - run.cpu_at(first),
    )


@dataclass
class Profile:
    """CPU milliseconds per track of each stage, measured in this process."""

    fmt: str
    windows: int
    decode_ms: float
    resample_ms: float
    full_decode_ms: float
    inference_ms: float
    db_ms: float

    @property
    def total_ms(self) -> float:
        return self.decode_ms + self.resample_ms + self.inference_ms + self.db_ms


def profile(
    work: Path, bundle_path: Path, fmt: str, windows: int, tracks: int = 6
) -> Profile:
    """Time each stage on `tracks` files, one thread, as one worker runs it."""
    from beetsplug.clap import audio
    from beetsplug.clap.model import Bundle
    from beetsplug.clap.store import Embedded, Store
    from beetsplug.clap.workers import AudioEncoder

    bundle = Bundle.load(bundle_path, threads=1)
    encoder = AudioEncoder(str(bundle.path / "audio.onnx"), threads=1)
    files = make_tracks(work / "audio" / fmt, fmt, tracks)
    resample_cpu = [0.0]
    original = audio._resample

    def counted(*args: object, **kwargs: object) -> np.ndarray:
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            resample_cpu[0] += time.process_time() - start

    audio._resample = counted  # type: ignore[assignment]
    try:
        windows_of = []
        with timed() as decoding:
            for f in files:
                windows_of.append(
                    audio.load_windows(f, bundle.sample_rate, 3.0, windows)
                )
        resampling = resample_cpu[0]
        # The baseline: decode the whole file, then cut windows.
        with timed() as full:
            for f in files:
                _full_decode(f, bundle.sample_rate, windows)
    finally:
        audio._resample = original
    encoder.embed(windows_of[0])  # warm-up (allocations, kernels)
    with timed() as inference:
        vectors = [encoder.embed(w) for w in windows_of]
    dim = bundle.embedding_dim
    db = work / "profile-db" / "library.db"
    shutil.rmtree(db.parent, ignore_errors=True)
    db.parent.mkdir(parents=True)
    _library(db, files)
    with Store.open(db) as store:
        store.prepare(bundle.identity, dim, bundle.label, bundle.tag_names)
        done = [
            Embedded(i + 1, v[:dim], v[dim:] if len(v) > dim else None, 1.0, 1, 2)
            for i, v in enumerate(vectors)
        ]
        with timed() as writing:
            store.write_batch(bundle.identity, done, [])
    n = len(files)
    return Profile(
        fmt,
        windows,
        decode_ms=(decoding.cpu - resampling) / n * 1000,
        resample_ms=resampling / n * 1000,
        full_decode_ms=full.cpu / n * 1000,
        inference_ms=inference.cpu / n * 1000,
        db_ms=writing.cpu / n * 1000,
    )


def _full_decode(path: Path, rate: int, windows: int) -> np.ndarray:
    """Decode and resample a whole file (ffmpeg for m4a), then cut windows:
    what the plugin would do without seeking."""
    from beetsplug.clap import audio

    if path.suffix == ".m4a":
        mono = audio._ffmpeg_pcm(str(path), rate)
    else:
        import soundfile as sf

        data, native = sf.read(str(path), dtype="float32", always_2d=True)
        mono = audio._resample(data.mean(axis=1), native, rate)
    segments = audio.segments_from_array(mono, rate, 3.0, windows)
    return np.stack([audio._fit(s, rate * 3) for s in segments])
