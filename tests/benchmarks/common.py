"""Shared benchmark helpers: music, libraries, bundles, timers, memory, options."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TRACK_SECONDS = 180.0
SOURCE_RATE = 44100
# Container -> ffmpeg encoder arguments (typical library settings).
ENCODERS: dict[str, list[str]] = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "5"],
    "m4a": ["-c:a", "aac", "-b:a", "192k"],
}


def music(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Stereo [n, 2] float32 with the texture of music: chords changing
    every beat or two, a bass line, noise-burst drums and a little reverb-like
    smear, so that encoders and decoders do realistic amounts of work."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    bpm = rng.uniform(70, 150)
    beat = 60.0 / bpm
    out = np.zeros((n, 2), np.float32)
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    step = round(beat * 2 * rate)
    for start in range(0, n, step):
        seg = slice(start, min(start + step, n))
        tt = t[seg] - t[start]
        degree = rng.choice([0, 3, 5, 7, 8, 10])
        f0 = root * 2 ** (degree / 12)
        env = np.exp(-tt * rng.uniform(0.5, 3.0))
        chord = sum(
            np.sin(2 * np.pi * f0 * r * h * tt) / (h * 1.5)
            for r in (1.0, 1.26, 1.5)
            for h in (1, 2, 3)
        )
        bass = np.sin(2 * np.pi * f0 / 2 * tt)
        pan = rng.uniform(0.3, 0.7)
        out[seg, 0] += (0.15 * chord * env * pan + 0.2 * bass * env).astype(np.float32)
        out[seg, 1] += (0.15 * chord * env * (1 - pan) + 0.2 * bass * env).astype(
            np.float32
        )
    hit = round(beat * rate)
    decay = np.exp(-np.arange(hit) / (0.04 * rate)).astype(np.float32)
    for start in range(0, n - hit, hit):
        burst = rng.standard_normal(hit).astype(np.float32) * decay * 0.25
        out[start : start + hit] += burst[:, None]
    out += 0.003 * rng.standard_normal(out.shape).astype(np.float32)
    return np.clip(out / max(1e-6, np.abs(out).max()) * 0.9, -1, 1)


def make_tracks(folder: Path, fmt: str, count: int, distinct: int = 6) -> list[Path]:
    """`count` files of TRACK_SECONDS in `fmt`: `distinct` encoded tracks,
    copied (decoding cost does not depend on which copy is read)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for i in range(min(distinct, count)):
        dst = folder / f"src{i:02d}.{fmt}"
        if not dst.exists():
            wav = folder / f"src{i:02d}.wav"
            sf.write(wav, music(TRACK_SECONDS, SOURCE_RATE, seed=i), SOURCE_RATE)
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", str(wav)]
                + ENCODERS[fmt]
                + [str(dst)],
                check=True,
            )
            wav.unlink()
        sources.append(dst)
    files = []
    for i in range(count):
        dst = folder / f"track{i:04d}.{fmt}"
        if not dst.exists():
            shutil.copyfile(sources[i % len(sources)], dst)
        files.append(dst)
    return files


# Bundles --------------------------------------------------------------------


