"""Held-out compositions: how a bundle ranks General MIDI pieces it was not
composed from.

Why this exists: the synthetic corpus comes from one composer (trainer/synth),
so a model can learn its arrangements rather than its instruments. OpenMSX
(Debian package `openttd-openmsx`, GPL-2: 31 pieces written by people for
OpenTTD) is other composition in the same General MIDI vocabulary. Each piece
is rendered with FluidSynth and a soundfont, cut into the plugin's windows,
and labelled from the MIDI itself: an instrument family is present when one
of its programs sounds inside those windows (exact, no listening needed).

    python tests/benchmarks/heldout_midi.py --bundle models/clap-default \\
        [--soundfont /usr/share/sounds/sf2/TimGM6mb.sf2]

Per family with at least 3 pieces on each side it prints the AUC of three
scores: the plain word ("piano"), the text contrast ("music with piano" −
"music without piano") and the plugin's query layer for "music without
piano" (reversed: a higher score means the piece is ranked as having it).
Few pieces: read the AUCs to ±0.1 (±0.15 with 3 on a side).

Renders are kept under CACHE/heldout_midi, keyed by the soundfont's sha256
and the render settings. A soundfont that is missing or not a SoundFont, no
fluidsynth or a failed render is one line on stderr and exit status 2
(fluidsynth itself renders with its default soundfont in place of one it
cannot load, and exits 0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE / "realset"))

from build import BuildError, default_cache, fetch_package  # noqa: E402
from check import auc  # noqa: E402

PACKAGE, VERSION = "openttd-openmsx", "0.4.2-1"
RATE = 16000
# fluidsynth's options that shape the audio; each is part of the render
# cache's key, so a change to one renders again.
RENDER_SETTINGS = {"-g": "0.6", "-r": str(RATE)}
# General MIDI programs per family the plugin's parser knows, as the lexicon
# means the word: an accordion or a harmonica is not an organ (GM 21-23 sit in
# the organ block), a harp is not strings and timpani are percussion (GM 46,
# 47 sit in the strings block); "strings" takes violin and cello, its kinds.
FAMILIES: dict[str, Sequence[int]] = {
    "piano": range(0, 8),
    "organ": range(16, 21),
    "accordion": (21, 23),
    "guitar": range(24, 32),
    "bass": range(32, 40),
    "strings": (*range(40, 46), *range(48, 52)),
    "harp": (46,),
    "choir": range(52, 55),
    "brass": range(56, 64),
    "saxophone": range(64, 68),
    "flute": range(72, 80),
    "synth lead": range(80, 88),
    "synth pad": range(88, 96),
}
# As the real-recording check (concepts.MIN_POSITIVES): 3 pieces a side.
MIN_SIDE = 3


class HeldoutError(Exception):
    """A one-line reason the benchmark cannot run."""


def check_soundfont(path: Path) -> None:
    """Refuse what is not a readable, whole SoundFont 2 file, as the corpus
    renderer does: given one, fluidsynth renders with its default soundfont
    and exits 0."""
    from trainer.synth.fluid import SynthError
    from trainer.synth.fluid import check_soundfont as check

    try:
        check(path)
    except SynthError as exc:
        raise HeldoutError(str(exc)) from exc


def check_fluidsynth() -> None:
    if shutil.which("fluidsynth") is None:
        raise HeldoutError("fluidsynth is not on PATH (Debian: apt install fluidsynth)")


def soundfont_key(soundfont: Path) -> str:
    """The soundfont's name and the start of its contents' sha256."""
    digest = hashlib.sha256()
    with soundfont.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return f"{soundfont.stem}-{digest.hexdigest()[:16]}"


def fluidsynth_version() -> str:
    """The fluidsynth on PATH's version ("2.3.1"): another version may
    synthesise the same notes differently, so it is part of the render key."""
    done = subprocess.run(
        ["fluidsynth", "--version"], capture_output=True, text=True, errors="replace"
    )
    found = re.search(r"version (\S+)", done.stdout + done.stderr)
    if done.returncode != 0 or found is None:
        raise HeldoutError("fluidsynth --version does not say its version")
    return found.group(1)


def render_folder(cache: Path, key: str, version: str) -> Path:
    """Where renders with a soundfont_key, a fluidsynth version and the
    RENDER_SETTINGS live: another soundfont under the same name, another
    fluidsynth or other settings get a folder of their own."""
    settings = "-".join(f"{k.lstrip('-')}{v}" for k, v in RENDER_SETTINGS.items())
    return cache / "heldout_midi" / key / f"fluidsynth{version}-{settings}"


def render(midi: Path, soundfont: Path, out: Path) -> np.ndarray:
    """Mono float32 at RATE, rendered once and kept in `out` (a render_folder).

    fluidsynth writes a temporary file beside the render, renamed only once
    it exits cleanly: an interrupted or failed render leaves nothing that a
    later run would take for finished.
    """
    import soundfile as sf

    wav = out / f"{midi.stem}.wav"
    if not wav.exists():
        out.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=out, prefix=f".{midi.stem}.", suffix=".wav")
        os.close(fd)
        part = Path(name)
        try:
            done = subprocess.run(
                [
                    *("fluidsynth", "-ni", "-q", "-T", "wav"),
                    *(x for kv in RENDER_SETTINGS.items() for x in kv),
                    *("-F", str(part), str(soundfont), str(midi)),
                ],
                capture_output=True,
                text=True,
                errors="replace",
            )
            # A soundfont it cannot load is an error line, and the default
            # soundfont renders in its place with exit status 0.
            failed = [
                line
                for line in done.stderr.splitlines()
                if "Failed to load" in line or "not a SoundFont" in line
            ]
            if done.returncode != 0 or failed:
                last = failed or done.stderr.strip().splitlines() or ["no output"]
                raise HeldoutError(
                    f"fluidsynth could not render {midi.name} with {soundfont}: "
                    f"{last[-1].strip()}"
                )
            os.replace(part, wav)
        finally:
            part.unlink(missing_ok=True)
    x, _ = sf.read(wav, dtype="float32")
    return x.mean(axis=1) if x.ndim > 1 else x


def window_labels(midi: Path, spans: Sequence[tuple[float, float]]) -> dict[str, bool]:
    """Families (and drums) with a note sounding inside one of the windows."""
    import pretty_midi

    found = dict.fromkeys((*FAMILIES, "drums"), False)
    for inst in pretty_midi.PrettyMIDI(str(midi)).instruments:
        if not any(n.end > t0 and n.start < t1 for n in inst.notes for t0, t1 in spans):
            continue
        if inst.is_drum:
            found["drums"] = True
        for family, programs in FAMILIES.items():
            if not inst.is_drum and inst.program in programs:
                found[family] = True
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    check_soundfont(args.soundfont)
    check_fluidsynth()
    from beetsplug.clap.audio import plan_windows
    from beetsplug.clap.model import Bundle
    from beetsplug.clap.query import parse_query
    from beetsplug.clap.scoring import negated_phrases
    from beetsplug.clap.search import (
        DEFAULT_AFFIRMED_TAG_WEIGHT,
        DEFAULT_NEGATION_WEIGHT,
        DEFAULT_TAG_WEIGHT,
        TextQuery,
    )
    from trainer.evaluate import windows_from_array

    key = soundfont_key(args.soundfont)
    version = fluidsynth_version()
    out = render_folder(args.cache, key, version)
    try:
        root = fetch_package(PACKAGE, VERSION, args.cache)
    except BuildError as exc:
        raise HeldoutError(str(exc)) from exc
    midis = sorted(root.rglob("*.mid"))
    bundle = Bundle.load(args.bundle)
    size = round(bundle.window_seconds * RATE)
    audio, tags, labels = [], [], []
    for midi in midis:
        x = render(midi, args.soundfont, out)
        starts = plan_windows(len(x), size, bundle.max_windows, RATE)
        windows = windows_from_array(
            x, RATE, bundle.sample_rate, bundle.window_seconds, bundle.max_windows
        )
        emb, tag = bundle.embed_audio(windows)
        audio.append(emb.mean(axis=0) / np.linalg.norm(emb.mean(axis=0)))
        tags.append(tag.mean(axis=0) if tag is not None else None)
        labels.append(
            window_labels(midi, [(s / RATE, (s + size) / RATE) for s in starts])
        )
    a = np.stack(audio)
    t = np.stack(tags) if tags and tags[0] is not None else None
    rows = {}
    for family in (*FAMILIES, "drums"):
        y = np.array([lab[family] for lab in labels])
        if y.sum() < MIN_SIDE or (~y).sum() < MIN_SIDE:
            rows[family] = {"present": int(y.sum()), "skipped": True}
            continue
        word, with_x, without_x = bundle.embed_text(
            [family, f"music with {family}", f"music without {family}"]
        )
        parsed = parse_query(f"music without {family}")
        query = TextQuery.build(
            parsed,
            bundle.embed_text([parsed.text, *negated_phrases(parsed)]),
            DEFAULT_NEGATION_WEIGHT,
            bundle.tag_names if t is not None else (),
            DEFAULT_TAG_WEIGHT,
            DEFAULT_AFFIRMED_TAG_WEIGHT,
        )
        rows[family] = {
            "present": int(y.sum()),
            "absent": int((~y).sum()),
            "auc_plain": auc(a @ word, y),
            "auc_contrast": auc(a @ with_x - a @ without_x, y),
            "auc_plugin_without": auc(-query.score(a, t), y),
        }
    return {
        "bundle": bundle.label,
        "soundfont": args.soundfont.name,
        "soundfont_key": key,
        "fluidsynth": version,
        "pieces": len(midis),
        "families": rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "models" / "clap-default")
    parser.add_argument(
        "--soundfont", type=Path, default=Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    )
    parser.add_argument("--cache", type=Path, default=default_cache())
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except HeldoutError as exc:  # one line, not a traceback
        print(f"heldout_midi: {exc}", file=sys.stderr)
        return 2
    print(
        f"{report['bundle']}, {report['pieces']} OpenMSX pieces, {report['soundfont']}"
    )
    for family, row in report["families"].items():
        if row.get("skipped"):
            print(f"  {family:11s} present in {row['present']:2d}: skipped")
            continue
        print(
            f"  {family:11s} {row['present']:2d}+ / {row['absent']:2d}-  "
            f"plain {row['auc_plain']:.3f}  contrast {row['auc_contrast']:.3f}  "
            f"plugin {row['auc_plugin_without']:.3f}"
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
