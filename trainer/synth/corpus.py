"""Plan, render in parallel and write a synthetic corpus in the training data layout.

    DATA/audio/<split>/<track_id>.flac     16 kHz mono PCM_16
    DATA/captions/<split>.parquet          LP-MusicCaps columns + exact labels
    DATA/corpus.json                       counts, seed, soundfonts, render speed

Planning happens up front in one process (cheap and deterministic): every
base piece gets a style, a split, a soundfont and maybe a minimal pair.
Workers then compose and render pieces independently, each with its own
FluidSynth per soundfont, so the corpus depends on the seed, never on the
worker count.

espeak-ng, libfluidsynth and the soundfonts are checked before any folder is
made. corpus.json is written last; until then DATA/synth-unfinished marks
the folder as a build in progress, and a later build into it (any options)
removes what that build left and starts again, after checking that audio/,
captions/ and midi/ hold nothing synth does not write. A finished corpus
(corpus.json) and a folder without the marker are never removed.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import multiprocessing.pool
import os
import random
import resource
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer import vocab
from trainer.data import split_schema
from trainer.synth import render, voice
from trainer.synth.captions import clip_tags, write_captions
from trainer.synth.compose import Piece, PieceSpec, Variant, compose, pair_candidates
from trainer.synth.labels import absent_terms

SPLITS: tuple[str, ...] = ("train", "valid", "test", "test_shift")
# Minimal pairs cycle through these kinds; instruments twice, since each
# instrument family is judged on its own and needs its share of pairs.
PAIR_CYCLE: tuple[str, ...] = ("drums", "vocals", "instrument", "instrument")
ARTIST = "beets-clap synth"
WORKER_TIMEOUT_SECONDS = 300
# Written before audio/ and captions/, removed once corpus.json is: a folder
# holding it is a build of this command that did not finish.
UNFINISHED = "synth-unfinished"
# What a build writes under each of its folders: (split folders?, file suffix).
_LAYOUT: dict[str, tuple[bool, str]] = {
    "audio": (True, ".flac"),
    "captions": (False, ".parquet"),
    "midi": (True, ".mid"),
}
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@dataclass(frozen=True)
class CorpusConfig:
    out: Path
    clips: int
    seed: int = 0
    pair_share: float = (
        0.5  # share of base pieces rendered as a minimal pair (two clips)
    )
    valid_share: float = 0.1
    test_share: float = 0.1
    shift_share: float = (
        0.1  # share of base pieces rendered with TimGM6mb for test_shift
    )
    duration: float = 10.0
    workers: int = 0  # 0: one per CPU core
    keep_midi: bool = False


def _split_labels(n: int, config: CorpusConfig, rng: random.Random) -> list[str]:
    """Split per base piece, by quota (every non-empty share gets a piece if n >= 4)."""
    shares = {
        "test_shift": config.shift_share,
        "valid": (1 - config.shift_share) * config.valid_share,
        "test": (1 - config.shift_share) * config.test_share,
    }
    counts = {s: round(n * share) for s, share in shares.items()}
    if n >= 4:
        counts = {s: max(c, 1 if shares[s] > 0 else 0) for s, c in counts.items()}
    counts["train"] = n - sum(counts.values())
    if counts["train"] < 0:
        raise ValueError("split shares leave no room for training pieces")
    labels = [s for s in SPLITS for _ in range(counts[s])]
    rng.shuffle(labels)
    return labels


def plan(config: CorpusConfig) -> list[PieceSpec]:
    """Every base piece of the corpus, in order (deterministic for the seed)."""
    if config.clips < 1:
        raise ValueError("--clips must be at least 1")
    for name in ("pair_share", "valid_share", "test_share", "shift_share"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{name.replace('_', '-')} must be between 0 and 1")
    if config.duration < 3.0:
        raise ValueError("--duration must be at least 3 seconds (the models' window)")
    rng = random.Random(f"plan:{config.seed}")
    paired: list[bool] = []
    clips = 0
    while clips < config.clips:
        pair = config.clips - clips >= 2 and rng.random() < config.pair_share
        paired.append(pair)
        clips += 2 if pair else 1
    splits = _split_labels(len(paired), config, rng)

    styles_cycle: list[str] = []
    family_use: Counter[str] = Counter()
    pair_turn = 0
    specs = []
    for index, (is_pair, split) in enumerate(zip(paired, splits, strict=True)):
        if not styles_cycle:
            styles_cycle = list(vocab.STYLES)
            rng.shuffle(styles_cycle)
        style = styles_cycle.pop()
        pair = None
        if is_pair:
            options = pair_candidates(style)
            for _ in range(len(PAIR_CYCLE)):
                kind = PAIR_CYCLE[pair_turn % len(PAIR_CYCLE)]
                pair_turn += 1
                if options[kind]:
                    break
            if kind == "instrument":
                least = min(family_use[f] for f in options["instrument"])
                family = rng.choice(
                    [f for f in options["instrument"] if family_use[f] == least]
                )
                family_use[family] += 1
                pair = f"instrument:{family}"
            else:
                pair = kind
        soundfont = (
            render.SHIFT_SOUNDFONT if split == "test_shift" else render.TRAIN_SOUNDFONT
        )
        specs.append(
            PieceSpec(
                index, config.seed, split, soundfont, style, pair, config.duration
            )
        )
    return specs


def variant_attributes(piece: Piece, variant: Variant) -> dict:
    """The piece's attributes as they are true of one clip (the removed stem gone)."""
    attrs = json.loads(json.dumps(piece.attributes))
    for stem in variant.removed:
        if stem == "drums":
            attrs["drums"], attrs["drum_kit"] = False, None
        elif stem == "vocals":
            attrs["vocals"], attrs["vocal_kind"], attrs["voice_register"] = (
                False,
                None,
                None,
            )
            attrs["instruments"] = [i for i in attrs["instruments"] if i != "choir"]
        else:
            attrs["instruments"] = [i for i in attrs["instruments"] if i != stem]
            if attrs["lead"] == stem:
                attrs["lead"] = None
        attrs["programs"].pop(stem, None)
    return attrs