def build_bundle(out: Path, *, quantize: bool = True, dim: int | None = None) -> Path:
    """A bundle with the shipped model's architecture (trainer config
    clap_default: two frozen musicnn backbones, MiniLM, projections) and
    untrained projection heads: the right graphs for speed, not quality.

    Cached in `out`, but rebuilt when the exporter, the models or the recipe
    changed since (a stale cached graph would time the old quantization)."""
    import hashlib

    sources = [
        *sorted((REPO / "trainer" / "export").glob("*.py")),
        REPO / "trainer" / "configs" / "clap_default.yaml",
        *sorted((REPO / "trainer" / "models").glob("*.py")),
    ]
    digest = hashlib.sha256(f"{quantize} {dim}".encode())
    for source in sources:
        digest.update(source.read_bytes())
    stamp = out / ".built-from"
    if (out / "manifest.json").exists():
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return out
        shutil.rmtree(out)
    code = (
        "import sys, torch\n"
        "from trainer.config import load_config\n"
        "from trainer.models import build_model\n"
        "from trainer.export import export_model_bundle\n"
        "torch.manual_seed(0)\n"
        "cfg = load_config('clap_default')\n"
        f"dim = {dim!r}\n"
        "if dim: cfg.model.embedding_dim = dim\n"
        "model = build_model(cfg.model)\n"
        f"export_model_bundle(model, cfg, {str(out)!r}, name='clap-default-arch',"
        f" version='bench', quantize={quantize!r})\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stamp.write_text(digest.hexdigest())
    return out


def bundle_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


# Timing and memory ------------------------------------------------------------


@dataclass
class Timing:
    """Wall and CPU seconds of one measured block (CPU includes children)."""

    wall: float = 0.0
    cpu: float = 0.0


def _cpu_seconds() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@contextmanager
def timed() -> Iterator[Timing]:
    timing = Timing()
    wall, cpu = time.perf_counter(), _cpu_seconds()
    try:
        yield timing
    finally:
        timing.wall = time.perf_counter() - wall
        timing.cpu = _cpu_seconds() - cpu


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) in the samples' unit."""
    arr = np.asarray(samples, dtype=np.float64)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def repeat(fn: Callable[[], Any], n: int, warmup: int = 1) -> list[float]:
    """Wall seconds of n calls after `warmup` unmeasured ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _tree(pid: int) -> dict[int, tuple[int, float]]:
    """pid -> (resident bytes, CPU seconds) for a process and all its
    descendants (Linux /proc)."""
    out: dict[int, tuple[int, float]] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            rss = 0
            with open(f"/proc/{current}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) * 1024
                        break
            with open(f"/proc/{current}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / _TICKS
            out[current] = (rss, cpu)
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return out


@dataclass
class Run:
    """A finished subprocess: output, wall time, peak RSS of its tree."""

    returncode: int
    stdout: str
    stderr: str
    wall: float
    peak_rss: int
    cpu: float
    # (epoch seconds, CPU seconds of the whole tree so far), every ~20 ms
    series: list[tuple[float, float]] = field(default_factory=list)

    def cpu_at(self, epoch: float) -> float:
        """The tree's CPU seconds at a moment of the run (interpolated)."""
        times = [t for t, _ in self.series]
        values = [c for _, c in self.series]
        return float(np.interp(epoch, times, values)) if times else 0.0


def run_measured(
    cmd: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Run:
    """Run a command, sampling its process tree every 20 ms: peak resident
    memory (summed over processes) and CPU time (the last value seen of
    each process; a process's last 20 ms may be missed)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]
    cpu: dict[int, float] = {}
    series: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree = _tree(proc.pid)
            peak[0] = max(peak[0], sum(rss for rss, _ in tree.values()))
            for pid, (_, seconds) in tree.items():
                cpu[pid] = max(cpu.get(pid, 0.0), seconds)
            series.append((time.time(), sum(cpu.values())))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    return Run(proc.returncode, out, err, wall, peak[0], sum(cpu.values()), series)


def beets_env(beetsdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["BEETSDIR"] = str(beetsdir)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
    )
    return env


def write_beets_config(
    beetsdir: Path, library: Path, bundle: Path | None, plugin: bool = True, **clap: Any
) -> Path:
    beetsdir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"directory: {beetsdir / 'music'}",
        f"library: {library}",
        "create_backup_before_migrations: no",
    ]
    # An explicit list either way: with no `plugins` at all, beets loads its
    # default plugins (musicbrainz), which would skew a with/without ratio.
    lines.append("plugins: clap" if plugin else "plugins: []")
    if plugin:
        settings = {"model": str(bundle) if bundle else "", **clap}
        lines.append("clap:")
        lines.extend(f"    {k}: {v}" for k, v in settings.items() if v != "")
    (beetsdir / "config.yaml").write_text("\n".join(lines) + "\n")
    return beetsdir


def load_average() -> float:
    return os.getloadavg()[0]


def add_weight_options(parser: argparse.ArgumentParser, helps: dict[str, str]) -> None:
    """A float option `--NAME` for each plugin weight NAME (its config key, `_`
    written `-`), None when not given: the script then keeps its own value."""
    for name, help_text in helps.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=float, default=None, help=help_text
        )
