"""Per-style musical recipes and per-family General MIDI programs for the corpus.

Every choice the composer makes is drawn from these tables, so what a style
"is" here can be read in one place: the style recipes in styles.yaml, the
rest below (docs/benchmark.md summarises them).
Names of styles and instrument families are the terms of `trainer.vocab`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer import vocab

# General MIDI programs (0-based) per instrument family. "bass" and "piano"
# get style-specific choices through StyleSpec.programs.
FAMILY_PROGRAMS: dict[str, tuple[int, ...]] = {
    "piano": (0, 1),
    "acoustic guitar": (24, 25),
    "electric guitar": (26, 27),
    "distorted guitar": (29, 30),
    "bass": (33, 34),
    "strings": (48, 49),
    "violin": (40,),
    "cello": (42,),
    "brass": (61, 57, 60),
    "trumpet": (56,),
    "saxophone": (64, 65, 66),
    "flute": (73,),
    "clarinet": (71,),
    "organ": (16, 17, 18, 19),
    "synth lead": (80, 81),
    "synth pad": (88, 89, 90, 94),
    "harp": (46,),
    "choir": (52, 53),
}

# Playable MIDI range per family: melodies and voicings are folded into it.
FAMILY_RANGES: dict[str, tuple[int, int]] = {
    "piano": (36, 96),
    "acoustic guitar": (40, 81),
    "electric guitar": (40, 84),
    "distorted guitar": (40, 79),
    "bass": (28, 55),
    "strings": (40, 88),
    "violin": (55, 93),
    "cello": (36, 69),
    "brass": (41, 77),
    "trumpet": (55, 82),
    "saxophone": (49, 80),
    "flute": (60, 93),
    "clarinet": (50, 86),
    "organ": (36, 88),
    "synth lead": (48, 88),
    "synth pad": (40, 84),
    "harp": (36, 91),
    "choir": (48, 76),
}

# Families that overlap in meaning never share a piece: a violin is a string
# instrument, a trumpet is brass, a distorted guitar is an electric guitar.
# Keeping them apart keeps "no strings" / "instrument removed" exactly true.
EXCLUSIVE_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"strings", "violin"}),
    frozenset({"strings", "cello"}),
    frozenset({"brass", "trumpet"}),
    frozenset({"electric guitar", "distorted guitar"}),
)

# GM percussion kits (bank 128), present in both FluidR3_GM and TimGM6mb.
DRUM_KITS: dict[str, int] = {
    "standard": 0,
    "room": 8,
    "power": 16,
    "electronic": 24,
    "808": 25,
    "jazz": 32,
    "brush": 40,
}

# GM percussion keys.
KICK, SIDESTICK, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT = (
    36,
    37,
    38,
    39,
    42,
    44,
    46,
)
TOM_LOW, TOM_MID, TOM_HIGH, CRASH, RIDE, TAMBOURINE, COWBELL = (
    45,
    47,
    50,
    49,
    51,
    54,
    56,
)
CONGA_MUTE, CONGA_OPEN, CONGA_LOW, MARACAS, CLAVES = 62, 63, 64, 70, 75

# Drum patterns: one string per key, one character per sixteenth step
# (16 steps in 4/4, 12 in 3/4): 'x' accent, 'o' normal, '.' ghost, '-' rest.
Pattern = dict[int, str]
DRUM_PATTERNS: dict[str, tuple[Pattern, ...]] = {
    "rock": (
        {
            KICK: "x-------x-x-----",
            SNARE: "----x-------x---",
            CLOSED_HAT: "o-o-o-o-o-o-o-o-",
        },
        {KICK: "x-----x-x-------", SNARE: "----x-------x---", RIDE: "o-o-o-o-o-o-o-o-"},
    ),
    "pop": (
        {
            KICK: "x-----x-x-----x-",
            SNARE: "----x-------x---",
            CLOSED_HAT: "o-o-o-o-o-o-o-o-",
            TAMBOURINE: "----o-------o---",
        },
        {
            KICK: "x-------x-------",
            CLAP: "----x-------x---",
            CLOSED_HAT: "oooooooooooooooo",
        },
    ),
    "metal": (
        {
            KICK: "xoxoxoxoxoxoxoxo",
            SNARE: "----x-------x---",
            CRASH: "x---o---o---o---",
        },
        {KICK: "x-x-x-x-x-x-x-x-", SNARE: "----x-------x---", RIDE: "x-o-x-o-x-o-x-o-"},
    ),
    "funk": (
        {
            KICK: "x--x------x-----",
            SNARE: "----x--.-.--x--.",
            CLOSED_HAT: "xoooxoooxoooxooo",
        },
        {
            KICK: "x-----x---x--x--",
            SNARE: "----x-.-----x-.-",
            CLOSED_HAT: "xoxoxoxoxoxoxo-o",
            OPEN_HAT: "--------------x-",
        },
    ),
    "hiphop": (
        {
            KICK: "x------x--x-----",
            SNARE: "----x-------x---",
            CLOSED_HAT: "o-o-o-o-o-o-o-o-",
        },
        {
            KICK: "x-x-------x--x--",
            CLAP: "----x-------x---",
            CLOSED_HAT: "oooooooooooooooo",
        },
    ),
    "electronic": (
        {
            KICK: "x---x---x---x---",
            CLAP: "----x-------x---",
            OPEN_HAT: "--o---o---o---o-",
            CLOSED_HAT: "o.o.o.o.o.o.o.o.",
        },
        {
            KICK: "x---x---x---x---",
            SNARE: "----x-------x---",
            CLOSED_HAT: "oooooooooooooooo",
        },
    ),
    "reggae": (
        {
            KICK: "--------x-------",
            SIDESTICK: "--------x-------",
            CLOSED_HAT: "o-o-o-o-o-o-o-o-",
        },
        {
            KICK: "x-------x-------",
            SNARE: "--------x-------",
            CLOSED_HAT: "o-o-o-o-o-o-o-o-",
        },
    ),
    "latin": (
        {
            KICK: "x--ox--ox--ox--o",
            SIDESTICK: "x--x--x---x--x--",
            MARACAS: "oooooooooooooooo",
            CONGA_OPEN: "------o-x-----o-",
        },
        {
            CLAVES: "x--x---x--x-x---",
            CONGA_MUTE: "o-o-o-o-o-o-o-o-",
            CONGA_OPEN: "---x------xx----",
            KICK: "x-------x-------",
            COWBELL: "x---x---x---x---",
        },
    ),
    "jazz": (
        {
            RIDE: "x---x-o-x---x-o-",
            PEDAL_HAT: "----x-------x---",
            KICK: "........--------",
            SNARE: "------.-----.--.",
        },
    ),
    "shuffle": (
        {
            KICK: "x-------x-------",
            SNARE: "----x-------x---",
            CLOSED_HAT: "o-o-o-o-o-o-o-o-",
        },
        {KICK: "x-----x-x-------", SNARE: "----x-------x---", RIDE: "o-o-o-o-o-o-o-o-"},
    ),
    "country": (
        {
            KICK: "x-------x-------",
            SNARE: "..o.x.o...o.x.o.",
            CLOSED_HAT: "o-o-o-o-o-o-o-o-",
        },
    ),
    "folk": (
        {
            KICK: "x-------x-------",
            SIDESTICK: "----o-------o---",
            MARACAS: "o-o-o-o-o-o-o-o-",
        },
        {KICK: "x-------x-------", TAMBOURINE: "----o-------o---"},
    ),
    "ambient": (
        {
            KICK: "x---------------",
            MARACAS: "--o---o---o---o-",
            RIDE: "o-------o-------",
        },
    ),
    "waltz": (
        {KICK: "x-----------", SNARE: "----o---o---", CLOSED_HAT: "o-o-o-o-o-o-"},
    ),
}

# Progressions as scale degrees (0 = tonic). Chords are built from the scale.
Progression = tuple[int, ...]


@dataclass(frozen=True)
class StyleSpec:
    """What makes a style: tempo range, harmony, rhythm and instrument pools."""

    tempo: tuple[int, int]
    major_prob: float
    progressions_major: tuple[Progression, ...]
    progressions_minor: tuple[Progression, ...]
    chord: str  # triad | seventh | power | dominant (12-bar blues)
    bars_per_chord: int
    drums_prob: float
    kits: tuple[str, ...]
    drum_patterns: tuple[str, ...]
    swing: float  # 0 straight, 0.33 triplet swing of off-beat eighths
    lead: tuple[str, ...]
    chords: tuple[str, ...]
    pads: tuple[str, ...]
    pad_prob: float
    bass_prob: float
    bass_style: tuple[str, ...]
    comp_style: tuple[str, ...]
    vocals_prob: float
    vocal_kinds: dict[str, float]
    energy: dict[str, float]
    solo: tuple[str, ...] = ()
    solo_prob: float = 0.0
    waltz_prob: float = 0.0
    melody_density: tuple[int, int] = (3, 6)  # notes per bar
    reverb_seconds: float = 1.0
    programs: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _tuples(value: Any) -> Any:
    """YAML lists as tuples (nested too), so the specs stay hashable values."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _load_style_specs() -> dict[str, StyleSpec]:
    """The style recipes, kept as data in styles.yaml beside this module."""
    import yaml

    text = (Path(__file__).parent / "styles.yaml").read_text(encoding="utf-8")
    return {
        name: StyleSpec(**_tuples(fields))
        for name, fields in yaml.safe_load(text).items()
    }


