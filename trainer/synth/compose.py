"""Procedural composition: a PieceSpec (style, seed, minimal pair) -> a scored Piece.

A piece is a set of parts, each becoming one stem: instrument families
(lead, chords, pad, bass), drums on MIDI channel 10, and at most one voice
part (a GM choir patch, or espeak-ng words sung on the melody's pitches or
spoken in rhythm). Everything is drawn from one seeded `random.Random`, so a
piece depends only on its spec. This module plans the piece and arranges its
parts; `harmony`, `rhythm` and `melody` write them on the piece's `frame`.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

import pretty_midi

from trainer.synth import harmony, melody, rhythm, styles
from trainer.synth.frame import Frame, Grid
from trainer.synth.melody import ESPEAK_VOICES, LEXICON, VOICE_RANGES, VoiceNote
from trainer.synth.styles import STYLE_SPECS

__all__ = [
    "ESPEAK_VOICES",
    "LEXICON",
    "VOCAL_KINDS",
    "VOICE_RANGES",
    "Composer",
    "Part",
    "Piece",
    "PieceSpec",
    "Variant",
    "VoiceNote",
    "compose",
    "pair_candidates",
]

VOCAL_KINDS = ("choir", "sung", "spoken")


@dataclass(frozen=True)
class PieceSpec:
    """What the planner decides for one base piece (cheap, picklable)."""

    index: int
    seed: int
    split: str
    soundfont: str
    style: str
    pair: str | None  # "drums" | "vocals" | "instrument:<family>" | None
    duration: float

    @property
    def piece_id(self) -> str:
        return f"p{self.index:06d}"


@dataclass
class Part:
    """One stem's score. `stem` is an instrument family, "drums" or "vocals"."""

    stem: str
    role: str
    program: int
    is_drum: bool = False
    notes: list[pretty_midi.Note] = field(default_factory=list)
    voice_notes: list[VoiceNote] = field(default_factory=list)
    espeak_voice: str | None = None


@dataclass(frozen=True)
class Variant:
    """One clip rendered from a piece: the mix of all stems except `removed`."""

    suffix: str
    removed: tuple[str, ...]
    pair_attribute: str | None


@dataclass
class Piece:
    spec: PieceSpec
    attributes: dict  # the full piece's attributes (contract schema + extras)
    parts: list[Part]
    variants: list[Variant]
    reverb_seconds: float

    def midi(self) -> pretty_midi.PrettyMIDI:
        """The MIDI parts as a PrettyMIDI score (espeak words are not MIDI)."""
        pm = pretty_midi.PrettyMIDI(initial_tempo=self.attributes["tempo_bpm"])
        for part in self.parts:
            if part.notes:
                inst = pretty_midi.Instrument(
                    part.program, is_drum=part.is_drum, name=part.stem
                )
                inst.notes = list(part.notes)
                pm.instruments.append(inst)
        return pm


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    names = [k for k, w in weights.items() if w > 0]
    return rng.choices(names, weights=[weights[k] for k in names])[0]


def _conflicts(family: str, used: set[str]) -> bool:
    if family in used:
        return True
    return any(
        family in group and used & (group - {family})
        for group in styles.EXCLUSIVE_GROUPS
    )


def pair_candidates(style: str) -> dict[str, list[str]]:
    """Which minimal pairs a style can carry.

    {"drums": ["drums"] or [], "vocals": ["vocals"] or [], "instrument": [families]}
    """
    spec = STYLE_SPECS[style]
    fams = sorted(
        {*spec.lead, *spec.chords, *spec.pads}
        | ({"bass"} if spec.bass_prob > 0 else set())
    )
    return {
        "drums": ["drums"] if spec.drums_prob > 0 else [],
        "vocals": ["vocals"] if spec.vocals_prob > 0 else [],
        "instrument": fams,
    }


def _pair_allowed(style: str, pair: str) -> bool:
    kind, _, family = pair.partition(":")
    allowed = pair_candidates(style)
    return (
        family in allowed["instrument"]
        if kind == "instrument"
        else pair in allowed.get(kind, [])
    )