# ------------------------------------------------------------------ workers
_SYNTHS: dict[str, render.ChannelSynth] = {}


def _synth(name: str) -> render.ChannelSynth:
    """This process's synth for a soundfont: loaded once, reused for every piece."""
    if name not in _SYNTHS:
        _SYNTHS[name] = render.ChannelSynth(render.SOUNDFONTS[name], render.RENDER_RATE)
    return _SYNTHS[name]


def _init_worker() -> None:
    """A forked worker leaves Ctrl-C to the parent, which ends it (Pool.terminate
    sends SIGTERM, taken at its default: die quietly), and drops the parent's
    synths (not to be shared) to build its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Blocked by the parent while it forked: see _start_pool.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    _SYNTHS.clear()


def _start_pool(workers: int) -> multiprocessing.pool.Pool:
    """Render workers, forked with Ctrl-C and SIGTERM held back until each has
    set its own handlers: a signal in between would otherwise reach a worker
    through the parent's handlers and print its traceback. The pool's own
    threads, started meanwhile, keep them blocked (Python runs handlers in the
    main thread anyway), so workers it forks later start blocked too."""
    # fork: workers start at once and need no importable __main__ (spawn
    # re-imports it, and respawns workers forever when it cannot). The
    # parent holds no threads here: FluidSynth runs without audio driver.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        return multiprocessing.get_context("fork").Pool(
            workers, initializer=_init_worker
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def render_piece(spec: PieceSpec, out: Path, keep_midi: bool = False) -> list[dict]:
    """Compose, render and write every clip of one base piece; returns their rows."""
    import soundfile as sf

    piece = compose(spec)
    stems = render.render_stems(piece, _synth(spec.soundfont))
    gain = render.mix_gain(stems, piece.attributes["energy"])
    rows = []
    if keep_midi:
        midi_dir = out / "midi" / spec.split
        midi_dir.mkdir(parents=True, exist_ok=True)
        piece.midi().write(str(midi_dir / f"{spec.piece_id}.mid"))
    for variant in piece.variants:
        track_id = f"{spec.piece_id}-{variant.suffix}"
        rel = f"{spec.split}/{track_id}.flac"
        audio = render.mix(stems, gain, variant.removed)
        sf.write(
            out / "audio" / rel,
            audio,
            render.SAMPLE_RATE,
            subtype="PCM_16",
            format="FLAC",
        )
        attrs = variant_attributes(piece, variant)
        attrs["gain_db"] = round(20 * math.log10(gain), 4)
        tags = clip_tags(attrs)
        absent = absent_terms(tags, attrs["style"])
        captions = write_captions(
            attrs, absent, random.Random(f"caption:{spec.seed}:{track_id}")
        )
        title = f"{attrs['style'].title()} piece {spec.index}"
        if variant.removed:
            title += f" (no {variant.removed[0]})"
        rows.append(
            {
                "track_id": track_id,
                "title": title,
                "artist_name": ARTIST,
                "release": f"synthetic corpus, seed {spec.seed}",
                "year": 0,
                "tag": tags,
                **captions,
                "path": rel,
                "attributes": json.dumps(attrs),
                "absent": absent,
                "pair_id": f"{spec.piece_id}:{variant.pair_attribute}"
                if variant.pair_attribute
                else None,
                "pair_attribute": variant.pair_attribute,
                "base_piece": spec.piece_id,
                "soundfont": spec.soundfont,
                "split": spec.split,
            }
        )
    return rows


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (espeak-ng is a child)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _render_task(args: tuple[PieceSpec, str, bool]) -> tuple[list[dict], float]:
    """One piece's rows and the CPU seconds it cost (render speed on a shared machine
    is measured in CPU time: wall time there depends on the neighbours)."""
    spec, out, keep_midi = args
    before = _cpu_seconds()
    rows = render_piece(spec, Path(out), keep_midi)
    return rows, _cpu_seconds() - before


# ------------------------------------------------------------------- writer
def write_split(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = split_schema()
    rows = sorted(rows, key=lambda r: r["track_id"])
    table = pa.table(
        {name: [r[name] for r in rows] for name in schema.names}, schema=schema
    )
    pq.write_table(table, path)


def is_unfinished(out: Path) -> bool:
    """Whether `out` holds a build of this command that did not finish."""
    return (Path(out) / UNFINISHED).is_file()


def _foreign_path(out: Path) -> Path | None:
    """The first thing under audio/, captions/ or midi/ that a build does not
    write (a build writes only files there: no links, no other folders)."""
    for top, (split_folders, suffix) in _LAYOUT.items():
        root = out / top
        if not root.exists() and not root.is_symlink():
            continue
        if root.is_symlink() or not root.is_dir():
            return root
        for entry in sorted(root.iterdir()):
            files = [entry]
            if split_folders:
                if entry.name not in SPLITS or entry.is_symlink() or not entry.is_dir():
                    return entry
                files = sorted(entry.iterdir())
            elif entry.stem not in SPLITS:
                return entry
            for path in files:
                if path.suffix != suffix or path.is_symlink() or not path.is_file():
                    return path
    return None


def _check_out(out: Path) -> bool:
    """Whether `out` holds an unfinished build to clear; raises where `out`
    holds a corpus, or audio/ or captions/ this command did not leave."""
    if (out / "corpus.json").exists():
        raise ValueError(
            f"{out} already holds a corpus (corpus.json); choose another --out"
        )
    if not is_unfinished(out):
        if any((out / name).exists() for name in ("audio", "captions")):
            raise ValueError(
                f"{out} holds audio/ or captions/ but no corpus.json, and no "
                "synth build left them unfinished; choose another --out or "
                "remove them"
            )
        return False
    foreign = _foreign_path(out)
    if foreign is not None:
        raise ValueError(
            f"{out} holds an unfinished synth build, and {foreign}, which synth "
            "does not write; remove it (or the folder), or choose another --out"
        )
    return True


def _check_tools(specs: list[PieceSpec]) -> None:
    """espeak-ng, libfluidsynth and every soundfont the plan uses, loaded as
    rendering will (a one-process build keeps these synths)."""
    voice.check_espeak()
    for name in sorted({s.soundfont for s in specs}):
        _synth(name)


def build_corpus(config: CorpusConfig, log=None) -> dict:
    """Render the corpus of `config` into config.out; returns corpus.json's content."""
    from trainer.synth.fluid import fluidsynth_version

    out = Path(config.out)
    clear = _check_out(out)
    specs = plan(config)
    _check_tools(specs)
    if clear:
        for name in _LAYOUT:
            if (out / name).exists():
                shutil.rmtree(out / name)
        (log or log_stderr)(
            f"synth: {out} held an unfinished build (no corpus.json): "
            "removed it, starting again"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / UNFINISHED).write_text(
        "python -m trainer synth is building this corpus; corpus.json, written "
        "last, marks it finished and this file goes. A build into this folder "
        "removes an unfinished one and starts again.\n"
    )
    for split in SPLITS:
        (out / "audio" / split).mkdir(parents=True, exist_ok=True)
    (out / "captions").mkdir(parents=True, exist_ok=True)
    workers = config.workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(specs)))
    tasks = [(spec, str(out), config.keep_midi) for spec in specs]
    rows: list[dict] = []
    cpu_seconds = 0.0
    started = time.perf_counter()
    next_report = max(1, len(specs) // 20)
    pool = None
    try:
        if workers == 1:
            results = map(_render_task, tasks)
        else:
            pool = _start_pool(workers)
            pending = pool.imap_unordered(
                _render_task, tasks
            )  # chunksize 1: an iterator with next(timeout)
            # A worker that dies or hangs must not hang the run: bound each wait.
            results = (pending.next(timeout=WORKER_TIMEOUT_SECONDS) for _ in tasks)
        for done, (piece_rows, cpu) in enumerate(results, 1):
            rows.extend(piece_rows)
            cpu_seconds += cpu
            if log and (done % next_report == 0 or done == len(specs)):
                rate = len(rows) / max(time.perf_counter() - started, 1e-9) * 60
                log(f"synth: {len(rows)}/{config.clips} clips ({rate:.0f} clips/min)")
    except multiprocessing.TimeoutError:
        raise ValueError(
            f"a render worker produced nothing for {WORKER_TIMEOUT_SECONDS} s"
        ) from None
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    seconds = time.perf_counter() - started

    by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for row in rows:
        by_split[row["split"]].append(row)
    for split, split_rows in by_split.items():
        write_split(split_rows, out / "captions" / f"{split}.parquet")
    summary = _summary(
        config,
        specs,
        rows,
        by_split,
        seconds,
        cpu_seconds,
        workers,
        fluidsynth_version(),
    )
    (out / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / UNFINISHED).unlink()
    return summary


def _summary(
    config, specs, rows, by_split, seconds, cpu_seconds, workers, fs_version
) -> dict:
    attrs = [json.loads(r["attributes"]) for r in rows]
    pairs = Counter(
        r["pair_attribute"]
        for r in rows
        if r["pair_attribute"] and r["track_id"].endswith("-a")
    )
    return {
        "generator": "trainer.synth",
        "format": 1,
        "seed": config.seed,
        "clips": len(rows),
        "base_pieces": len(specs),
        "duration_seconds": config.duration,
        "sample_rate": render.SAMPLE_RATE,
        "render_rate": render.RENDER_RATE,
        "audio_format": "FLAC PCM_16 mono",
        "pair_share": config.pair_share,
        "soundfonts": {
            name: {
                "path": str(path),
                "bytes": path.stat().st_size,
                "splits": sorted({s.split for s in specs if s.soundfont == name}),
            }
            for name, path in render.SOUNDFONTS.items()
        },
        "splits": {
            split: {
                "clips": len(split_rows),
                "base_pieces": len({r["base_piece"] for r in split_rows}),
                "pairs": sum(
                    1
                    for r in split_rows
                    if r["pair_id"] and r["track_id"].endswith("-a")
                ),
            }
            for split, split_rows in by_split.items()
        },
        "pairs": dict(sorted(pairs.items())),
        "styles": dict(sorted(Counter(a["style"] for a in attrs).items())),
        "instruments": dict(
            sorted(Counter(i for a in attrs for i in a["instruments"]).items())
        ),
        "drums": sum(a["drums"] for a in attrs),
        "vocals": dict(
            sorted(Counter(a["vocal_kind"] or "none" for a in attrs).items())
        ),
        "render": {
            "seconds": round(seconds, 2),
            "workers": workers,
            "clips_per_minute": round(len(rows) / max(seconds, 1e-9) * 60, 1),
            "cpu_seconds_per_clip": round(cpu_seconds / max(len(rows), 1), 4),
            # What two dedicated cores would sustain at the measured CPU cost.
            "clips_per_minute_2_cores_cpu": round(
                2 * 60 * len(rows) / max(cpu_seconds, 1e-9), 1
            ),
            "audio_minutes": round(len(rows) * config.duration / 60, 1),
            "fluidsynth": fs_version,
            "cpu_count": os.cpu_count(),
        },
        "gain_db": {
            "min": round(float(np.min([a["gain_db"] for a in attrs])), 2)
            if attrs
            else None,
            "max": round(float(np.max([a["gain_db"] for a in attrs])), 2)
            if attrs
            else None,
        },
    }


def log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