STYLE_SPECS: dict[str, StyleSpec] = _load_style_specs()

# Families a solo piece plays with chords and melody in one part (the rest
# of the solo families play the melody alone).
POLYPHONIC_FAMILIES: frozenset[str] = frozenset(
    {"piano", "acoustic guitar", "electric guitar", "harp", "organ", "synth pad"}
)

# Relative stem levels in dB (the lead on top; nothing buried so deep that
# removing it would not change the mix).
ROLE_LEVEL_DB: dict[str, float] = {
    "lead": 0.0,
    "vocals": 0.0,
    "drums": -2.0,
    "bass": -4.0,
    "chords": -5.0,
    "pad": -8.0,
    "solo": 0.0,
}
# Reverb send per role (drums and bass drier than pads).
ROLE_REVERB_SEND: dict[str, float] = {
    "lead": 0.25,
    "vocals": 0.3,
    "drums": 0.12,
    "bass": 0.05,
    "chords": 0.25,
    "pad": 0.45,
    "solo": 0.3,
}
# Mix loudness per energy word (RMS, dBFS) and base MIDI velocity.
ENERGY_RMS_DB: dict[str, float] = {"soft": -25.0, "medium energy": -20.0, "loud": -16.0}
ENERGY_VELOCITY: dict[str, int] = {"soft": 52, "medium energy": 78, "loud": 104}

