"""The tune: a motif-built melody, its fold into a range, and the words sung on it."""

from __future__ import annotations

from dataclasses import dataclass

import pretty_midi

from trainer.synth import styles
from trainer.synth.frame import Frame

# A melody note: (start, end, MIDI pitch).
Tune = list[tuple[float, float, int]]

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


@dataclass
class VoiceNote:
    """One espeak-ng word: sung at `pitch` (MIDI) or spoken when pitch is None."""

    start: float
    end: float
    word: str
    pitch: int | None


def melody(frame: Frame) -> Tune:
    """The tune as (start, end, MIDI pitch) around G4; parts fold it into range.

    A two-bar motif rhythm pattern (A A B A) with scale-wise motion, landing
    on chord tones on the beats: enough structure to sound like a melody.
    """
    g, rng, sty = frame.grid, frame.rng, frame.style
    scale = styles.SCALES[frame.mode]
    tonic = 60 + (frame.key if frame.key < 6 else frame.key - 12)

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
    notes: Tune = []
    for bar in range(frame.n_bars):
        steps = plan[bar % 4]
        if bar % 4 == 3 and rng.random() < 0.5:  # breathe at the phrase end
            steps = [s for s in steps if s < g.steps // 2] or steps[:1]
        chord_pcs = frame.chords[bar][1]
        for i, step in enumerate(steps):
            if step % 4 == 0:
                near = [
                    d for d in range(deg - 3, deg + 4) if pitch_of(d) % 12 in chord_pcs
                ]
                deg = rng.choice(near) if near else deg
            else:
                deg += rng.choice((-2, -1, -1, 1, 1, 2, 0, 3, -3))
            deg = max(-2, min(9, deg))
            nxt = steps[i + 1] if i + 1 < len(steps) else g.steps
            start = frame.t(bar, step)
            end = g.time(bar, nxt) - 0.02
            notes.append((start, max(start + 0.08, end), pitch_of(deg)))
    return notes


def fold_melody(
    frame: Frame, tune: Tune, family: str, vel: int
) -> list[pretty_midi.Note]:
    """The tune moved by octaves into the family's range, played around `vel`."""
    lo, hi = styles.FAMILY_RANGES[family]
    center = (lo + hi) // 2
    shift = 12 * round((center - 67) / 12)
    notes = []
    for start, end, pitch in tune:
        p = pitch + shift
        while p < lo:
            p += 12
        while p > hi:
            p -= 12
        notes.append(
            pretty_midi.Note(frame.vel(vel - frame.velocity, 6), p, start, end)
        )
    return notes


def words(
    frame: Frame, kind: str, tune: Tune, dense: bool
) -> tuple[str, str, list[VoiceNote]]:
    """(espeak voice, register, words): sung on the tune, or spoken in rhythm.

    Spoken words sit on the eighth-note grid, more of them a bar when `dense`.
    """
    rng, g = frame.rng, frame.grid
    voice, register = rng.choice(ESPEAK_VOICES)
    notes: list[VoiceNote] = []
    if kind == "sung":
        lo, hi = VOICE_RANGES[register]
        shift = 12 * round(((lo + hi) / 2 - 67) / 12)
        for i, (start, end, pitch) in enumerate(tune):
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
            notes.append(VoiceNote(start, max(end, start + 0.25), word, p))
    else:
        per_bar = rng.randint(4, 7) if dense else rng.randint(2, 4)
        slots = list(range(0, g.steps, 2))
        for bar in range(frame.n_bars):
            if bar % 4 == 3 and rng.random() < 0.4:
                continue
            for step in sorted(rng.sample(slots, min(per_bar, len(slots)))):
                start = frame.t(bar, step)
                notes.append(
                    VoiceNote(start, start + 2 * g.sixteenth, rng.choice(LEXICON), None)
                )
    return voice, register, notes
