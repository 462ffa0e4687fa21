"""The real-recording training corpus: pinned music packages, cut, tagged, captioned.

`python -m trainer real-corpus --out DATA` fetches the packages named in
realcorpus_sources.json (`apt-get download NAME=VERSION`, checked against the
.deb's sha256, unpacked with dpkg-deb), cuts each music track into 10-s clips,
runs the two pretrained musicnn taggers (MagnaTagATune and MSD) on every clip
and writes a data directory in the layout trainer.splits reads:

    DATA/audio/<package>/<track>-<k>.npy   16 kHz mono int16
    DATA/captions/{train,valid}.parquet    split by package
    DATA/tags.npz                          every clip's tag probabilities
    DATA/realcorpus.json                   sources, thresholds, counts

Captions say only what the taggers are confident of: a concept is present
when one of its tags reaches `captions.present`, and an instrument or vocals
is absent (the `absent` column, which negation augmentation trusts) only when
every tag for it stays under its `captions.absent` threshold (one number, or
one per concept with a "default"). `--recaption` rewrites the captions of a
built corpus from DATA/tags.npz under the current rules, without decoding or
tagging again. The packages are never committed; the same sources and pins
rebuild the same corpus, in place where --out holds it already (an --out
holding a corpus of other packages or another sources file is refused: its
files would mix with the new build's). A package that a check set uses is
refused, so no source is both trained on and judged by.

A package may instead list `speech`: recordings of a spoken voice and
nothing else (telephone prompts; the package says so). Its files are joined
one after another with short gaps and cut into clips whose captions the
source states, not the taggers: speech, no music and no instrument. Music
clips' tags carry "music" for the same reason (they come from a package's
music folder), so "music" is learnt against speech, not only as a fallback.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import json
import random
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from beetsplug.clap.model import sha256_file
from trainer.splits import AUDIO_DIR, CAPTIONS_DIR, DataError

SOURCES = Path(__file__).with_name("realcorpus_sources.json")
Log = Callable[[str], None]
# The taggers read 3-s windows: a 10-s clip is tagged as the mean of three.
TAGGERS = "MTT_musicnn+MSD_musicnn"
_INT16 = 32767.0
TAGS_FILE = "tags.npz"


@dataclass(frozen=True)
class Track:
    package: str
    path: Path  # the unpacked file
    name: str  # "<package>/<path inside the package>": stable, sorts the corpus
    kind: str = "music"  # or "speech": which glob list of the package named it


@dataclass
class ClipRow:
    track: Track
    index: int
    start: float
    audio: str  # path under DATA/audio
    track_seconds: float
    probs: np.ndarray | None = None


# --------------------------------------------------------------------------- sources


def load_sources(path: Path = SOURCES) -> dict[str, Any]:
    """The source list, checked: pins present, no package a check set uses."""
    try:
        sources = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"real-corpus sources {path}: {exc}") from exc
    packages = sources.get("packages") or {}
    clash = sorted(set(packages) & set(sources.get("forbidden", ())))
    if clash:
        raise DataError(
            f"real-corpus sources {path}: {', '.join(clash)} is in a check set "
            "and may not be trained on"
        )
    for name, pin in packages.items():
        if not (pin.get("version") and pin.get("sha256")) or not (
            bool(pin.get("music")) ^ bool(pin.get("speech"))
        ):
            raise DataError(
                f"real-corpus sources {path}: {name} needs version, sha256 and "
                "one of music or speech"
            )
    return sources


def package_kind(pin: dict[str, Any]) -> str:
    """ "speech" for a package of spoken recordings, else "music"."""
    return "speech" if pin.get("speech") else "music"


def _deb_name(name: str, version: str) -> str:
    # apt writes an epoch "2:" as "2%3a" in the file name
    return f"{name}_{version.replace(':', '%3a')}_all.deb"


def program_reason(text: str, prefer: str = "") -> str:
    """A program's reason in one line: its last line starting `prefer` (apt's
    "E:", which a warning may follow), else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    preferred = [line for line in lines if prefer and line.startswith(prefer)]
    return (preferred or lines or ["no output"])[-1]


