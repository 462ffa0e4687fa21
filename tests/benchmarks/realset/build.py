"""Build the real-recording check set from the Debian packages named in labels.json.

Why this exists: the default model is trained on a synthetic MIDI corpus, but
it is judged on real recordings. This script turns a small, committed recipe
file (labels.json: which package, which file, which seconds, how layers are
mixed, and the labels with their evidence) into audio, so the audio itself is
never committed and anyone with Debian's archive can rebuild it bit for bit.

    python tests/benchmarks/realset/build.py --out /tmp/realset

Packages are fetched with `apt-get download NAME=VERSION` and unpacked with
`dpkg-deb -x` into a cache folder: nothing is installed system-wide. Every
source file is checked against the sha256 recorded in labels.json, so a
changed package is an error rather than a silently different benchmark.

Output (the team's Contract 3 data layout, so `python -m trainer evaluate`
reads it too):

    OUT/audio/realset/<id>.flac     16 kHz mono FLAC, one per clip
    OUT/captions/test.parquet       LP-MusicCaps-MSD columns + attributes/absent/pair
    OUT/corpus.json                 provenance: packages, versions, licences, counts
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

HERE = Path(__file__).resolve().parent
# The repository root on the path: the script hashes sources as the plugin
# hashes bundles (make_labels reaches it as build.sha256_file).
sys.path.insert(0, str(HERE.parents[2]))
from beetsplug.clap.model import sha256_file  # noqa: E402
from trainer.realcorpus import program_reason  # noqa: E402

LABELS = HERE / "labels.json"
SAMPLE_RATE = 16000
# Every layer is brought to this RMS before its gain_db is applied, so a
# recipe's "voice 4 dB above the music" means the same for any two sources.
LAYER_RMS_DB = -20.0
PEAK = 0.9

# 16-step (one bar of sixteenth notes) drum grids: role -> [(step, velocity)].
# They only need to be plausible grooves: every clip that uses them is
# labelled "drums present" because of what is played, not how well.
PATTERNS: dict[str, dict[str, list[tuple[int, float]]]] = {
    "rock": {
        "kick": [(0, 1.0), (8, 0.9), (10, 0.8)],
        "snare": [(4, 1.0), (12, 1.0)],
        "hat": [(s, 0.7 if s % 4 == 0 else 0.5) for s in range(0, 16, 2)],
    },
    "halftime": {
        "kick": [(0, 1.0), (3, 0.7), (10, 0.9)],
        "snare": [(8, 1.0)],
        "hat": [(s, 0.6 if s % 4 == 0 else 0.45) for s in range(0, 16, 2)],
    },
    "funk": {
        "kick": [(0, 1.0), (3, 0.8), (7, 0.7), (10, 0.9)],
        "snare": [(4, 1.0), (12, 1.0), (15, 0.4)],
        "hat": [(s, 0.6 if s % 2 == 0 else 0.35) for s in range(16)],
    },
    "ride": {
        "kick": [(0, 1.0), (10, 0.8)],
        "snare": [(4, 0.9), (12, 0.9)],
        "ride": [(s, 0.6 if s % 4 == 0 else 0.45) for s in range(0, 16, 2)],
    },
}


class BuildError(Exception):
    """A one-line reason the set cannot be built as recorded in labels.json."""


class UsageError(BuildError):
    """A one-line reason the build cannot run here: a tool or a folder it needs."""


# What each outside program is needed for, said when it is missing.
TOOLS = {
    "apt-get": "it downloads the pinned packages; the build needs Debian or Ubuntu",
    "dpkg-deb": "it unpacks the packages; the build needs Debian or Ubuntu",
    "ffmpeg": "it decodes the G.722 and GSM speech prompts",
}


def _run(cmd: Sequence[str], text: bool = True, **kwargs: Any) -> Any:
    """subprocess.run with output captured; a program not on PATH is a UsageError."""
    try:
        return subprocess.run(cmd, capture_output=True, text=text, **kwargs)
    except FileNotFoundError as exc:
        raise UsageError(
            f"{cmd[0]} not found on PATH ({TOOLS.get(cmd[0], 'the build runs it')})"
        ) from exc


def _mkdir(path: Path, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create {path}: {exc.strerror} (check {option})"
        ) from exc


# --------------------------------------------------------------------------
# Packages


def default_cache() -> Path:
    """Where unpacked packages live between runs (~800 MB unpacked)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("beets-clap")) / "realset"


