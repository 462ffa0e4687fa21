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
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE / "realset"))

from build import default_cache, fetch_package  # noqa: E402
from check import auc  # noqa: E402

PACKAGE, VERSION = "openttd-openmsx", "0.4.2-1"
RATE = 16000
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


def render(midi: Path, soundfont: Path, out: Path) -> np.ndarray:
    """Mono float32 at RATE, rendered once and kept in `out`."""
    import soundfile as sf

    wav = out / f"{midi.stem}.wav"
    if not wav.exists():
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                *("fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(RATE)),
                *("-F", str(wav), str(soundfont), str(midi)),
            ],
            check=True,
            capture_output=True,
        )
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

    root = fetch_package(PACKAGE, VERSION, args.cache)
    midis = sorted(root.rglob("*.mid"))
    bundle = Bundle.load(args.bundle)
    size = round(bundle.window_seconds * RATE)
    out = args.cache / "heldout_midi" / args.soundfont.stem
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
    report = run(args)
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