# Tempo word thresholds (BPM): slow < 85 <= medium <= 125 < fast.
SLOW_BELOW = 85.0
FAST_ABOVE = 125.0

KEY_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
}


def _check_tables() -> None:
    """Fail at import if a table names a term the shared vocabulary lacks."""
    assert set(STYLE_SPECS) == set(vocab.STYLES), set(STYLE_SPECS) ^ set(vocab.STYLES)
    assert set(FAMILY_PROGRAMS) == set(vocab.INSTRUMENTS)
    assert set(FAMILY_RANGES) == set(vocab.INSTRUMENTS)
    for name, spec in STYLE_SPECS.items():
        for fam in (*spec.lead, *spec.chords, *spec.pads, *spec.solo, *spec.programs):
            assert fam in FAMILY_PROGRAMS, (name, fam)
        assert abs(sum(spec.energy.values()) - 1.0) < 1e-6, name
        assert set(spec.energy) <= set(vocab.ENERGIES), name
        for kit in spec.kits:
            assert kit in DRUM_KITS, (name, kit)
        for pattern in spec.drum_patterns:
            assert pattern in DRUM_PATTERNS, (name, pattern)


_check_tables()


def tempo_word(bpm: float) -> str:
    if bpm < SLOW_BELOW:
        return "slow"
    if bpm > FAST_ABOVE:
        return "fast"
    return "medium"


def mood_word(mode: str, tempo: str, energy: str) -> str:
    """The mood term is a fixed function of mode, tempo and energy (so it is exact)."""
    if mode == "major":
        if energy == "loud" and tempo != "slow":
            return "uplifting"
        return {"fast": "happy", "medium": "cheerful", "slow": "bright"}[tempo]
    if energy == "loud" and tempo != "slow":
        return "dark"
    if energy == "soft" and tempo == "medium":
        return "moody"
    return {"fast": "dark", "medium": "melancholic", "slow": "sad"}[tempo]