def fetch_package(name: str, version: str, cache: Path) -> Path:
    """Download NAME=VERSION with apt-get and unpack it; returns the unpacked root.

    Reuses an earlier unpack (marked by a stamp file naming the version), so
    a rebuild costs no network. A .deb that does not unpack (cut short by an
    interrupted download, say) is deleted, so the next run downloads it again.
    """
    root = cache / "pkgs" / name
    stamp = root / ".realset-version"
    if stamp.is_file() and stamp.read_text().strip() == version:
        return root
    debs = cache / "debs"
    _mkdir(debs, "--cache")
    # apt-get names an epoch "1:" as "1%3a" in the file name; older apt drops it
    wants = (
        f"{name}_{version.replace(':', '%3a')}_",
        f"{name}_{version.split(':')[-1]}_",
    )
    found = [p for p in debs.glob(f"{name}_*.deb") if p.name.startswith(wants)]
    if not found:
        proc = _run(["apt-get", "download", f"{name}={version}"], cwd=debs)
        found = [p for p in debs.glob(f"{name}_*.deb") if p.name.startswith(wants)]
        if proc.returncode != 0 or not found:
            # apt-get says why on an "E:" line; warnings may follow it
            reason = program_reason(proc.stderr, prefer="E:")
            raise BuildError(
                f"cannot download {name}={version}: {reason} "
                "(run apt-get update; the set is pinned to Debian 12 bookworm versions)"
            )
    deb = found[0]
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    proc = _run(["dpkg-deb", "-x", str(deb), str(root)])
    if proc.returncode != 0:
        deb.unlink()
        shutil.rmtree(root)
        raise BuildError(
            f"cannot unpack {deb}: {program_reason(proc.stderr)}; "
            "deleted it, the next run downloads it again"
        )
    stamp.write_text(version + "\n")
    deb.unlink()  # the unpacked tree (and its stamp) is what gets reused
    return root


# --------------------------------------------------------------------------
# Decoding


def decode(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Whole file as mono float32 at `sample_rate`.

    libsndfile reads the wav/flac/ogg/aiff sources; Asterisk's raw G.722
    prompts (16 kHz wideband speech) need ffmpeg's g722 demuxer.
    """
    if path.suffix.lower() == ".g722":
        return _decode_ffmpeg(path, sample_rate, ["-f", "g722"])
    if path.suffix.lower() == ".gsm":  # headerless GSM 06.10, 8 kHz telephone speech
        return _decode_ffmpeg(path, sample_rate, ["-f", "gsm", "-ar", "8000"])
    return decode_bytes(path.read_bytes(), sample_rate, str(path))


def decode_bytes(
    blob: bytes, sample_rate: int = SAMPLE_RATE, name: str = ""
) -> np.ndarray:
    """A file's bytes (wav/flac/ogg/opus: what libsndfile reads) as mono float32."""
    return decode_stream(io.BytesIO(blob), sample_rate, name)


def decode_stream(
    stream: BinaryIO, sample_rate: int = SAMPLE_RATE, name: str = ""
) -> np.ndarray:
    """A readable binary file object (what libsndfile reads) as mono float32.

    libsndfile reads it through cffi callbacks, so a Ctrl-C is held until
    the read returns (see _sigint_held).
    """
    import soundfile as sf

    with _sigint_held():
        try:
            data, rate = sf.read(stream, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise BuildError(f"cannot decode {name}: {exc}") from exc
    mono = data.mean(axis=1)
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold a Ctrl-C that arrives in the block, and act on it when the block ends.

    cffi prints and drops an exception raised in a C callback, and soundfile
    reads a file object through such callbacks: a KeyboardInterrupt raised
    there would only end the read early, as if the file ended, and the build
    would go on with the shortened audio.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # Python runs signal handlers in the main thread only
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        if callable(previous):
            previous(signal.SIGINT, None)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


def _decode_ffmpeg(
    path: Path, sample_rate: int, input_args: Sequence[str]
) -> np.ndarray:
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        *input_args,
        "-i",
        str(path),
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "-f",
        "f32le",
        "-",
    ]
    proc = _run(cmd, text=False)
    if proc.returncode != 0:
        raise BuildError(
            f"cannot decode {path}: {proc.stderr.decode(errors='replace').strip()}"
        )
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)