def fetch_package(name: str, pin: dict[str, Any], cache: Path) -> Path:
    """The unpacked root of NAME at its pinned version (downloaded once, checked)."""
    debs = cache / "debs"
    root = cache / "unpacked" / f"{name}_{pin['version'].replace(':', '_')}"
    if (root / ".complete").exists():
        return root
    debs.mkdir(parents=True, exist_ok=True)
    deb = debs / _deb_name(name, pin["version"])
    if not deb.exists():
        if shutil.which("apt-get") is None:
            raise DataError(f"{name}: {deb.name} is not cached and apt-get is missing")
        proc = subprocess.run(
            ["apt-get", "download", f"{name}={pin['version']}"],
            cwd=debs,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not deb.exists():
            # apt-get says why (no network, unknown version ...).
            why = program_reason(proc.stderr, prefer="E:")
            raise DataError(
                f"{name}={pin['version']}: apt-get download failed: {why} (run "
                "apt-get update; the corpus is pinned to Debian 12 bookworm "
                "versions)"
            )
    got = sha256_file(deb)
    if got != pin["sha256"]:
        raise DataError(f"{deb.name}: sha256 {got[:12]} != pinned {pin['sha256'][:12]}")
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    proc = subprocess.run(
        ["dpkg-deb", "-x", str(deb), str(tmp)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise DataError(f"{deb.name}: dpkg-deb -x failed: {proc.stderr.strip()}")
    (tmp / ".complete").touch()
    shutil.rmtree(root, ignore_errors=True)
    tmp.replace(root)
    return root


def package_tracks(name: str, pin: dict[str, Any], root: Path) -> list[Track]:
    """The music (or speech) files a package's globs select, sorted by path."""
    kind = package_kind(pin)
    found = {
        p
        for pattern in pin[kind]
        for p in root.glob(pattern)
        if p.is_file()
        and not any(fnmatch.fnmatch(p.name, x) for x in pin.get("skip", ()))
    }
    if not found:
        raise DataError(f"{name}: no file matches {', '.join(pin[kind])}")
    return [
        Track(name, p, f"{name}/{p.relative_to(root).as_posix()}", kind)
        for p in sorted(found)
    ]


# --------------------------------------------------------------------------- clips


def clip_starts(duration: float, clip: dict[str, float]) -> list[float]:
    """Where a track's clips start: past the intro, one every `hop` seconds,
    at most `max_per_track`; a track shorter than a clip gives none."""
    seconds, first, hop = clip["seconds"], clip["first_start"], clip["hop"]
    if duration < seconds:
        return []
    first = min(first, duration - seconds)
    n = int((duration - seconds - first) // hop) + 1
    return [first + k * hop for k in range(min(n, int(clip["max_per_track"])))]


def _rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def cut_track(
    track: Track, out: Path, rate: int, clip: dict[str, float]
) -> list[ClipRow]:
    """Decode one track and write its clips (int16 .npy); near-silent clips
    (fades, pauses) are left out. A clip is named by its start, and an
    existing file of the right length is reused, so a rebuild with other
    clip settings never reads a stale clip."""
    from trainer.data import AudioDecodeError, read_audio

    try:
        x = read_audio(track.path, rate)
    except AudioDecodeError as exc:
        raise DataError(f"{track.name}: {exc}") from exc
    n = round(clip["seconds"] * rate)
    # The file and its folder name a clip: unique within a package (supertux
    # keeps music in one folder per world), short enough to read in a log.
    stem = "__".join(track.path.with_suffix("").parts[-2:]).replace(" ", "_")
    rows = []
    seconds = len(x) / rate
    for k, start in enumerate(clip_starts(seconds, clip)):
        piece = x[round(start * rate) :][:n]
        if len(piece) < n or _rms_db(piece) < clip["min_rms_db"]:
            continue
        rel = f"{track.package}/{stem}-{start:g}s.npy"
        _write_clip(out / AUDIO_DIR / rel, piece)
        rows.append(ClipRow(track, k, start, rel, seconds))
    return rows


def _write_clip(path: Path, piece: np.ndarray) -> None:
    """An int16 clip, written atomically; an existing one of the length is kept."""
    if path.exists() and np.load(path, mmap_mode="r").shape == piece.shape:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, np.clip(piece * _INT16, -_INT16, _INT16).astype(np.int16))
    tmp.replace(path)


def cut_speech(
    tracks: Sequence[Track], out: Path, rate: int, clip: dict[str, float]
) -> list[ClipRow]:
    """One package's spoken recordings (short prompts), joined in path order
    with `speech_gap` seconds of silence and cut into whole clips, at most
    `max_speech_clips`; an unreadable file is left out of the join."""
    from trainer.data import AudioDecodeError, read_audio

    n = round(clip["seconds"] * rate)
    gap = np.zeros(round(float(clip.get("speech_gap", 0.3)) * rate), np.float32)
    limit = int(clip.get("max_speech_clips", 200))
    rows: list[ClipRow] = []
    pending: list[np.ndarray] = []
    held = 0
    first: Track | None = None
    for track in tracks:
        try:
            x = read_audio(track.path, rate)
        except AudioDecodeError:
            continue
        first = first or track
        pending += [x, gap]
        held += len(x) + len(gap)
        while held >= n and len(rows) < limit:
            joined = np.concatenate(pending)
            piece, rest = joined[:n], joined[n:]
            pending, held = [rest], len(rest)
            if _rms_db(piece) < clip["min_rms_db"]:
                continue
            k = len(rows)
            name = f"{track.package}/speech-{k:04d}"
            _write_clip(out / AUDIO_DIR / f"{name}.npy", piece)
            rows.append(
                ClipRow(
                    Track(track.package, first.path, name, "speech"),
                    k,
                    0.0,
                    f"{name}.npy",
                    clip["seconds"],
                )
            )
            first = track
        if len(rows) >= limit:
            break
    return rows


# --------------------------------------------------------------------------- tags


class Tagger:
    """The two pretrained musicnn taggers, as the model's audio tower runs them."""

    def __init__(self) -> None:
        import torch

        from trainer.config import AudioModelConfig
        from trainer.models import AudioTower

        cfg = AudioModelConfig(
            backbone="musicnn",
            pretrained=TAGGERS,
            freeze_backbone="full",
            features="tags",
            emit_tags=True,
        )
        self._torch = torch
        self.tower = AudioTower(cfg, embedding_dim=8, projection="linear").eval()
        self.names: list[str] = list(self.tower.tag_names)
        self.sample_rate = cfg.sample_rate

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """Clips [B, S] float32 -> tag probabilities [B, 100], window-averaged."""
        with self._torch.no_grad():
            out = self.tower(self._torch.from_numpy(clips))
        return out["tags"].float().numpy()


def tag_clips(
    rows: Sequence[ClipRow],
    out: Path,
    tagger: Tagger,
    batch: int = 16,
    log: Log = print,
) -> None:
    for i in range(0, len(rows), batch):
        if i and i % (batch * 25) == 0:
            log(f"real corpus: tagged {i}/{len(rows)} clips")
        part = rows[i : i + batch]
        audio = np.stack(
            [
                np.load(out / AUDIO_DIR / r.audio).astype(np.float32) / _INT16
                for r in part
            ]
        )
        for row, p in zip(part, tagger(audio), strict=True):
            row.probs = p


# --------------------------------------------------------------------------- captions


@dataclass(frozen=True)
class CaptionRules:
    """How tag probabilities become caption words (realcorpus_sources.json)."""

    present: float
    absent: tuple[float, ...]  # under this, a negatable concept is absent (aligned)
    max_tags: int
    negatable: tuple[str, ...]
    concepts: tuple[str | None, ...]  # each tag's concept, aligned with the tags
    says_absent: tuple[tuple[str, ...], ...]  # what each tag says is absent

    @classmethod
    def make(cls, spec: dict[str, Any], tag_names: Sequence[str]) -> CaptionRules:
        from beetsplug.clap.meanings import read_tag_meanings

        meanings = read_tag_meanings(tag_names)
        negatable = tuple(spec["negatable"])
        return cls(
            float(spec["present"]),
            absent_thresholds(spec["absent"], negatable),
            int(spec["max_tags"]),
            negatable,
            tuple(m.concept for m in meanings),
            tuple(m.absent for m in meanings),
        )

    def present_concepts(self, probs: np.ndarray) -> list[str]:
        """Concepts a tag is confident of, most confident first (each once)."""
        best: dict[str, float] = {}
        for concept, p in zip(self.concepts, probs, strict=True):
            if concept and p >= self.present:
                best[concept] = max(best.get(concept, 0.0), float(p))
        ranked = sorted(best, key=lambda c: (-best[c], c))
        return ranked[: self.max_tags]

    def absent_concepts(self, probs: np.ndarray, present: Sequence[str]) -> list[str]:
        """Negatable concepts every one of whose tags stays under `absent`, or
        that a confident tag says are absent ("no vocals", "instrumental")."""
        said = {
            a
            for says, p in zip(self.says_absent, probs, strict=True)
            if says and p >= self.present
            for a in says
        }
        out = []
        for concept, below in zip(self.negatable, self.absent, strict=True):
            ps = [p for c, p in zip(self.concepts, probs, strict=True) if c == concept]
            if concept in present:
                continue
            if concept in said or (ps and max(ps) < below):
                out.append(concept)
        return out


def absent_thresholds(spec: Any, negatable: Sequence[str]) -> tuple[float, ...]:
    """`captions.absent` per negatable concept: one number for all, or a
    mapping with a "default" (a tagger misses quiet pianos more often than
    missing drums, so each concept gets the bar its tags can be trusted at)."""
    if not isinstance(spec, dict):
        return tuple(float(spec) for _ in negatable)
    unknown = sorted(set(spec) - {*negatable, "default"})
    if unknown:
        raise DataError(
            "captions.absent names concepts that are not negatable: "
            + ", ".join(unknown)
        )
    if "default" not in spec and set(negatable) - set(spec):
        raise DataError('captions.absent needs a "default" or every negatable one')
    return tuple(float(spec.get(c, spec.get("default"))) for c in negatable)


def negatable_terms(concepts: Iterable[str]) -> list[str]:
    """Absent concepts as the vocabulary's negatable terms: no guitar means
    no acoustic, electric or distorted guitar."""
    from trainer import vocab

    terms: list[str] = []
    for concept in concepts:
        for term in vocab.NEGATABLE:
            if (term == concept or term.endswith(" " + concept)) and term not in terms:
                terms.append(term)
    return terms


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _absent_phrase(term: str) -> str:
    return f"no {term}"


def _said_absent(absent: Sequence[str], rng: random.Random) -> list[str]:
    """At most two absences a caption says (vocals and drums first, as people
    write them); negation augmentation adds the others from `absent`."""
    first = [t for t in ("vocals", "drums") if t in absent]
    rest = [t for t in absent if t not in first]
    rng.shuffle(rest)
    return [*first, *rest][:2]


def _kind(concept: str) -> str:
    from beetsplug.clap.lexicon import lexicon

    found = lexicon().concepts.get(concept)
    return found.kind if found is not None else "part"


def captions_for(
    present: Sequence[str], absent: Sequence[str], rng: random.Random
) -> dict[str, str]:
    """The caption columns in the corpus' grammar, from the confident words:
    "A slow, quiet ambient piece with piano. It has no vocals and no drums."."""
    kinds = {c: _kind(c) for c in present}
    genres = [c for c in present if kinds[c] == "genre"]
    parts = [c for c in present if kinds[c] in ("part", "modifier")]
    qualities = [c for c in present if c not in genres and c not in parts]
    nouns = ("track", "piece", "tune") + (("song",) if "vocals" in parts else ())
    head = " ".join(
        w
        for w in (
            ", ".join(qualities),
            " and ".join(genres),
            rng.choice(nouns),
        )
        if w
    )
    summary = ("An " if head[0] in "aeiou" else "A ") + head
    summary += (f" with {_join(parts)}" if parts else "") + "."
    said = [_absent_phrase(t) for t in _said_absent(absent, rng)]
    if said:
        summary += f" It has {_join(said)}."
    attributes = ", ".join([*present, *said])
    return {
        "caption_writing": summary,
        "caption_summary": summary,
        "caption_paraphrase": summary,
        "caption_attribute_prediction": attributes or "music",
    }


# --------------------------------------------------------------------------- build


SPEECH_SUMMARIES = (
    "A spoken voice, with no music.",
    "Speech: someone talking, with no music.",
    "Spoken word, without music.",
    "A voice speaking, with no music and no instruments.",
)


def speech_captions(rules: CaptionRules, rng: random.Random) -> dict[str, Any]:
    """What a speech package states of each clip: a voice speaking, and no
    instrument of any kind (so every negatable concept but the voice is absent)."""
    absent = negatable_terms(c for c in rules.negatable if c not in ("vocals",))
    summary = rng.choice(SPEECH_SUMMARIES)
    return {
        "tag": ["speech", "spoken word"],
        "caption_writing": summary,
        "caption_summary": summary,
        "caption_paraphrase": summary,
        "caption_attribute_prediction": "speech, spoken word, no music",
        "absent": absent,
    }


def _captioned(
    audio: str, probs: np.ndarray, rules: CaptionRules, seed: int, kind: str = "music"
) -> dict[str, Any]:
    """A clip's caption columns: what its tag probabilities say under `rules`
    (a speech package's clips: what the package states). The random choices
    are seeded by the clip, so a rebuild says the same."""
    rng = random.Random(f"{seed}:{audio}")
    if kind == "speech":
        return speech_captions(rules, rng)
    present = rules.present_concepts(probs)
    absent = negatable_terms(rules.absent_concepts(probs, present))
    # What is there; absences reach the texts through the captions and
    # negation augmentation, as in the synthetic corpus. "music" is stated
    # by the source (a music folder), and is what speech is not.
    return {
        "tag": [*present, "music"],
        **captions_for(present, absent, rng),
        "absent": absent,
    }


def _rows_for(
    clips: Sequence[ClipRow], rules: CaptionRules, seed: int
) -> list[dict[str, Any]]:
    rows = []
    for clip in clips:
        assert clip.probs is not None
        rows.append(
            {
                "track_id": clip.audio.rsplit(".", 1)[0],
                "title": clip.track.path.stem,
                "artist_name": None,
                "release": clip.track.package,
                "year": None,
                **_captioned(clip.audio, clip.probs, rules, seed, clip.track.kind),
                "path": clip.audio,
                "attributes": None,
                "pair_id": None,
                "pair_attribute": None,
                # Not a group: clips of one track in one batch would be near
                # duplicates with near-identical captions, not hard negatives.
                "base_piece": None,
                "soundfont": None,
            }
        )
    return rows


def _write_split(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.splits import split_schema

    schema = split_schema()
    table = pa.Table.from_pylist(rows, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def build(
    out: Path,
    cache: Path,
    sources_path: Path = SOURCES,
    *,
    packages: Sequence[str] | None = None,
    seed: int = 0,
    workers: int = 2,
    tagger: Tagger | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Build the corpus into `out`; returns what realcorpus.json records."""
    sources = load_sources(sources_path)
    chosen = dict(sources["packages"])
    if packages:
        unknown = sorted(set(packages) - set(chosen))
        if unknown:
            raise DataError(f"not in the real-corpus sources: {', '.join(unknown)}")
        chosen = {k: v for k, v in chosen.items() if k in packages}
    sources_sha256 = sha256_file(Path(sources_path))
    check_out(out, sorted(chosen), sources_sha256)
    rate, clip = int(sources["sample_rate"]), sources["clip"]
    tracks = []
    for name, pin in sorted(chosen.items()):
        tracks += package_tracks(name, pin, fetch_package(name, pin, cache))
    # Until realcorpus.json is written, this names the build in `out`: a
    # build stopped half-way is this build's to redo, not another corpus.
    out.mkdir(parents=True, exist_ok=True)
    building = {"packages": sorted(chosen), "sources_sha256": sources_sha256}
    (out / BUILDING).write_text(json.dumps(building) + "\n")
    log(f"real corpus: {len(tracks)} tracks from {len(chosen)} packages")

    unreadable: list[str] = []

    def cut(track: Track) -> list[ClipRow]:
        try:
            return cut_track(track, out, rate, clip)
        except DataError as exc:  # one bad file costs its clips, not the build
            log(f"real corpus: skipped {exc}")
            unreadable.append(track.name)
            return []

    music = [t for t in tracks if t.kind == "music"]
    # Decoding is ffmpeg/libsndfile work outside the GIL: threads keep both cores busy.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        per_track = list(pool.map(cut, music))
    clips = [c for rows in per_track for c in rows]
    for name in sorted({t.package for t in tracks if t.kind == "speech"}):
        spoken = cut_speech([t for t in tracks if t.package == name], out, rate, clip)
        log(f"real corpus: {name}: {len(spoken)} speech clips")
        clips += spoken
    if not clips:
        raise DataError("real corpus: no clip long and loud enough to keep")
    tagger = tagger or Tagger()
    if tagger.sample_rate != rate:
        raise DataError(f"taggers read {tagger.sample_rate} Hz, sources say {rate}")
    tag_clips(clips, out, tagger, log=log)
    _write_tags(out, [c.audio for c in clips], tagger.names, [c.probs for c in clips])
    rules = CaptionRules.make(sources["captions"], tagger.names)

    valid_packages = set(sources.get("valid_packages", ()))
    splits = _write_splits(out, _rows_for(clips, rules, seed), valid_packages)
    seconds = len(clips) * clip["seconds"]
    record = {
        "sources_sha256": sources_sha256,
        "packages": sorted(chosen),
        "tracks": len(tracks),
        "unreadable": sorted(unreadable),
        "clips": {k: len(v) for k, v in splits.items()},
        "clip_hours": round(seconds / 3600, 2),
        # Every track with a clip, whole: the music the clips are drawn from.
        "source_hours": round(
            sum({c.track.name: c.track_seconds for c in clips}.values()) / 3600, 2
        ),
        **_caption_record(sources["captions"], splits),
    }
    (out / "realcorpus.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / BUILDING).unlink()
    log(
        f"real corpus: {len(clips)} clips ({record['clip_hours']} h) from "
        f"{len(tracks)} tracks ({record['source_hours']} h) -> {out} "
        f"(train {len(splits['train'])}, valid {len(splits['valid'])})"
    )
    return record


# What a build in progress writes first and removes once realcorpus.json
# is written: which packages and sources file the folder is being built of.
BUILDING = "realcorpus.building"


def check_out(out: Path, packages: list[str], sources_sha256: str) -> None:
    """Refuse an `out` that holds another corpus. A build writes only its own
    clips, splits and tags: another build's would stay beside them, and be
    trained on. The same build (packages and sources file) is rebuilt in place."""
    record_path = out / "realcorpus.json"
    if not record_path.exists() and (out / BUILDING).exists():
        record_path = out / BUILDING  # a build stopped before its record
    if not record_path.exists():
        if (out / CAPTIONS_DIR).exists() or (out / "corpus.json").exists():
            raise DataError(
                f"{out} holds a data directory that is no real-recording corpus "
                "(captions/ but no realcorpus.json): choose another --out or "
                "remove it"
            )
        return
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        built = list(record["packages"]), str(record["sources_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{record_path} is unreadable ({exc}): choose another --out or remove {out}"
        ) from exc
    if built == (packages, sources_sha256):
        return
    if built[0] != packages:
        other = (
            f"of other packages ({', '.join(built[0])}; this build: "
            f"{', '.join(packages)})"
        )
    else:
        other = (
            f"of another sources file (sha256 {built[1][:12]}; this build: "
            f"{sources_sha256[:12]}; --recaption applies new caption rules in place)"
        )
    raise DataError(
        f"{out} holds a real-recording corpus {other}: choose another --out or "
        "remove it"
    )


def _write_tags(
    out: Path, audio: Sequence[str], names: Sequence[str], probs: Sequence[Any]
) -> None:
    """Keep every clip's tag probabilities, so new caption rules need no tagging."""
    np.savez(
        out / TAGS_FILE,
        audio=np.array(audio),
        names=np.array(names),
        probs=np.stack(probs).astype(np.float32),
    )


def _write_splits(
    out: Path, rows: list[dict[str, Any]], valid_packages: set[str]
) -> dict[str, list[dict[str, Any]]]:
    splits = {
        "train": [r for r in rows if r["release"] not in valid_packages],
        "valid": [r for r in rows if r["release"] in valid_packages],
    }
    for split, split_rows in splits.items():
        path = out / CAPTIONS_DIR / f"{split}.parquet"
        if split_rows:
            _write_split(split_rows, path)
        else:  # an earlier build's split must not outlive this build
            path.unlink(missing_ok=True)
    return splits


def _caption_record(
    rules: dict[str, Any], splits: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """What realcorpus.json says of the captions: the rules and the word counts."""
    rows = [r for split_rows in splits.values() for r in split_rows]
    return {
        "captions": rules,
        "present": dict(Counter(t for r in rows for t in r["tag"]).most_common()),
        "absent": dict(Counter(t for r in rows for t in r["absent"]).most_common()),
    }


def recaption(
    out: Path, sources_path: Path = SOURCES, *, seed: int = 0, log: Log = print
) -> dict[str, Any]:
    """Rewrite a built corpus' captions from its stored tag probabilities under
    the sources' current caption rules; audio, clips and splits stay as built."""
    import pyarrow.parquet as pq

    record_path = out / "realcorpus.json"
    try:
        record = json.loads(record_path.read_text())
        stored = np.load(out / TAGS_FILE)
        names, probs = list(stored["names"]), stored["probs"]
        by_audio = {str(a): i for i, a in enumerate(stored["audio"])}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"{out} has no readable realcorpus.json and {TAGS_FILE} to recaption "
            f"({exc}); build it with python -m trainer real-corpus --out {out}"
        ) from exc
    sources = load_sources(sources_path)
    rules = CaptionRules.make(sources["captions"], names)
    kinds = {n: package_kind(pin) for n, pin in sources["packages"].items()}
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in ("train", "valid"):
        path = out / CAPTIONS_DIR / f"{split}.parquet"
        rows = pq.read_table(path).to_pylist() if path.exists() else []
        missing = [r["path"] for r in rows if r["path"] not in by_audio]
        if missing:
            raise DataError(
                f"{len(missing)} clip(s) of {split} have no stored tags (first: "
                f"{missing[0]}): rebuild the corpus"
            )
        splits[split] = [
            {
                **r,
                **_captioned(
                    r["path"],
                    probs[by_audio[r["path"]]],
                    rules,
                    seed,
                    kinds.get(r["release"], "music"),
                ),
            }
            for r in rows
        ]
        if rows:
            _write_split(splits[split], path)
    record.update(
        sources_sha256=sha256_file(Path(sources_path)),
        **_caption_record(sources["captions"], splits),
    )
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    log(
        f"real corpus: recaptioned {sum(map(len, splits.values()))} clips in {out} "
        f"({sum(record['absent'].values())} absences stated)"
    )
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, help="data directory to write"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "beets-clap" / "realcorpus",
        help="where the .debs are downloaded and unpacked (kept between builds)",
    )
    parser.add_argument("--sources", type=Path, default=SOURCES, help="source list")
    parser.add_argument(
        "--packages", nargs="+", metavar="NAME", help="only these packages"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="decoding threads")
    parser.add_argument(
        "--recaption",
        action="store_true",
        help="only rewrite the captions of the corpus in --out from its stored "
        "tag probabilities under the current caption rules (no fetching, "
        "decoding or tagging)",
    )


def run(args: argparse.Namespace) -> int:
    if args.recaption:
        recaption(args.out, args.sources, seed=args.seed)
        return 0
    build(
        args.out,
        args.cache,
        args.sources,
        packages=args.packages,
        seed=args.seed,
        workers=args.workers,
    )
    return 0
