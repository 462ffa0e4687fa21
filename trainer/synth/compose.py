"""Procedural composition: a PieceSpec (style, seed, minimal pair) -> a scored Piece.

A piece is a set of parts, each becoming one stem: instrument families
(lead, chords, pad, bass), drums on MIDI channel 10, and at most one voice
part (a GM choir patch, or espeak-ng words sung on the melody's pitches or
spoken in rhythm). Everything is drawn from one seeded `random.Random`, so a
piece depends only on its spec.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

import pretty_midi

from trainer.synth import styles
from trainer.synth.styles import STYLE_SPECS, StyleSpec

VOCAL_KINDS = ("choir", "sung", "spoken")
LEXICON: tuple[str, ...] = (
    "love",
    "night",
    "home",
    "light",
    "heart",
    "dream",
    "rain",
    "fire",
    "sky",
    "baby",
    "yeah",
    "gold",
    "sun",
    "time",
    "away",
    "stay",
    "fly",
    "hold",
    "free",
    "alone",
    "tonight",
    "forever",
    "river",
    "shine",
    "la",
    "oh",
)
# espeak-ng voices: (voice id, register) — register picks the sung range.
ESPEAK_VOICES: tuple[tuple[str, str], ...] = (
    ("en", "low"),
    ("en+m3", "low"),
    ("en+f2", "high"),
    ("en+f4", "high"),
)
VOICE_RANGES: dict[str, tuple[int, int]] = {"low": (45, 59), "high": (55, 69)}


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
class VoiceNote:
    """One espeak-ng word: sung at `pitch` (MIDI) or spoken when pitch is None."""

    start: float
    end: float
    word: str
    pitch: int | None


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


class _Grid:
    """Bar/step timing with swing: 16 sixteenth steps per 4/4 bar, 12 per 3/4 bar."""

    def __init__(self, bpm: float, beats_per_bar: int, swing: float) -> None:
        self.beat = 60.0 / bpm
        self.beats_per_bar = beats_per_bar
        self.steps = 4 * beats_per_bar
        self.bar = self.beat * beats_per_bar
        self.sixteenth = self.beat / 4
        self.swing = swing

    def time(self, bar: int, step: float) -> float:
        shift = (
            self.swing * self.beat / 2
            if int(step) % 4 == 2 and step == int(step)
            else 0.0
        )
        return bar * self.bar + step * self.sixteenth + shift


def _chord_pcs(
    spec: StyleSpec, key: int, mode: str, degree: int
) -> tuple[int, list[int]]:
    """(root pitch class, chord pitch classes) of a scale degree in the style."""
    scale = styles.SCALES[mode]
    root = (key + scale[degree % 7]) % 12
    if spec.chord == "power":
        return root, [root, (root + 7) % 12]
    if spec.chord == "dominant":
        third = 3 if (mode == "minor" and degree % 7 != 4) else 4
        return root, [(root + i) % 12 for i in (0, third, 7, 10)]
    steps = (0, 2, 4, 6) if spec.chord == "seventh" else (0, 2, 4)
    pcs = [(key + scale[(degree + s) % 7]) % 12 for s in steps]
    if (
        mode == "minor" and degree % 7 == 4
    ):  # harmonic minor: major V with a leading tone
        pcs[1] = (pcs[1] + 1) % 12
    return root, pcs


def _nearest(pc: int, center: int, lo: int, hi: int) -> int:
    """The pitch with pitch class `pc` closest to `center`, folded into [lo, hi]."""
    pitch = center + ((pc - center) % 12)
    if pitch - center > 6:
        pitch -= 12
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def _voicing(
    pcs: list[int], center: int, rng_range: tuple[int, int], size: int
) -> list[int]:
    lo, hi = rng_range
    notes = sorted({_nearest(pc, center + 3 * i, lo, hi) for i, pc in enumerate(pcs)})
    extra = 0
    while len(notes) < size and extra < 4:  # double the root an octave up
        cand = notes[0] + 12 * (extra + 1)
        if cand <= hi and cand not in notes:
            notes.append(cand)
        extra += 1
    return sorted(notes)


class Composer:
    """Builds one Piece from a PieceSpec; every random draw is from one seeded rng."""

    def __init__(self, spec: PieceSpec) -> None:
        self.spec = spec
        self.style = STYLE_SPECS[spec.style]
        self.rng = random.Random(f"compose:{spec.seed}:{spec.index}")

    # ----------------------------------------------------------------- plan
    def compose(self) -> Piece:
        spec, sty, rng = self.spec, self.style, self.rng
        bpm = float(rng.randint(*sty.tempo))
        mode = "major" if rng.random() < sty.major_prob else "minor"
        key = rng.randrange(12)
        energy = _weighted(rng, sty.energy)
        beats = 3 if rng.random() < sty.waltz_prob else 4
        swing = sty.swing if beats == 4 else 0.0
        self.grid = _Grid(bpm, beats, swing)
        self.key, self.mode, self.energy = key, mode, energy
        self.velocity = styles.ENERGY_VELOCITY[energy]
        self.humanize = spec.style not in ("electronic",)

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

        n_bars = math.ceil(spec.duration / self.grid.bar) + 1
        prog = rng.choice(
            sty.progressions_major if mode == "major" else sty.progressions_minor
        )
        self.chords = [
            _chord_pcs(sty, key, mode, prog[(bar // sty.bars_per_chord) % len(prog)])
            for bar in range(n_bars)
        ]
        self.n_bars = n_bars

        parts: list[Part] = []
        if solo:
            family = rng.choice(sty.solo)
            roles = {family: "solo"}
        else:
            roles = self._choose_families(forced, vocal_kind)
        melody = self._melody(roles, vocal_kind)
        for family, role in roles.items():
            parts.append(self._instrument_part(family, role, melody, vocal_kind))
        kit_name = None
        if drums:
            kit_name = rng.choice(sty.kits)
            parts.append(self._drum_part(kit_name))
        voice_register = None
        if vocals:
            part, voice_register = self._voice_part(vocal_kind, melody)
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

    # -------------------------------------------------------------- helpers
    def _t(self, bar: int, step: float, jitter: float = 0.004) -> float:
        t = self.grid.time(bar, step)
        if self.humanize and jitter:
            t += self.rng.gauss(0.0, jitter)
        return max(0.0, t)

    def _vel(self, offset: int = 0, spread: int = 8) -> int:
        return max(
            1, min(127, self.velocity + offset + self.rng.randint(-spread, spread))
        )

    def _program(self, family: str) -> int:
        options = self.style.programs.get(family) or styles.FAMILY_PROGRAMS[family]
        return self.rng.choice(options)

    # --------------------------------------------------------------- melody
    def _melody(
        self, roles: dict[str, str], vocal_kind: str | None
    ) -> list[tuple[float, float, int]]:
        """The tune as (start, end, MIDI pitch) around G4; parts fold it into range.

        A two-bar motif rhythm pattern (A A B A) with scale-wise motion, landing
        on chord tones on the beats: enough structure to sound like a melody.
        """
        g, rng, sty = self.grid, self.rng, self.style
        scale = styles.SCALES[self.mode]
        tonic = 60 + (self.key if self.key < 6 else self.key - 12)

        def pitch_of(deg: int) -> int:
            return tonic + scale[deg % 7] + 12 * (deg // 7)

        density = rng.randint(*sty.melody_density)

        def rhythm() -> list[int]:
            slots = list(range(0, g.steps, 2 if density <= g.steps // 2 else 1))
            chosen = set(rng.sample(slots, min(density, len(slots))))
            if rng.random() < 0.7:
                chosen.add(0)
            return sorted(chosen)

        motif_a, motif_b = rhythm(), rhythm()
        plan = [motif_a, motif_a, motif_b, motif_a]
        deg = rng.choice((0, 2, 4))
        notes: list[tuple[float, float, int]] = []
        for bar in range(self.n_bars):
            steps = plan[bar % 4]
            if bar % 4 == 3 and rng.random() < 0.5:  # breathe at the phrase end
                steps = [s for s in steps if s < g.steps // 2] or steps[:1]
            chord_pcs = self.chords[bar][1]
            for i, step in enumerate(steps):
                if step % 4 == 0:
                    near = [
                        d
                        for d in range(deg - 3, deg + 4)
                        if pitch_of(d) % 12 in chord_pcs
                    ]
                    deg = rng.choice(near) if near else deg
                else:
                    deg += rng.choice((-2, -1, -1, 1, 1, 2, 0, 3, -3))
                deg = max(-2, min(9, deg))
                nxt = steps[i + 1] if i + 1 < len(steps) else g.steps
                start = self._t(bar, step)
                end = g.time(bar, nxt) - 0.02
                notes.append((start, max(start + 0.08, end), pitch_of(deg)))
        return notes

    # ---------------------------------------------------------------- parts
    def _instrument_part(
        self,
        family: str,
        role: str,
        melody: list[tuple[float, float, int]],
        vocal_kind: str | None,
    ) -> Part:
        part = Part(stem=family, role=role, program=self._program(family))
        rng_range = styles.FAMILY_RANGES[family]
        if role == "lead":
            if vocal_kind == "sung":
                part.notes = self._counter_line(family)
            else:
                part.notes = self._fold_melody(melody, family, self._vel(8))
        elif role == "solo":
            part.notes = self._fold_melody(melody, family, self._vel(8))
            if family in styles.POLYPHONIC_FAMILIES:
                low = (rng_range[0], max(rng_range[0] + 12, 60))
                part.notes += self._comp(
                    self.rng.choice(("arpeggio", "block")), low, 52, -12
                )
        elif role == "chords":
            style = self.rng.choice(self.style.comp_style)
            part.notes = self._comp(style, rng_range, 60, -6)
        elif role == "pad":
            part.notes = self._comp("sustain", rng_range, 58, -14)
        elif role == "bass":
            part.notes = self._bass(self.rng.choice(self.style.bass_style), rng_range)
        return part

    def _fold_melody(
        self, melody: list[tuple[float, float, int]], family: str, vel: int
    ) -> list[pretty_midi.Note]:
        lo, hi = styles.FAMILY_RANGES[family]
        center = (lo + hi) // 2
        shift = 12 * round((center - 67) / 12)
        notes = []
        for start, end, pitch in melody:
            p = pitch + shift
            while p < lo:
                p += 12
            while p > hi:
                p -= 12
            notes.append(
                pretty_midi.Note(self._vel(vel - self.velocity, 6), p, start, end)
            )
        return notes

    def _counter_line(self, family: str) -> list[pretty_midi.Note]:
        """Held chord tones under a sung melody, so singer and lead do not collide."""
        lo, hi = styles.FAMILY_RANGES[family]
        center = min(hi - 6, max(lo + 6, 60))
        notes = []
        for bar in range(self.n_bars):
            pcs = self.chords[bar][1]
            for half in range(2) if self.rng.random() < 0.5 else range(1):
                step = half * self.grid.steps // 2
                dur_steps = self.grid.steps // (
                    2 if half or self.rng.random() < 0.5 else 1
                )
                p = _nearest(self.rng.choice(pcs), center, lo, hi)
                start = self._t(bar, step)
                notes.append(
                    pretty_midi.Note(
                        self._vel(-6),
                        p,
                        start,
                        start + dur_steps * self.grid.sixteenth * 0.95,
                    )
                )
        return notes

    def _comp(
        self, style: str, rng_range: tuple[int, int], center: int, vel_offset: int
    ) -> list[pretty_midi.Note]:
        g, rng = self.grid, self.rng
        lo, hi = rng_range
        center = min(max(center, lo + 7), hi - 7)
        notes: list[pretty_midi.Note] = []
        bars_per_chord = self.style.bars_per_chord

        def add(
            bar: int,
            step: float,
            dur_steps: float,
            pitches: list[int],
            off: int = 0,
            spread: float = 0.0,
        ) -> None:
            start = self._t(bar, step)
            end = start + dur_steps * g.sixteenth * 0.92
            for i, p in enumerate(pitches):
                s = start + i * spread
                notes.append(
                    pretty_midi.Note(
                        self._vel(vel_offset + off), p, s, max(s + 0.05, end)
                    )
                )

        for bar in range(self.n_bars):
            root, pcs = self.chords[bar]
            voicing = _voicing(
                pcs,
                center,
                (lo, hi),
                4 if style in ("strum", "block", "sustain") else 3,
            )
            S = g.steps
            if style == "sustain":
                if bar % bars_per_chord == 0:
                    add(bar, 0, S * bars_per_chord, voicing)
            elif style == "block":
                if rng.random() < 0.5:
                    add(bar, 0, S, voicing)
                else:
                    add(bar, 0, S // 2, voicing)
                    add(bar, S // 2, S // 2, voicing, -4)
            elif style == "strum":
                pattern = (0, 4, 6, 10, 12, 14) if S == 16 else (0, 4, 6, 8, 10)
                for i, step in enumerate(pattern):
                    nxt = pattern[i + 1] if i + 1 < len(pattern) else S
                    down = step % 4 == 0
                    add(
                        bar,
                        step,
                        nxt - step,
                        voicing if down else voicing[::-1],
                        0 if down else -10,
                        spread=0.012,
                    )
            elif style in ("arpeggio", "alberti"):
                order = [0, 2, 1, 2] if style == "alberti" else [0, 1, 2, 1]
                seq = (
                    [*voicing, voicing[0] + 12]
                    if style == "arpeggio" and voicing[0] + 12 <= hi
                    else voicing
                )
                for i, step in enumerate(range(0, S, 2)):
                    idx = order[i % 4] if style == "alberti" else i % len(seq)
                    add(bar, step, 2.2, [seq[idx % len(seq)]], -4 if step % 4 else 0)
            elif style == "power":
                p = _nearest(root, center - 12, max(lo, 40), hi)
                chord = [p, p + 7, p + 12] if p + 12 <= hi else [p, p + 7]
                for step in range(0, S, 2):
                    add(bar, step, 1.2, chord, 6 if step % 4 == 0 else 0)
            elif style == "skank":
                for step in range(4, S, 8):
                    add(bar, step, 1.2, voicing, 4)
            elif style == "stab":
                for step in sorted(rng.sample([2, 3, 6, 7, 10, 11, 14][: S - 2], 3)):
                    add(bar, step, 1.0, voicing, 6)
            elif style == "jazz_comp":
                shell = voicing[:3]
                for step in sorted(rng.sample([0, 3, 6, 10, 11, 14][: S - 2], 2)):
                    add(bar, step, rng.choice((2, 3, 4)), shell, -6)
            elif style == "montuno":
                for i, step in enumerate((0, 3, 6, 8, 11, 14)):
                    if step < S:
                        add(
                            bar, step, 1.5, voicing if i % 2 == 0 else [voicing[-1]], -2
                        )
            else:  # pragma: no cover - tables are checked at import
                raise ValueError(f"unknown comp style {style}")
        return notes

    def _bass(self, style: str, rng_range: tuple[int, int]) -> list[pretty_midi.Note]:
        g, rng = self.grid, self.rng
        lo, hi = rng_range
        notes: list[pretty_midi.Note] = []
        S = g.steps

        def add(bar: int, step: float, dur: float, pitch: int, off: int = 0) -> None:
            start = self._t(bar, step, 0.003)
            notes.append(
                pretty_midi.Note(
                    self._vel(off, 5),
                    pitch,
                    start,
                    start + max(0.06, dur * g.sixteenth * 0.9),
                )
            )

        for bar in range(self.n_bars):
            root_pc, pcs = self.chords[bar]
            root = _nearest(root_pc, 40, lo, min(hi, 52))
            fifth = root + 7 if root + 7 <= hi else root - 5
            octave = root + 12 if root + 12 <= hi else root
            if style == "eighths":
                for step in range(0, S, 2):
                    add(bar, step, 2, root, 4 if step % 4 == 0 else 0)
            elif style == "sixteenths":
                for step in range(S):
                    add(bar, step, 1, root, 4 if step % 4 == 0 else -2)
            elif style == "root_fifth":
                for beat in range(g.beats_per_bar):
                    add(bar, 4 * beat, 3, root if beat % 2 == 0 else fifth)
            elif style == "walking":
                nxt_root = _nearest(
                    self.chords[min(bar + 1, self.n_bars - 1)][0], 40, lo, min(hi, 52)
                )
                tones = [root, _nearest(rng.choice(pcs), root + 4, lo, hi), fifth]
                line = ([*tones, nxt_root + rng.choice((-1, 1))])[: g.beats_per_bar]
                for beat, p in enumerate(line):
                    add(bar, 4 * beat, 3.6, p)
            elif style == "half":
                add(bar, 0, S / 2, root)
                add(bar, S / 2, S / 2, fifth, -4)
            elif style == "whole":
                if bar % self.style.bars_per_chord == 0:
                    add(bar, 0, S * self.style.bars_per_chord, root)
            elif style == "offbeat":
                for step in range(2, S, 4):
                    add(bar, step, 1.6, root)
            elif style == "hiphop":
                add(bar, 0, 6, root, 6)
                add(bar, min(7, S - 2), 2, octave if rng.random() < 0.3 else root)
                add(bar, min(10, S - 2), 4, root)
            elif style == "reggae":
                for step, p in zip(
                    (0, 3, 6, 8, 11), (root, root, fifth, root, octave), strict=True
                ):
                    if step < S:
                        add(bar, step, 2.5, p)
            elif style == "bossa":
                for step, p, d in (
                    (0, root, 5),
                    (6, root, 2),
                    (8, fifth, 5),
                    (14, fifth, 2),
                ):
                    if step < S:
                        add(bar, step, d, p)
            elif style == "tumbao":
                for step, p in ((6, root), (12, fifth)):
                    if step < S:
                        add(bar, step, 5, p)
            elif style == "funk":
                for step, p in (
                    (0, root),
                    (3, octave),
                    (6, root),
                    (10, fifth),
                    (11, root),
                    (14, octave),
                ):
                    if step < S:
                        add(bar, step, 1.2, p, 6 if step == 0 else 0)
            else:  # pragma: no cover - tables are checked at import
                raise ValueError(f"unknown bass style {style}")
        return notes

    def _drum_part(self, kit_name: str) -> Part:
        g, rng, sty = self.grid, self.rng, self.style
        part = Part(
            stem="drums", role="drums", program=styles.DRUM_KITS[kit_name], is_drum=True
        )
        names = ("waltz",) if g.beats_per_bar == 3 else sty.drum_patterns
        pattern = rng.choice(styles.DRUM_PATTERNS[rng.choice(names)])
        fills = sty.drum_patterns and sty.drum_patterns[0] in (
            "rock",
            "pop",
            "metal",
            "funk",
            "shuffle",
            "country",
        )
        accents = {"x": 14, "o": 0, ".": -28}
        for bar in range(self.n_bars):
            fill = fills and bar % 4 == 3 and rng.random() < 0.5
            for key, row in pattern.items():
                for step, ch in enumerate(row[: g.steps]):
                    if ch == "-" or (fill and step >= g.steps - 4):
                        continue
                    start = self._t(bar, step, 0.003)
                    part.notes.append(
                        pretty_midi.Note(
                            self._vel(accents[ch], 6), key, start, start + 0.1
                        )
                    )
            if fill:
                toms = (
                    styles.TOM_HIGH,
                    styles.TOM_HIGH,
                    styles.TOM_MID,
                    styles.TOM_LOW,
                )
                for i, step in enumerate(range(g.steps - 4, g.steps)):
                    key = rng.choice((toms[i], styles.SNARE))
                    start = self._t(bar, step, 0.003)
                    part.notes.append(
                        pretty_midi.Note(self._vel(6), key, start, start + 0.1)
                    )
            if (bar == 0 or (fill and bar + 1 < self.n_bars)) and fills:
                start = self._t(bar + (0 if bar == 0 and not fill else 1), 0, 0.0)
                part.notes.append(
                    pretty_midi.Note(self._vel(10), styles.CRASH, start, start + 0.1)
                )
        return part

    def _voice_part(
        self, kind: str, melody: list[tuple[float, float, int]]
    ) -> tuple[Part, str | None]:
        rng, g = self.rng, self.grid
        if kind == "choir":
            part = Part(stem="vocals", role="vocals", program=self._program("choir"))
            part.notes = self._comp(
                "sustain" if rng.random() < 0.7 else "block",
                styles.FAMILY_RANGES["choir"],
                62,
                -4,
            )
            return part, None
        voice, register = rng.choice(ESPEAK_VOICES)
        part = Part(stem="vocals", role="vocals", program=-1, espeak_voice=voice)
        if kind == "sung":
            lo, hi = VOICE_RANGES[register]
            shift = 12 * round(((lo + hi) / 2 - 67) / 12)
            for i, (start, end, pitch) in enumerate(melody):
                p = pitch + shift
                while p < lo:
                    p += 12
                while p > hi:
                    p -= 12
                word = (
                    LEXICON[(i * 7 + rng.randrange(3)) % len(LEXICON)]
                    if i % 5
                    else rng.choice(LEXICON)
                )
                part.voice_notes.append(
                    VoiceNote(start, max(end, start + 0.25), word, p)
                )
        else:  # spoken: words on the eighth-note grid, denser for hip hop
            per_bar = (
                rng.randint(4, 7) if self.spec.style == "hip hop" else rng.randint(2, 4)
            )
            slots = list(range(0, g.steps, 2))
            for bar in range(self.n_bars):
                if bar % 4 == 3 and rng.random() < 0.4:
                    continue
                for step in sorted(rng.sample(slots, min(per_bar, len(slots)))):
                    start = self._t(bar, step)
                    part.voice_notes.append(
                        VoiceNote(
                            start, start + 2 * g.sixteenth, rng.choice(LEXICON), None
                        )
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