# --------------------------------------------------------------------------
# Rendering


class Sources:
    """Resolves (package, path) to checked, decoded audio; caches recent decodes."""

    KEEP = 64  # decoded files kept (one-shots are reused across many clips)

    def __init__(self, recipe: dict[str, Any], cache: Path) -> None:
        self.packages: dict[str, dict[str, Any]] = recipe["packages"]
        self.cache = cache
        self._roots: dict[str, Path] = {}
        self._audio: dict[tuple[str, str], np.ndarray] = {}
        self._checked: set[tuple[str, str]] = set()

    def root(self, package: str) -> Path:
        if package not in self._roots:
            if package not in self.packages:
                raise BuildError(
                    f"labels.json uses package {package} not listed in 'packages'"
                )
            version = self.packages[package]["version"]
            self._roots[package] = fetch_package(package, version, self.cache)
        return self._roots[package]

    def file(self, package: str, path: str, sha256: str | None) -> Path:
        full = self.root(package) / path
        if not full.is_file():
            raise BuildError(f"{package}: {path} is not in the package")
        key = (package, path)
        if sha256 and key not in self._checked:
            got = sha256_file(full)
            if got != sha256:
                # The .deb is gone once unpacked, so a damaged unpacked file
                # would fail every run: the package is unpacked anew instead.
                root = self._roots.pop(package)
                shutil.rmtree(root)
                raise BuildError(
                    f"{package}: {path} sha256 {got[:12]} != recorded {sha256[:12]}; "
                    f"deleted the unpacked package {root}, the next run "
                    "downloads and unpacks it again"
                )
            self._checked.add(key)
        return full

    def audio(
        self, package: str, path: str, sha256: str | None, member: str | None = None
    ) -> np.ndarray:
        """Decoded audio of a file, or of `member` inside a Qt resource file."""
        key = (package, path if member is None else f"{path}#{member}")
        if key not in self._audio:
            full = self.file(package, path, sha256)
            if member is None:
                self._audio[key] = decode(full)
            else:
                members = rcc_members(full.read_bytes())
                if member not in members:
                    raise BuildError(f"{package}: {member} is not in {path}")
                self._audio[key] = decode_bytes(members[member], name=member)
            while len(self._audio) > self.KEEP:  # oldest first: whole tracks are big
                del self._audio[next(iter(self._audio))]
        return self._audio[key]