class Composer:
    """Builds one Piece from a PieceSpec; every random draw is from one seeded rng."""

    def __init__(self, spec: PieceSpec) -> None:
        self.spec = spec
        self.style = STYLE_SPECS[spec.style]
        self.rng = random.Random(f"compose:{spec.seed}:{spec.index}")

    def compose(self) -> Piece:
        spec, sty, rng = self.spec, self.style, self.rng
        bpm = float(rng.randint(*sty.tempo))
        mode = "major" if rng.random() < sty.major_prob else "minor"
        key = rng.randrange(12)
        energy = _weighted(rng, sty.energy)
        beats = 3 if rng.random() < sty.waltz_prob else 4
        swing = sty.swing if beats == 4 else 0.0
        grid = Grid(bpm, beats, swing)

        pair = spec.pair
        if pair is not None and not _pair_allowed(spec.style, pair):
            raise ValueError(
                f"style {spec.style!r} cannot carry the minimal pair {pair!r}"
            )
        forced = (
            pair.split(":", 1)[1] if pair and pair.startswith("instrument:") else None
        )
        solo = pair is None and bool(sty.solo) and rng.random() < sty.solo_prob
        drums = pair == "drums" or (not solo and rng.random() < sty.drums_prob)
        vocals = pair == "vocals" or (not solo and rng.random() < sty.vocals_prob)
        vocal_kind = _weighted(rng, sty.vocal_kinds) if vocals else None

        n_bars = math.ceil(spec.duration / grid.bar) + 1
        prog = rng.choice(
            sty.progressions_major if mode == "major" else sty.progressions_minor
        )
        frame = Frame(
            rng=rng,
            grid=grid,
            style=sty,
            key=key,
            mode=mode,
            chords=harmony.bar_chords(sty, key, mode, prog, n_bars),
            velocity=styles.ENERGY_VELOCITY[energy],
            humanize=spec.style not in ("electronic",),
        )

        parts: list[Part] = []
        if solo:
            family = rng.choice(sty.solo)
            roles = {family: "solo"}
        else:
            roles = self._choose_families(forced, vocal_kind)
        tune = melody.melody(frame)
        for family, role in roles.items():
            parts.append(self._instrument_part(frame, family, role, tune, vocal_kind))
        kit_name = None
        if drums:
            kit_name = rng.choice(sty.kits)
            parts.append(
                Part(
                    stem="drums",
                    role="drums",
                    program=styles.DRUM_KITS[kit_name],
                    is_drum=True,
                    notes=rhythm.drums(frame),
                )
            )
        voice_register = None
        if vocals:
            part, voice_register = self._voice_part(frame, vocal_kind, tune)
            parts.append(part)
        for part in parts:
            part.notes = _clean(part.notes, spec.duration)
            part.voice_notes = [
                v for v in part.voice_notes if v.start < spec.duration - 0.05
            ]

        instruments = list(roles)
        if vocal_kind == "choir":
            instruments.append("choir")
        tempo = styles.tempo_word(bpm)
        attributes = {
            "style": spec.style,
            "instruments": instruments,
            "lead": next(f for f, r in roles.items() if r in ("lead", "solo")),
            "drums": drums,
            "drum_kit": kit_name,
            "vocals": vocals,
            "vocal_kind": vocal_kind,
            "tempo_bpm": bpm,
            "tempo": tempo,
            "key": styles.KEY_NAMES[key],
            "mode": mode,
            "mood": styles.mood_word(mode, tempo, energy),
            "energy": energy,
            "ensemble": "solo" if solo else "ensemble",
            "duration": spec.duration,
            "soundfont": spec.soundfont,
            "meter": f"{beats}/4",
            "voice_register": voice_register,
            "programs": {p.stem: p.program for p in parts if not p.voice_notes},
        }
        variants = [Variant("a", (), pair)]
        if pair:
            removed = (
                "vocals"
                if pair == "vocals"
                else ("drums" if pair == "drums" else forced)
            )
            variants.append(Variant("b", (removed,), pair))
        return Piece(spec, attributes, parts, variants, sty.reverb_seconds)

    def _choose_families(
        self, forced: str | None, vocal_kind: str | None
    ) -> dict[str, str]:
        """Lead, chords, pad and bass families (unique, no overlapping meanings)."""
        sty, rng = self.style, self.rng
        roles: dict[str, str] = {}
        used: set[str] = set()
        if forced is not None:
            if forced == "bass":
                role = "bass"
            else:
                options = [
                    r
                    for r, pool in (
                        ("lead", sty.lead),
                        ("chords", sty.chords),
                        ("pad", sty.pads),
                    )
                    if forced in pool
                ]
                role = rng.choice(options)
            roles[forced] = role
            used.add(forced)

        def pick(role: str, pool: tuple[str, ...]) -> None:
            if role in roles.values():
                return
            options = [f for f in pool if not _conflicts(f, used)]
            if options:
                fam = rng.choice(options)
                roles[fam] = role
                used.add(fam)

        pick("lead", sty.lead)
        pick("chords", sty.chords)
        if rng.random() < sty.pad_prob or len(roles) < 2:
            pick("pad", sty.pads)
        if "bass" not in used and (rng.random() < sty.bass_prob or len(roles) < 2):
            roles["bass"] = "bass"
        order = {"lead": 0, "chords": 1, "pad": 2, "bass": 3}
        return dict(sorted(roles.items(), key=lambda kv: order[kv[1]]))

    def _program(self, family: str) -> int:
        options = self.style.programs.get(family) or styles.FAMILY_PROGRAMS[family]
        return self.rng.choice(options)

    def _instrument_part(
        self,
        frame: Frame,
        family: str,
        role: str,
        tune: melody.Tune,
        vocal_kind: str | None,
    ) -> Part:
        """The family's part for its role: the tune, a counter line, chords or bass."""
        part = Part(stem=family, role=role, program=self._program(family))
        rng_range = styles.FAMILY_RANGES[family]
        if role == "lead":
            if vocal_kind == "sung":
                part.notes = harmony.counter_line(frame, family)
            else:
                part.notes = melody.fold_melody(frame, tune, family, frame.vel(8))
        elif role == "solo":
            part.notes = melody.fold_melody(frame, tune, family, frame.vel(8))
            if family in styles.POLYPHONIC_FAMILIES:
                low = (rng_range[0], max(rng_range[0] + 12, 60))
                part.notes += harmony.comp(
                    frame, self.rng.choice(("arpeggio", "block")), low, 52, -12
                )
        elif role == "chords":
            style = self.rng.choice(self.style.comp_style)
            part.notes = harmony.comp(frame, style, rng_range, 60, -6)
        elif role == "pad":
            part.notes = harmony.comp(frame, "sustain", rng_range, 58, -14)
        elif role == "bass":
            part.notes = rhythm.bass(
                frame, self.rng.choice(self.style.bass_style), rng_range
            )
        return part

    def _voice_part(
        self, frame: Frame, kind: str, tune: melody.Tune
    ) -> tuple[Part, str | None]:
        """The vocals stem: a choir patch comping, or espeak-ng words on the tune."""
        if kind == "choir":
            part = Part(stem="vocals", role="vocals", program=self._program("choir"))
            part.notes = harmony.comp(
                frame,
                "sustain" if self.rng.random() < 0.7 else "block",
                styles.FAMILY_RANGES["choir"],
                62,
                -4,
            )
            return part, None
        voice, register, voice_notes = melody.words(
            frame, kind, tune, dense=self.spec.style == "hip hop"
        )
        part = Part(
            stem="vocals",
            role="vocals",
            program=-1,
            espeak_voice=voice,
            voice_notes=voice_notes,
        )
        return part, register


def _clean(notes: list[pretty_midi.Note], duration: float) -> list[pretty_midi.Note]:
    """Drop notes past the end; trim same-pitch overlaps (a note-off cuts the next)."""
    notes = sorted(
        (n for n in notes if n.start < duration - 0.03),
        key=lambda n: (n.pitch, n.start),
    )
    for a, b in itertools.pairwise(notes):
        if a.pitch == b.pitch and a.end > b.start - 0.005:
            a.end = max(a.start + 0.01, b.start - 0.005)
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def compose(spec: PieceSpec) -> Piece:
    """The piece for a spec (deterministic: same spec, same piece)."""
    return Composer(spec).compose()
