"""Per-style musical recipes and per-family General MIDI programs for the corpus.

Every choice the composer makes is drawn from these tables, so what a style
"is" here can be read in one place (and docs/benchmark.md summarises it).
Names of styles and instrument families are the terms of `trainer.vocab`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


_MAJ_POP = ((0, 4, 5, 3), (0, 5, 3, 4), (3, 0, 4, 5), (0, 3, 4, 3))
_MIN_POP = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 3, 4))

STYLE_SPECS: dict[str, StyleSpec] = {
    "rock": StyleSpec(
        tempo=(100, 160),
        major_prob=0.6,
        progressions_major=((0, 3, 4, 3), (0, 4, 3, 0), (0, 3, 0, 4)),
        progressions_minor=((0, 5, 6, 0), (0, 3, 6, 4)),
        chord="power",
        bars_per_chord=1,
        drums_prob=0.9,
        kits=("standard", "room", "power"),
        drum_patterns=("rock",),
        swing=0.0,
        lead=("electric guitar", "distorted guitar", "organ", "piano"),
        chords=("distorted guitar", "electric guitar", "piano", "organ"),
        pads=("organ", "strings"),
        pad_prob=0.25,
        bass_prob=0.95,
        bass_style=("eighths",),
        comp_style=("power", "block"),
        vocals_prob=0.5,
        vocal_kinds={"sung": 0.8, "spoken": 0.1, "choir": 0.1},
        energy={"soft": 0.1, "medium energy": 0.4, "loud": 0.5},
        melody_density=(3, 6),
        reverb_seconds=0.8,
        programs={"bass": (33, 34)},
    ),
    "pop": StyleSpec(
        tempo=(90, 130),
        major_prob=0.7,
        progressions_major=_MAJ_POP,
        progressions_minor=_MIN_POP,
        chord="triad",
        bars_per_chord=1,
        drums_prob=0.85,
        kits=("standard", "room", "electronic"),
        drum_patterns=("pop",),
        swing=0.0,
        lead=("piano", "synth lead", "electric guitar", "saxophone", "flute"),
        chords=("piano", "acoustic guitar", "electric guitar", "synth pad"),
        pads=("strings", "synth pad"),
        pad_prob=0.4,
        bass_prob=0.9,
        bass_style=("eighths", "root_fifth"),
        comp_style=("block", "strum", "arpeggio"),
        vocals_prob=0.6,
        vocal_kinds={"sung": 0.8, "choir": 0.1, "spoken": 0.1},
        energy={"soft": 0.25, "medium energy": 0.5, "loud": 0.25},
        solo=("piano",),
        solo_prob=0.05,
        reverb_seconds=1.2,
        programs={"bass": (33, 38)},
    ),
    "jazz": StyleSpec(
        tempo=(70, 190),
        major_prob=0.55,
        progressions_major=((1, 4, 0, 0), (0, 5, 1, 4), (2, 5, 1, 4)),
        progressions_minor=((1, 4, 0, 0), (0, 3, 1, 4)),
        chord="seventh",
        bars_per_chord=1,
        drums_prob=0.8,
        kits=("jazz", "brush"),
        drum_patterns=("jazz",),
        swing=0.33,
        lead=(
            "saxophone",
            "trumpet",
            "piano",
            "clarinet",
            "electric guitar",
            "flute",
            "violin",
        ),
        chords=("piano", "electric guitar", "organ"),
        pads=("brass", "strings"),
        pad_prob=0.2,
        bass_prob=0.95,
        bass_style=("walking",),
        comp_style=("jazz_comp",),
        vocals_prob=0.3,
        vocal_kinds={"sung": 0.8, "spoken": 0.2},
        energy={"soft": 0.45, "medium energy": 0.45, "loud": 0.1},
        solo=("piano", "saxophone"),
        solo_prob=0.1,
        melody_density=(4, 8),
        reverb_seconds=1.0,
        programs={"bass": (32,), "piano": (0, 4), "electric guitar": (26,)},
    ),
    "blues": StyleSpec(
        tempo=(60, 120),
        major_prob=0.8,
        progressions_major=((0, 0, 0, 0, 3, 3, 0, 0, 4, 3, 0, 4),),
        progressions_minor=((0, 0, 0, 0, 3, 3, 0, 0, 5, 4, 0, 4),),
        chord="dominant",
        bars_per_chord=1,
        drums_prob=0.8,
        kits=("standard", "room"),
        drum_patterns=("shuffle",),
        swing=0.33,
        lead=("electric guitar", "piano", "organ", "saxophone", "distorted guitar"),
        chords=("piano", "organ", "electric guitar", "acoustic guitar"),
        pads=("brass", "organ"),
        pad_prob=0.2,
        bass_prob=0.9,
        bass_style=("walking", "root_fifth"),
        comp_style=("block", "jazz_comp"),
        vocals_prob=0.5,
        vocal_kinds={"sung": 0.85, "spoken": 0.15},
        energy={"soft": 0.3, "medium energy": 0.5, "loud": 0.2},
        solo=("acoustic guitar", "piano"),
        solo_prob=0.1,
        reverb_seconds=0.9,
        programs={"bass": (32, 33)},
    ),
    "classical": StyleSpec(
        tempo=(60, 140),
        major_prob=0.6,
        progressions_major=((0, 3, 4, 0), (0, 5, 3, 4), (0, 1, 4, 0)),
        progressions_minor=((0, 3, 4, 0), (0, 5, 1, 4)),
        chord="triad",
        bars_per_chord=1,
        drums_prob=0.0,
        kits=(),
        drum_patterns=(),
        swing=0.0,
        lead=("violin", "flute", "clarinet", "cello", "piano", "harp", "trumpet"),
        chords=("strings", "piano", "harp"),
        pads=("strings", "brass"),
        pad_prob=0.35,
        bass_prob=0.7,
        bass_style=("half",),
        comp_style=("arpeggio", "alberti", "block"),
        vocals_prob=0.25,
        vocal_kinds={"choir": 0.8, "sung": 0.2},
        energy={"soft": 0.45, "medium energy": 0.4, "loud": 0.15},
        solo=("piano", "violin", "cello", "harp", "flute"),
        solo_prob=0.2,
        waltz_prob=0.3,
        reverb_seconds=1.8,
        programs={"bass": (43,)},
    ),
    "ambient": StyleSpec(
        tempo=(50, 85),
        major_prob=0.5,
        progressions_major=((0, 3), (0, 5), (0, 2, 3, 5)),
        progressions_minor=((0, 5), (0, 3), (0, 6, 5, 3)),
        chord="triad",
        bars_per_chord=2,
        drums_prob=0.25,
        kits=("electronic", "standard"),
        drum_patterns=("ambient",),
        swing=0.0,
        lead=("flute", "piano", "harp", "synth lead"),
        chords=("synth pad", "strings", "piano"),
        pads=("synth pad", "strings"),
        pad_prob=0.7,
        bass_prob=0.4,
        bass_style=("whole",),
        comp_style=("sustain", "arpeggio"),
        vocals_prob=0.3,
        vocal_kinds={"choir": 0.7, "sung": 0.3},
        energy={"soft": 0.8, "medium energy": 0.2, "loud": 0.0},
        solo=("piano", "harp", "synth pad"),
        solo_prob=0.15,
        melody_density=(1, 3),
        reverb_seconds=3.0,
        programs={"bass": (38, 39)},
    ),
    "electronic": StyleSpec(
        tempo=(115, 140),
        major_prob=0.4,
        progressions_major=((0, 4, 5, 3), (0, 5, 3, 4)),
        progressions_minor=((0, 5, 6, 4), (0, 5, 2, 6), (0, 3)),
        chord="triad",
        bars_per_chord=1,
        drums_prob=0.95,
        kits=("electronic", "808"),
        drum_patterns=("electronic",),
        swing=0.0,
        lead=("synth lead", "piano"),
        chords=("synth pad", "synth lead", "piano"),
        pads=("synth pad", "strings"),
        pad_prob=0.6,
        bass_prob=0.95,
        bass_style=("offbeat", "eighths"),
        comp_style=("stab", "sustain", "arpeggio"),
        vocals_prob=0.35,
        vocal_kinds={"sung": 0.5, "spoken": 0.2, "choir": 0.3},
        energy={"soft": 0.15, "medium energy": 0.45, "loud": 0.4},
        melody_density=(4, 8),
        reverb_seconds=1.2,
        programs={"bass": (38, 39), "choir": (54,)},
    ),
    "folk": StyleSpec(
        tempo=(70, 130),
        major_prob=0.65,
        progressions_major=((0, 3, 0, 4), (0, 4, 5, 3), (0, 0, 3, 4)),
        progressions_minor=((0, 6, 5, 6), (0, 3, 0, 4)),
        chord="triad",
        bars_per_chord=1,
        drums_prob=0.4,
        kits=("brush", "standard"),
        drum_patterns=("folk",),
        swing=0.0,
        lead=("violin", "flute", "acoustic guitar", "clarinet", "harp"),
        chords=("acoustic guitar", "piano", "harp"),
        pads=("cello", "strings"),
        pad_prob=0.25,
        bass_prob=0.5,
        bass_style=("root_fifth",),
        comp_style=("strum", "arpeggio"),
        vocals_prob=0.5,
        vocal_kinds={"sung": 0.85, "spoken": 0.15},
        energy={"soft": 0.45, "medium energy": 0.45, "loud": 0.1},
        solo=("acoustic guitar",),
        solo_prob=0.15,
        waltz_prob=0.2,
        reverb_seconds=1.0,
        programs={"bass": (32,)},
    ),
    "hip hop": StyleSpec(
        tempo=(75, 100),
        major_prob=0.3,
        progressions_major=((0, 5), (0, 3, 5, 4)),
        progressions_minor=((0, 5), (0, 3, 5, 4), (0, 6)),
        chord="seventh",
        bars_per_chord=1,
        drums_prob=1.0,
        kits=("808", "standard"),
        drum_patterns=("hiphop",),
        swing=0.15,
        lead=("piano", "synth lead", "flute", "saxophone"),
        chords=("piano", "synth pad", "electric guitar"),
        pads=("strings", "synth pad"),
        pad_prob=0.4,
        bass_prob=0.95,
        bass_style=("hiphop",),
        comp_style=("block", "stab"),
        vocals_prob=0.7,
        vocal_kinds={"spoken": 0.85, "sung": 0.15},
        energy={"soft": 0.2, "medium energy": 0.55, "loud": 0.25},
        melody_density=(2, 5),
        reverb_seconds=0.6,
        programs={"bass": (38, 33), "piano": (0, 4)},
    ),
    "metal": StyleSpec(
        tempo=(120, 200),
        major_prob=0.1,
        progressions_major=((0, 6, 3, 0),),
        progressions_minor=((0, 5, 6, 0), (0, 3, 4, 0), (0, 6, 5, 4)),
        chord="power",
        bars_per_chord=1,
        drums_prob=0.95,
        kits=("power", "standard"),
        drum_patterns=("metal",),
        swing=0.0,
        lead=("distorted guitar", "synth lead", "organ"),
        chords=("distorted guitar",),
        pads=("strings", "organ"),
        pad_prob=0.25,
        bass_prob=0.95,
        bass_style=("sixteenths", "eighths"),
        comp_style=("power",),
        vocals_prob=0.4,
        vocal_kinds={"sung": 0.6, "choir": 0.4},
        energy={"soft": 0.0, "medium energy": 0.25, "loud": 0.75},
        melody_density=(4, 8),
        reverb_seconds=0.8,
        programs={"bass": (34,)},
    ),
    "latin": StyleSpec(
        tempo=(90, 130),
        major_prob=0.5,
        progressions_major=((0, 1, 4, 0), (0, 3, 4, 0)),
        progressions_minor=((0, 3, 4, 0), (1, 4, 0, 0)),
        chord="seventh",
        bars_per_chord=1,
        drums_prob=0.85,
        kits=("standard", "room"),
        drum_patterns=("latin",),
        swing=0.0,
        lead=("trumpet", "flute", "piano", "saxophone", "acoustic guitar", "violin"),
        chords=("piano", "acoustic guitar", "brass"),
        pads=("strings", "brass"),
        pad_prob=0.25,
        bass_prob=0.9,
        bass_style=("bossa", "tumbao"),
        comp_style=("montuno", "strum"),
        vocals_prob=0.4,
        vocal_kinds={"sung": 0.85, "spoken": 0.15},
        energy={"soft": 0.25, "medium energy": 0.5, "loud": 0.25},
        solo=("acoustic guitar",),
        solo_prob=0.05,
        melody_density=(4, 7),
        reverb_seconds=1.0,
        programs={"bass": (32, 33), "acoustic guitar": (24,)},
    ),
    "reggae": StyleSpec(
        tempo=(65, 95),
        major_prob=0.6,
        progressions_major=((0, 3), (0, 4, 3, 4), (0, 5, 3, 4)),
        progressions_minor=((0, 3), (0, 6), (0, 5, 6, 0)),
        chord="triad",
        bars_per_chord=1,
        drums_prob=0.9,
        kits=("standard", "room"),
        drum_patterns=("reggae",),
        swing=0.1,
        lead=("organ", "trumpet", "saxophone", "synth lead", "piano"),
        chords=("electric guitar", "organ", "piano"),
        pads=("organ", "brass"),
        pad_prob=0.2,
        bass_prob=1.0,
        bass_style=("reggae",),
        comp_style=("skank",),
        vocals_prob=0.5,
        vocal_kinds={"sung": 0.7, "spoken": 0.3},
        energy={"soft": 0.3, "medium energy": 0.55, "loud": 0.15},
        melody_density=(2, 5),
        reverb_seconds=1.0,
        programs={"bass": (33, 38), "electric guitar": (27, 28)},
    ),
    "funk": StyleSpec(
        tempo=(95, 120),
        major_prob=0.5,
        progressions_major=((0, 3), (0, 0, 3, 3), (0,)),
        progressions_minor=((0, 3), (0,), (0, 0, 6, 6)),
        chord="seventh",
        bars_per_chord=2,
        drums_prob=0.95,
        kits=("standard", "room"),
        drum_patterns=("funk",),
        swing=0.0,
        lead=("saxophone", "trumpet", "synth lead", "brass", "electric guitar"),
        chords=("electric guitar", "piano", "organ", "brass"),
        pads=("brass", "synth pad"),
        pad_prob=0.2,
        bass_prob=1.0,
        bass_style=("funk",),
        comp_style=("stab",),
        vocals_prob=0.4,
        vocal_kinds={"sung": 0.6, "spoken": 0.4},
        energy={"soft": 0.1, "medium energy": 0.5, "loud": 0.4},
        melody_density=(4, 8),
        reverb_seconds=0.7,
        programs={"bass": (36, 33), "piano": (4, 5), "electric guitar": (28, 27)},
    ),
    "country": StyleSpec(
        tempo=(80, 140),
        major_prob=0.85,
        progressions_major=((0, 3, 4, 0), (0, 0, 3, 4), (0, 4, 3, 0)),
        progressions_minor=((0, 3, 4, 0),),
        chord="triad",
        bars_per_chord=1,
        drums_prob=0.7,
        kits=("brush", "standard"),
        drum_patterns=("country",),
        swing=0.0,
        lead=("violin", "acoustic guitar", "electric guitar", "piano"),
        chords=("acoustic guitar", "piano", "electric guitar"),
        pads=("organ", "strings"),
        pad_prob=0.2,
        bass_prob=0.9,
        bass_style=("root_fifth",),
        comp_style=("strum",),
        vocals_prob=0.5,
        vocal_kinds={"sung": 0.9, "spoken": 0.1},
        energy={"soft": 0.3, "medium energy": 0.5, "loud": 0.2},
        solo=("acoustic guitar",),
        solo_prob=0.08,
        waltz_prob=0.2,
        reverb_seconds=0.9,
        programs={"bass": (32, 33), "violin": (40, 110)},
    ),
}

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

KEY_NAMES: tuple[str, ...] = (
    "C",
    "Db",
    "D",
    "Eb",
    "E",
    "F",
    "F#",
    "G",
    "Ab",
    "A",
    "Bb",
    "B",
)
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