def rcc_members(blob: bytes) -> dict[str, bytes]:
    """The files inside a Qt resource bundle (.rcc), by their resource path.

    GCompris ships each activity's sounds in one .rcc; the format is a header
    (magic, version, tree/data/names offsets), a tree of fixed-size nodes, a
    names table (UTF-16) and a data area (zlib when a node's flag 1 is set).
    """
    import struct
    import zlib

    if blob[:4] != b"qres":
        raise BuildError("not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node = 14 + (8 if version >= 2 else 0)

    def name(off: int) -> str:
        (n,) = struct.unpack(">H", blob[names + off : names + off + 2])
        return blob[names + off + 6 : names + off + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes] = {}
    stack = [(0, "")]
    while stack:
        i, prefix = stack.pop()
        base = tree + i * node
        name_off, flags = struct.unpack(">IH", blob[base : base + 6])
        path = f"{prefix}/{name(name_off)}" if i else ""
        path = path.lstrip("/")
        if flags & 2:  # a directory: child count, first child index
            count, first = struct.unpack(">II", blob[base + 6 : base + 14])
            stack += [(first + c, path) for c in range(count)]
            continue
        (offset,) = struct.unpack(">I", blob[base + 10 : base + 14])
        (size,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
        raw = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & 4:
            raise BuildError(f"{path}: zstd-compressed resource not supported")
        out[path] = zlib.decompress(raw[4:]) if flags & 1 else raw
    return out


def _cut(x: np.ndarray, start: float, end: float) -> np.ndarray:
    a, b = round(start * SAMPLE_RATE), round(end * SAMPLE_RATE)
    if b > len(x) + SAMPLE_RATE // 100:
        raise BuildError(
            f"segment {start}-{end} s runs past the end ({len(x) / SAMPLE_RATE:.2f} s)"
        )
    return x[a:b]


def _fill(x: np.ndarray, n: int, loop: bool) -> np.ndarray:
    """Exactly n samples: looped (short samples and drum breaks) or zero-padded."""
    if len(x) == 0:
        raise BuildError("empty layer")
    if len(x) >= n:
        return x[:n]
    if loop:
        return np.tile(x, -(-n // len(x)))[:n]
    return np.pad(x, (0, n - len(x)))


def render_drums(layer: dict[str, Any], sources: Sources, n: int) -> np.ndarray:
    """Sequence real one-shot drum samples on a PATTERNS grid at layer['bpm']."""
    pattern = PATTERNS[layer["pattern"]]
    step = 60.0 / float(layer["bpm"]) / 4.0  # a sixteenth note, seconds
    bar = 16 * step
    offset = float(layer.get("offset", 0.0))
    out = np.zeros(n + 4 * SAMPLE_RATE, np.float32)
    hits = layer["hits"]
    crash = hits.get("crash")
    bar_start = offset - bar * np.ceil(offset / bar) if offset > 0 else offset
    index = 0
    while bar_start < n / SAMPLE_RATE:
        for role, notes in pattern.items():
            hit = hits.get(role) or (hits.get("hat") if role == "ride" else None)
            if hit is None:
                raise BuildError(f"drum layer lacks a '{role}' sample")
            sample = sources.audio(layer["package"], hit["path"], hit.get("sha256"))
            for s, velocity in notes:
                t = bar_start + s * step
                if t < 0:
                    continue
                a = round(t * SAMPLE_RATE)
                if a >= n:
                    continue
                seg = sample[: len(out) - a]
                out[a : a + len(seg)] += velocity * seg
        if crash is not None and index % 4 == 0 and bar_start >= 0:
            sample = sources.audio(layer["package"], crash["path"], crash.get("sha256"))
            a = round(bar_start * SAMPLE_RATE)
            seg = sample[: len(out) - a]
            out[a : a + len(seg)] += 0.6 * seg
        bar_start += bar
        index += 1
    return out[:n]


def render_layer(layer: dict[str, Any], sources: Sources, n: int) -> np.ndarray:
    kind = layer["type"]
    if kind == "segment":
        x = sources.audio(
            layer["package"], layer["path"], layer.get("sha256"), layer.get("member")
        )
        return _fill(_cut(x, layer["start"], layer["end"]), n, layer.get("loop", False))
    if kind == "stems":  # simultaneous stems of one song, summed at their own levels
        parts = [
            _cut(
                sources.audio(layer["package"], p["path"], p.get("sha256")),
                layer["start"],
                layer["end"],
            )
            for p in layer["stems"]
        ]
        length = min(len(p) for p in parts)
        return _fill(sum(p[:length] for p in parts), n, False)
    if kind == "concat":  # speech prompts one after another with short gaps
        gap = np.zeros(round(float(layer.get("gap", 0.4)) * SAMPLE_RATE), np.float32)
        pieces: list[np.ndarray] = []
        for p in layer["parts"]:
            x = sources.audio(p["package"], p["path"], p.get("sha256"))
            pieces += [_cut(x, p["start"], p["end"]), gap]
        return _fill(np.concatenate(pieces[:-1]), n, False)
    if kind == "drums":
        return render_drums(layer, sources, n)
    raise BuildError(f"unknown layer type {kind!r}")


def rms_db(x: np.ndarray) -> float:
    return float(
        20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)
    )


def render_clip(clip: dict[str, Any], sources: Sources) -> np.ndarray:
    """Mix the clip's layers (each RMS-normalised, then gain_db) and peak-normalise."""
    n = round(float(clip["duration"]) * SAMPLE_RATE)
    mix = np.zeros(n, np.float64)
    for layer in clip["layers"]:
        x = render_layer(layer, sources, n).astype(np.float64)
        level = rms_db(x)
        if level < -80:
            raise BuildError(f"clip {clip['id']}: a {layer['type']} layer is silent")
        mix += x * 10 ** (
            (LAYER_RMS_DB - level + float(layer.get("gain_db", 0.0))) / 20
        )
    peak = float(np.max(np.abs(mix)))
    return (mix * (PEAK / peak)).astype(np.float32)


# --------------------------------------------------------------------------
# Contract 3 rows


def caption_for(labels: dict[str, Any]) -> str:
    """A plain caption from the known labels only (unknowns are not mentioned)."""
    parts: list[str] = []
    kind = labels.get("vocal_kind")
    genres = list(
        labels.get("genres") or ([labels["style"]] if labels.get("style") else [])
    )
    instruments = list(labels.get("instruments") or [])
    if labels.get("guitar") and not any("guitar" in i for i in instruments):
        instruments.append("guitar")
    if labels.get("piano") and "piano" not in instruments:
        instruments.append("piano")
    if genres:
        parts.append(" and ".join(genres) + " music")
    if instruments:
        parts.append(" and ".join(instruments))
    if labels.get("drums") is True:
        parts.append("drums")
    if labels.get("vocals") is True:
        who = labels.get("vocal_gender")
        voice = f"a {who} spoken voice" if who else "a spoken voice"
        parts.append(voice if kind == "speech" else "vocals")
    text = ", ".join(parts) if parts else "a recording"
    negs = [w for w in ("drums", "vocals") if labels.get(w) is False]
    if labels.get("music") is False:
        negs = ["music"]
    if negs:
        text += ", " + ", ".join(f"no {w}" for w in negs)
    return text[0].upper() + text[1:] + "."


def tags_for(labels: dict[str, Any]) -> list[str]:
    """Known-present vocabulary terms (the `tag` column)."""
    tags: list[str] = list(labels.get("genres") or [])
    if labels.get("style") and labels["style"] not in tags:
        tags.append(labels["style"])
    tags += list(labels.get("instruments") or [])
    if labels.get("guitar") and not any("guitar" in t for t in tags):
        tags.append("guitar")
    if labels.get("piano") and "piano" not in tags:
        tags.append("piano")
    for word in ("drums", "vocals"):
        if labels.get(word) is True:
            tags.append(word)
    if labels.get("vocal_kind") == "speech":
        tags.append("speech")
    if labels.get("vocal_gender"):
        tags.append(f"{labels['vocal_gender']} voice")
    return tags


# An instrument family is not absent from a clip where one of its members
# plays (a violin is strings), nor where a near relative leaves it unclear.
FAMILY_MEMBERS: dict[str, tuple[str, ...]] = {
    "strings": ("violin", "cello", "harp", "banjo"),
    "brass": ("trumpet", "horn", "tuba", "trombone", "saxophone"),
    "bass": ("tuba", "cello"),
}


def absent_for(labels: dict[str, Any]) -> list[str]:
    """Vocabulary terms known to be absent (true negations for evaluate)."""
    sys.path.insert(0, str(HERE.parents[2]))
    from trainer.vocab import INSTRUMENTS

    absent = [w for w in ("drums", "vocals") if labels.get(w) is False]
    if labels.get("instruments_complete"):
        present = set(labels.get("instruments") or [])
        # Where a guitar is present its kind is at most partly documented
        # ("electric" for a metal band, never whether it is distorted), so no
        # guitar term is ever claimed absent from a clip with a guitar.
        for term in INSTRUMENTS:
            if term in present or (labels.get("guitar") and "guitar" in term):
                continue
            if present & set(FAMILY_MEMBERS.get(term, ())):
                continue
            if term == "piano" and labels.get("piano"):
                continue
            absent.append(term)
    return absent


def attributes_for(clip: dict[str, Any]) -> dict[str, Any]:
    """Contract 3 `attributes`: only what is known (unknown keys are left out)."""
    labels = clip["labels"]
    attrs: dict[str, Any] = {
        "source": "real",
        "family": clip["family"],
        "duration": float(clip["duration"]),
        "part": clip.get("part"),
    }
    for key in (
        "vocals",
        "drums",
        "style",
        "vocal_kind",
        "guitar",
        "piano",
        "speech",
        "music",
        "vocal_gender",
        "language",
        "genres",
        "bpm",
    ):
        if labels.get(key) is not None:
            attrs[key] = labels[key]  # fmt: skip
    instruments = list(labels.get("instruments") or [])
    # The list is written only when it is the whole truth in vocabulary terms:
    # a guitar of undocumented kind has no vocabulary term, and an evaluator
    # reading [] would wrongly take it as "no guitar".
    typed = any("guitar" in i for i in instruments)
    untyped_guitar = bool(labels.get("guitar")) and not typed
    if labels.get("instruments_complete") and not untyped_guitar:
        attrs["instruments"] = instruments
    return attrs


def rows_for(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    pair_of: dict[str, tuple[str, str]] = {}
    for k, pair in enumerate(recipe.get("pairs", [])):
        # A clip can belong to two pairs (vocals and drums) but the column
        # holds one: labels.json marks which pairs go there ("column").
        if not pair.get("column", True):
            continue
        for member in (pair["with"], pair["without"]):
            pair_of.setdefault(member, (f"pair{k:03d}", pair["attribute"]))
    rows = []
    for clip in recipe["clips"]:
        labels = clip["labels"]
        caption = caption_for(labels)
        pid, pattr = pair_of.get(clip["id"], (None, None))
        rows.append(
            {
                "track_id": clip["id"],
                "title": clip.get("title", clip["id"]),
                "artist_name": clip.get("artist", ""),
                "release": clip["family"],
                "year": 0,
                "tag": tags_for(labels),
                "caption_writing": caption,
                "caption_summary": caption,
                "caption_paraphrase": caption,
                "caption_attribute_prediction": caption,
                "path": f"realset/{clip['id']}.flac",
                "attributes": json.dumps(attributes_for(clip), sort_keys=True),
                "absent": absent_for(labels),
                "pair_id": pid,
                "pair_attribute": pattr,
                "base_piece": clip.get("base_piece", clip["id"]),
                "soundfont": None,
            }
        )
    return rows


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(HERE.parents[2]))
    from trainer.data import split_schema

    schema = split_schema()
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


# --------------------------------------------------------------------------


def load_recipe(path: Path = LABELS) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {path}: {exc}") from exc


def build(
    out: Path,
    cache: Path,
    recipe: dict[str, Any],
    only: Iterable[str] = (),
    skip_existing: bool = False,
) -> int:
    """Render every clip (or those in `only`) into OUT; returns the clip count.

    With `skip_existing`, a clip whose FLAC is already in OUT is not rendered
    again (a clip's recipe always gives the same bytes, so this is only for
    adding clips to a folder built from an earlier labels.json whose clips
    are unchanged); the parquet and corpus.json still list every clip.
    """
    import soundfile as sf

    wanted = set(only)
    clips = [c for c in recipe["clips"] if not wanted or c["id"] in wanted]
    unknown = sorted(wanted - {c["id"] for c in clips})
    if unknown:
        raise BuildError(f"unknown clip id(s): {', '.join(unknown)}")
    sources = Sources(recipe, cache)
    audio_dir = out / "audio" / "realset"
    _mkdir(audio_dir, "--out")
    for i, clip in enumerate(clips, 1):
        flac = audio_dir / f"{clip['id']}.flac"
        if skip_existing and flac.is_file():
            continue
        x = render_clip(clip, sources)
        # Written aside and renamed: an interrupted write leaves no FLAC that
        # --skip-existing would keep.
        part = flac.with_name(flac.name + ".part")
        try:
            sf.write(str(part), x, SAMPLE_RATE, format="FLAC")
            part.replace(flac)
        finally:
            part.unlink(missing_ok=True)
        print(
            f"[{i}/{len(clips)}] {clip['id']} ({len(x) / SAMPLE_RATE:.1f} s)",
            file=sys.stderr,
        )
    sub = dict(recipe, clips=clips)
    write_parquet(rows_for(sub), out / "captions" / "test.parquet")
    corpus = {
        "name": "beets-clap realset",
        "made_by": "tests/benchmarks/realset/build.py",
        "sample_rate": SAMPLE_RATE,
        "clips": len(clips),
        "packages": recipe["packages"],
        "split": recipe.get("split"),
        "labels_sha256": hashlib.sha256(
            json.dumps(recipe, sort_keys=True).encode()
        ).hexdigest(),
    }
    (out / "corpus.json").write_text(json.dumps(corpus, indent=2) + "\n")
    return len(clips)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="data folder to write")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="where packages are downloaded/unpacked (default: user cache)",
    )
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument(
        "--only", nargs="+", default=(), help="build just these clip ids"
    )
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="do not re-render clips whose FLAC is already in OUT (adding clips)",
    )
    args = parser.parse_args(argv)
    try:
        n = build(
            args.out,
            args.cache or default_cache(),
            load_recipe(args.labels),
            args.only,
            args.skip_existing,
        )
    except UsageError as exc:
        print(f"realset: {exc}", file=sys.stderr)
        return 2
    except BuildError as exc:
        print(f"realset: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("realset: interrupted", file=sys.stderr)
        return 130
    print(f"realset: {n} clips written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
