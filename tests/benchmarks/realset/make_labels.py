"""Author labels.json: pick segments, write each clip's recipe, labels, evidence.

Run once by whoever changes the set; build.py and check.py only read its
output. Kept in the repository so that each choice in labels.json can be
traced to a rule here rather than to someone's ears:

- segments of a stem are chosen where it is active all the way through
  (highest 10th-percentile frame level), a choice about *where*, never
  about *what*: labels come from the packages' own documentation and from
  how each clip is assembled (a guitar stem plus a speech prompt has
  exactly a guitar and a voice);
- drum grooves played with real drum-kit one-shots follow the guitar's
  estimated tempo (cosmetic: the label "drums present" does not depend on
  it).

    python tests/benchmarks/realset/make_labels.py [--cache DIR]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build

SR = build.SAMPLE_RATE
CLIP_SECONDS = 15.0

PACKAGES: dict[str, dict[str, str]] = {
    "fretsonfire-songs-muldjord": {
        "version": "2.dfsg-2.1",
        "licence": "CC-BY-SA-3.0",
        "copyright": "usr/share/doc/fretsonfire-songs-muldjord/copyright",
        "about": "Four songs by the Danish metal band Muldjord, as Frets on Fire "
        "multitracks: guitar.ogg (the guitar part) and song.ogg (the rest).",
    },
    "fretsonfire-songs-sectoid": {
        "version": "1.dfsg-3.1",
        "licence": "Expat",
        "copyright": "usr/share/doc/fretsonfire-songs-sectoid/copyright",
        "about": "Four songs 'composed and performed by Sectoid' (Carlos Viola "
        "Iborra), as Frets on Fire multitracks.",
    },
    "asterisk-core-sounds-en-g722": {
        "version": "1.6.1-1",
        "licence": "CC-BY-SA-3.0",
        "copyright": "usr/share/doc/asterisk-core-sounds-en-g722/copyright",
        "about": "Telephone voice prompts recorded by Allison Smith (US English, "
        "female), 16 kHz G.722.",
    },
    "asterisk-core-sounds-fr-g722": {
        "version": "1.6.1-1",
        "licence": "CC-BY-SA-3.0",
        "copyright": "usr/share/doc/asterisk-core-sounds-fr-g722/copyright",
        "about": "Telephone voice prompts recorded by June Wallack (Canadian "
        "French, female), 16 kHz G.722.",
    },
    "asterisk-core-sounds-it-g722": {
        "version": "1.6.1-1",
        "licence": "CC-BY-3.0",
        "copyright": "usr/share/doc/asterisk-core-sounds-it-g722/copyright",
        "about": "Telephone voice prompts recorded by Carlo Flora (Italian, male), "
        "16 kHz G.722.",
    },
    "hydrogen-drumkits": {
        "version": "2017.09.19~dfsg-1",
        "licence": "per kit: GPL-2, GPL-2+ (with composition exception), CC-BY-SA-3.0",
        "copyright": "usr/share/doc/hydrogen-drumkits/copyright",
        "about": "Sampled drum kits for Hydrogen; only the kits documented as "
        "recordings of acoustic drum sets are used.",
    },
    "sonic-pi-samples": {
        "version": "3.2.2~repack-8",
        "licence": "CC0-1.0",
        "copyright": "usr/share/doc/sonic-pi-samples/copyright",
        "about": "Freesound samples shipped with Sonic Pi (drum one-shots, loops, "
        "guitar and piano samples), each with its Freesound source.",
    },
}

PACKAGES.update(
    {
        "asterisk-core-sounds-es-g722": {
            "version": "1.6.1-1",
            "licence": "CC-BY-SA-3.0",
            "copyright": "usr/share/doc/asterisk-core-sounds-es-g722/copyright",
            "about": "Telephone voice prompts in Mexican Spanish recorded by Allison "
            "Smith (folder es_MX_f_Allison: female), 16 kHz G.722.",
        },
        "asterisk-core-sounds-ru-g722": {
            "version": "1.6.1-1",
            "licence": "CC-BY-3.0",
            "copyright": "usr/share/doc/asterisk-core-sounds-ru-g722/copyright",
            "about": "Telephone voice prompts in Russian ('Provided by: Maxim Topal', "
            "ivrvoice.ru; folder ru_RU_f_IvrvoiceRU: female), 16 kHz G.722.",
        },
        "asterisk-prompt-fr-armelle": {
            "version": "20070613-2.2",
            "licence": "BSD-style (see copyright)",
            "copyright": "usr/share/doc/asterisk-prompt-fr-armelle/copyright",
            "about": "French voice prompts for Asterisk by Armelle Desjardins ('Voice "
            "actor: Armelle Desjardins'), 8 kHz GSM.",
        },
        "asterisk-prompt-es-co": {
            "version": "0.20070403-2.1",
            "licence": "GPL-2",
            "copyright": "usr/share/doc/asterisk-prompt-es-co/copyright",
            "about": "Colombian Spanish voice prompts ('grabadas con el acento neutral "
            "de Colombia ... con la voz de July E. Jiménez'), 8 kHz GSM.",
        },
        "gcompris-qt-data": {
            "version": "3.1-2",
            "licence": "GPL-3.0+ (drum_kit.ogg: CC Sampling Plus 1.0)",
            "copyright": "usr/share/doc/gcompris-qt-data/copyright",
            "about": "GCompris's 'Music instruments' activity ('Learn to recognize "
            "musical instruments'): one sound per instrument, named after it, inside "
            "rcc/instruments.rcc.",
        },
        "warzone2100-music": {
            "version": "4.3.3-3",
            "licence": "GPL-2+ / CC-BY-SA-3.0 (per album license.txt)",
            "copyright": "usr/share/doc/warzone2100-music/copyright",
            "about": "Warzone 2100's soundtracks (1999 original by Martin Severn; "
            "Legacy and Aftermath by LupusMechanicus); the package description calls "
            "it 'abstract, atmospheric and post-apocalyptic beats'.",
        },
        "wesnoth-1.16-music": {
            "version": "1:1.16.9-1",
            "licence": "GPL-2+",
            "copyright": "usr/share/doc/wesnoth-1.16-music/copyright",
            "about": "The Battle for Wesnoth soundtrack (the files of the "
            "wesnoth-music metapackage); each Ogg file's genre tag says 'Romantic "
            "Classical' (a few say nothing, one says 'Game').",
        },
        "lmms-common": {
            "version": "1.2.2+dfsg1-6",
            "licence": "GPL-2+",
            "copyright": "usr/share/doc/lmms-common/copyright",
            "about": "LMMS's sample library: one-shot and looped samples filed by "
            "kind (instruments/, beats/, bassloops/) and named after what they "
            "are (cello01, piano02, techno_synth01, house_loop01).",
        },
        "warmux-data": {
            "version": "1:11.04.1+repack2-4",
            "licence": "GPL-2+",
            "copyright": "usr/share/doc/warmux-data/copyright",
            "about": "WarMUX's data; its menu music 'Divertissement pour flute' by "
            "Lawrence Azzoug carries the Vorbis comment genre=Classique.",
        },
    }
)

# The split, by package: thresholds and weights are chosen on `choose`, figures
# are reported on `report`; a clip mixes packages of one part only, so no
# recording, speaker or kit is on both sides.
SPLIT: dict[str, list[str]] = {
    "choose": [
        "fretsonfire-songs-muldjord",
        "asterisk-core-sounds-en-g722",
        "asterisk-core-sounds-es-g722",
        "asterisk-core-sounds-ru-g722",
        "sonic-pi-samples",
        "lmms-common",
        "warmux-data",
    ],
    "report": [
        "fretsonfire-songs-sectoid",
        "asterisk-core-sounds-fr-g722",
        "asterisk-core-sounds-it-g722",
        "asterisk-prompt-fr-armelle",
        "asterisk-prompt-es-co",
        "hydrogen-drumkits",
        "gcompris-qt-data",
        "warzone2100-music",
        "wesnoth-1.16-music",
    ],
}
PART_OF = {pkg: part for part, pkgs in SPLIT.items() for pkg in pkgs}

FOF = "usr/share/games/fretsonfire/data/songs"
SONGS = [  # (package, folder, title)
    ("fretsonfire-songs-muldjord", "muldjord/armygeddon", "Armygeddon"),
    ("fretsonfire-songs-muldjord", "muldjord/chaos_god", "Chaos God"),
    (
        "fretsonfire-songs-muldjord",
        "muldjord/internal_degeneration",
        "Internal Degeneration",
    ),
    ("fretsonfire-songs-muldjord", "muldjord/mutilated_mime", "Mutilated Mime"),
    (
        "fretsonfire-songs-sectoid",
        "sectoid/Escape from chaosland",
        "Escape from chaosland",
    ),
    ("fretsonfire-songs-sectoid", "sectoid/Feelings", "Feelings"),
    ("fretsonfire-songs-sectoid", "sectoid/Metal madness", "Metal madness"),
    ("fretsonfire-songs-sectoid", "sectoid/War of freedom", "War of freedom"),
]
FOF_EVIDENCE = {
    "fretsonfire-songs-muldjord": (
        "copyright: 'The songs, performances and fret files are all Copyright (c) 2009 "
        "El Senator'; readme.txt: 'This song was composed by El Senator of the danish "
        "metal band Muldjord'."
    ),
    "fretsonfire-songs-sectoid": (
        "copyright: 'The songs, performances and fret files are all Copyright (c) "
        "2006/2007 Carlos Viola Iborra'; song.ini: 'artist = Composed and performed by "
        "Sectoid'."
    ),
}
STEM_EVIDENCE = (
    "guitar.ogg is the Frets on Fire guitar track (the part the player performs and "
    "the game mutes on a missed note); the rest of the band is in song.ogg, so the "
    "guitar stem alone has no drums and no vocals."
)

SPEAKERS: list[dict[str, str]] = [
    # Gender is what the speaker's folder name says (Asterisk's
    # <lang>_<COUNTRY>_<f|m>_<Voice> convention) or the credits' own words.
    {
        "package": "asterisk-core-sounds-en-g722",
        "folder": "usr/share/asterisk/sounds/en_US_f_Allison",
        "speaker": "Allison Smith",
        "gender": "female",
        "language": "english",
        "credit": "copyright CREDITS: 'Recorded by: Allison Smith'; folder "
        "en_US_f_Allison",
    },
    {
        "package": "asterisk-core-sounds-es-g722",
        "folder": "usr/share/asterisk/sounds/es_MX_f_Allison",
        "speaker": "Allison Smith",
        "gender": "female",
        "language": "spanish",
        "credit": "copyright CREDITS: 'Recorded by: Allison Smith'; folder "
        "es_MX_f_Allison",
    },
    {
        "package": "asterisk-core-sounds-ru-g722",
        "folder": "usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU",
        "speaker": "IvrvoiceRU",
        "gender": "female",
        "language": "russian",
        "credit": "copyright 'Files: ru-*' CREDITS: 'Provided by: Maxim Topal' "
        "(ivrvoice.ru); folder ru_RU_f_IvrvoiceRU",
    },
    {
        "package": "asterisk-core-sounds-fr-g722",
        "folder": "usr/share/asterisk/sounds/fr_CA_f_June",
        "speaker": "June Wallack",
        "gender": "female",
        "language": "french",
        "credit": "copyright CREDITS: 'Recorded by: June Wallack'; folder fr_CA_f_June",
    },
    {
        "package": "asterisk-core-sounds-it-g722",
        "folder": "usr/share/asterisk/sounds/it_IT_m_Carlo",
        "speaker": "Carlo Flora",
        "gender": "male",
        "language": "italian",
        "credit": "copyright CREDITS: 'Recorded by: Carlo Flora'; folder it_IT_m_Carlo",
    },
]
# 8 kHz GSM prompt packs: several short prompts are joined into one clip.
PROMPT_PACKS: list[dict[str, Any]] = [
    {
        "package": "asterisk-prompt-fr-armelle",
        "folder": "usr/share/asterisk/sounds/fr",
        "speaker": "Armelle Desjardins",
        "gender": "female",
        "language": "french",
        "credit": "package description: 'French voice prompts for Asterisk by Armelle "
        "Desjardins'; copyright: 'Voice actor: Armelle Desjardins'",
    },
    {
        "package": "asterisk-prompt-es-co",
        "folder": "usr/share/asterisk/sounds/es",
        "speaker": "July E. Jiménez",
        "gender": None,
        "language": "spanish",
        "credit": "LEEME: 'Sonidos grabados por Avatar Ltda. con la voz de July E. "
        "Jiménez' (gender not stated)",
    },
]

HYDROGEN = "usr/share/hydrogen/data/drumkits"
# Kit -> role -> instrument name in drumkit.xml. Only kits whose own
# documentation says they are recordings of acoustic kits.
KITS: dict[str, dict[str, str]] = {
    "ForzeeStereo": {
        "kick": 'Kick (Tama Superstar 22")',
        "snare": "Snare (Pearl Free Floating Maple 14x3.5)",
        "hat": 'Hi-Hat Closed (Paiste Alpha Metal edge 14")',
        "ride": 'Ride (Custom, Zagrebin 22")',
        "crash": 'Crash/Ride (Paiste Rude Crash/Ride 18")',
    },
    "ColomboAcousticDrumkit": {
        "kick": "BassDrum",
        "snare": "Snare Rock",
        "hat": "Closed HH",
        "ride": "ride-crash20inch",
        "crash": "crash16inch",
    },
    "Millo_MultiLayered2": {
        "kick": "Kick",
        "snare": "Snare Rock",
        "hat": "Closed HH",
        "ride": "Ride Rock",
        "crash": "Crash",
    },
    "Millo_MultiLayered3": {
        "kick": "Kick",
        "snare": "Snare Rock",
        "hat": "Closed HH",
        "ride": "Ride Jazz",
        "crash": "Crash",
    },
    "BJA_Pacific": {
        "kick": "BassDrum",
        "snare": "Snare",
        "hat": "Hi Hat Closed",
        "ride": "Ride",
        "crash": "Crash Left",
    },
    "The Black Pearl 1.0": {
        "kick": "Pearl Kick",
        "snare": "Pearl Snare",
        "hat": "Sabian Hat Closed",
        "ride": "Paiste Ride",
        "crash": "Sabian Crash",
    },
}
KIT_EVIDENCE = {
    "ForzeeStereo": "drumkit.xml info: 'TAMA Superstar Drum set ... Pearl Snare ... "
    "Paiste Cymbals ... All drums were recorded with 4 microphones'",
    "ColomboAcousticDrumkit": "drumkit.xml info: 'Wooden toms, snare and bassdrum; "
    "Toms: 12X8 13X9 16X16 ... Bassdrum: 21X14'; sample names "
    "'bassdrum-4mics-...', 'snare-opaque-normal-mic-...'",
    "Millo_MultiLayered2": "drumkit.xml info: 'Second, multilayered version of a "
    "ludwig set' (v1 info: 'created recording my ludwig set')",
    "Millo_MultiLayered3": "drumkit.xml info: 'This is the third version of a ludwig "
    "drumkit. Recorded at cricketstudios.it'",
    "BJA_Pacific": "drumkit.xml info: 'Pacific set sampled by Bransin James Anderson. "
    "Sample files are 44.1K, 16 Bit .AIFF'",
    "The Black Pearl 1.0": "drumkit.xml info: 'A Sampled 5pc Pearl DX Series Drumkit.'",
}
KIT_LICENCE = {
    "ForzeeStereo": "GPL-2",
    "ColomboAcousticDrumkit": "GPL-2+ with composition exception",
    "Millo_MultiLayered2": "GPL-2",
    "Millo_MultiLayered3": "GPL-2",
    "BJA_Pacific": "CC-BY-SA-3.0-us",
    "The Black Pearl 1.0": "GPL-2",
}
SONIC = "usr/share/sonic-pi/samples"
MENEGASS = {  # Sonic Pi's acoustic kit one-shots, all by menegass on Freesound
    "kick": "drum_bass_hard.flac",
    "snare": "drum_snare_hard.flac",
    "hat": "drum_cymbal_closed.flac",
}
MENEGASS_EVIDENCE = (
    "sonic-pi-samples README.md lists drum_bass_hard, drum_snare_hard, "
    "drum_cymbal_closed under '## Drums' (freesound.org/people/menegass/sounds/"
    "100051, 100058, 100053), copyright: 'License: CC0'"
)
PATTERN_CYCLE = ["rock", "halftime", "funk", "ride"]


class Authoring:
    def __init__(self, cache: Path) -> None:
        self.recipe: dict[str, Any] = {"packages": PACKAGES}
        self.sources = build.Sources(self.recipe, cache)
        self._sha: dict[tuple[str, str], str] = {}

    def ref(self, package: str, path: str) -> dict[str, str]:
        key = (package, path)
        if key not in self._sha:
            self._sha[key] = build.sha256_file(self.sources.file(package, path, None))
        return {
            "package": package,
            "version": PACKAGES[package]["version"],
            "path": path,
            "sha256": self._sha[key],
        }

    def audio(self, package: str, path: str) -> np.ndarray:
        return self.sources.audio(package, path, None)

    def loop_layer(
        self, package: str, path: str, role: str, **extra: Any
    ) -> dict[str, Any]:
        """A whole sample file as a layer, looped to the clip's length."""
        x = self.audio(package, path)
        return {
            "type": "segment",
            **self.ref(package, path),
            "start": 0.0,
            "end": round(len(x) / SR, 4),
            "loop": True,
            "licence": PACKAGES[package]["licence"],
            "role": role,
            **extra,
        }


def frame_db(x: np.ndarray, hop: float = 0.5) -> np.ndarray:
    n = int(hop * SR)
    frames = x[: len(x) // n * n].reshape(-1, n).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def best_window(
    x: np.ndarray, avoid: float | list[float] | None = None, margin: float = 8.0
) -> float:
    """Start (s) of the CLIP_SECONDS window whose quietest parts are loudest."""
    db = frame_db(x)
    per = int(CLIP_SECONDS / 0.5)
    best, best_start = -1e9, None
    for i in range(int(margin / 0.5), len(db) - per - int(margin / 0.5)):
        start = i * 0.5
        avoided = [] if avoid is None else avoid if isinstance(avoid, list) else [avoid]
        if any(abs(start - other) < CLIP_SECONDS for other in avoided):
            continue
        score = float(np.percentile(db[i : i + per], 10))
        if score > best:
            best, best_start = score, start
    if best_start is None:
        raise build.BuildError("no window fits")
    return best_start


def tempo(x: np.ndarray) -> tuple[float, float]:
    """(bpm folded into 80-170, first beat time) of a segment: only to align drums."""
    import librosa

    bpm, beats = librosa.beat.beat_track(y=x, sr=SR, units="time")
    bpm = float(np.atleast_1d(bpm)[0]) or 120.0
    while bpm < 80:
        bpm *= 2
    while bpm > 170:
        bpm /= 2
    first = float(beats[0]) if len(beats) else 0.0
    return round(bpm, 2), round(first, 3)


def kit_hits(a: Authoring, kit: str) -> dict[str, dict[str, str]]:
    """Role -> sample (the layer a velocity-0.7 hit plays) from drumkit.xml."""
    xml_path = f"{HYDROGEN}/{kit}/drumkit.xml"
    text = a.sources.file("hydrogen-drumkits", xml_path, None).read_text(
        errors="replace"
    )
    instruments = re.findall(r"<instrument>(.*?)</instrument>", text, re.S)
    hits: dict[str, dict[str, str]] = {}
    for role, name in KITS[kit].items():
        for inst in instruments:
            m = re.search(r"<name>(.*?)</name>", inst, re.S)
            if m is None or html.unescape(m.group(1)).strip() != name:
                continue
            if "<filename>" not in inst:  # an empty slot of the 32-pad layout
                continue
            layers = re.findall(
                r"<layer>.*?<filename>(.*?)</filename>.*?<min>(.*?)</min>.*?<max>(.*?)</max>",
                inst,
                re.S,
            )
            if layers:  # a firm (0.7) hit: loud, but not the rimshot top layers
                pick = next(
                    (f for f, lo, hi in layers if float(lo) <= 0.7 <= float(hi)),
                    layers[-1][0],
                )
            else:
                pick = re.search(r"<filename>(.*?)</filename>", inst, re.S).group(1)
            hits[role] = a.ref(
                "hydrogen-drumkits", f"{HYDROGEN}/{kit}/{html.unescape(pick)}"
            )
            break
        else:
            raise build.BuildError(f"{kit}: no instrument named {name!r}")
    return hits


@dataclass
class Mixing:
    """main()'s clip recorder, the layers it mixes in (a groove on a kit, a
    speech segment and its labels) and the with/without pairs it collects."""

    clip: Callable[..., str]
    drums: Callable[..., dict[str, Any]]
    voice: Callable[..., dict[str, Any]]
    voice_labels: Callable[[dict[str, Any]], dict[str, Any]]
    pairs: list[dict[str, Any]]


def instrument_labels(lab: dict[str, Any]) -> dict[str, Any]:
    """Labels of a sample named after its instrument, heard alone: the name
    says the instrument; nothing sings or speaks."""
    return {
        "vocals": False,
        "speech": False,
        "music": True,
        "guitar": lab.get("guitar", False),
        "piano": lab.get("piano", False),
        "drums": lab.get("drums", False),
        "instruments": lab["instruments"],
        "instruments_complete": True,
    }


def looped_clips(
    m: Mixing,
    cid: str,
    families: tuple[str, str, str],
    layer: dict[str, Any],
    labels: dict[str, Any],
    ev: str,
    alone: str,
    mixed: str,
    mix: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None,
) -> None:
    """A looped sample as a 12 s clip alone and, given `mix` (a kit, its
    groove, a speech segment), over the groove and under the voice, the
    other part 3 dB under; the two mixes pair with the clip alone.

    `alone` is the construction of the clip alone; `mixed` names the loop at
    the head of a mix's construction. `families` are the three clips'."""
    without = m.clip(
        cid,
        families[0],
        [dict(layer)],
        labels,
        [ev],
        alone,
        duration=12.0,
        base_piece=cid,
    )
    if mix is None:
        return
    kit, d, s = mix
    with_drums = m.clip(
        f"{cid}+drums",
        families[1],
        [dict(layer), d],
        dict(labels, drums=True, bpm=d["bpm"]),
        [ev, kit["evidence"]],
        f"{mixed} with a 16-step groove ({d['pattern']}, {d['bpm']} bpm) on "
        f"real one-shots of {kit['name']}, 3 dB under the instrument",
        duration=12.0,
        base_piece=cid,
    )
    with_voice = m.clip(
        f"{cid}+voice",
        families[2],
        [dict(layer, gain_db=-3.0), m.voice(s)],
        {**labels, "speech": True, **m.voice_labels(s)},
        [ev, s["evidence"]],
        f"{mixed} 3 dB under {s['speaker']}'s prompt '{s['prompt']}'",
        duration=12.0,
        base_piece=cid,
    )
    for with_id, attribute in ((with_drums, "drums"), (with_voice, "vocals")):
        m.pairs.append(
            {
                "with": with_id,
                "without": without,
                "attribute": attribute,
                "column": False,
            }
        )


def track_clips(
    a: Authoring,
    clip: Any,
    package: str,
    path: str,
    seconds: float,
    at: tuple[float, ...],
    cid: str,
    labels: dict[str, Any],
    evidence: str,
    title: str,
    artist: str,
    base_piece: str,
) -> None:
    """15 s clips of one recording of `seconds`, starting at the shares `at`
    of its length (on half seconds), labelled as its source states."""
    for n, share in enumerate(at):
        start = round(seconds * share * 2) / 2
        clip(
            f"{cid}-{n + 1}",
            "soundtrack",
            [
                {
                    "type": "segment",
                    **a.ref(package, path),
                    "start": start,
                    "end": start + CLIP_SECONDS,
                    "licence": PACKAGES[package]["licence"],
                    "role": "music",
                }
            ],
            labels,
            [evidence],
            f"'{title}' ({artist}), {start}-{start + CLIP_SECONDS} s of "
            f"{seconds:.0f} s",
            title=title,
            artist=artist,
            base_piece=base_piece,
        )


GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc/instruments.rcc"
GCOMPRIS_RES = "gcompris/src/activities/instruments/resource"
# Demo sound name -> what it names (instruments list, guitar, piano, drums).
# The percussion demos other than the kit and the snare are left "drums
# unknown": a bongo or a timpano is a drum, but not the drum kit that the
# taggers' "drums" means.
DEMOS: dict[str, dict[str, Any]] = {
    "accordion": {"instruments": ["accordion"]},
    "banjo": {"instruments": ["banjo"]},
    "cello": {"instruments": ["cello"]},
    "clarinet": {"instruments": ["clarinet"]},
    "electric_guitar": {"instruments": ["electric guitar"], "guitar": True},
    "flute_traversiere": {"instruments": ["flute"]},
    "guitar": {"instruments": [], "guitar": True},
    "harmonica": {"instruments": ["harmonica"]},
    "harp": {"instruments": ["harp"]},
    "horn": {"instruments": ["horn"]},
    "organ": {"instruments": ["organ"]},
    "piano": {"instruments": ["piano"], "piano": True},
    "saxophone": {"instruments": ["saxophone"]},
    "trombone": {"instruments": ["trombone"]},
    "trumpet": {"instruments": ["trumpet"]},
    "tuba": {"instruments": ["tuba"]},
    "violin": {"instruments": ["violin"]},
    "bongo": {"instruments": ["bongo"], "drums": None, "percussion": True},
    "castanets": {"instruments": ["castanets"], "drums": None, "percussion": True},
    "cymbal": {"instruments": ["cymbal"], "drums": None, "percussion": True},
    "maracas": {"instruments": ["maracas"], "drums": None, "percussion": True},
    "tambourine": {"instruments": ["tambourine"], "drums": None, "percussion": True},
    "timpani": {"instruments": ["timpani"], "drums": None, "percussion": True},
    "triangle": {"instruments": ["triangle"], "drums": None, "percussion": True},
    "drum_kit": {"instruments": [], "drums": True, "percussion": True},
    "snare_drum": {"instruments": ["snare drum"], "drums": True, "percussion": True},
}
DEMO_EVIDENCE = (
    "gcompris-qt-data rcc/instruments.rcc: the 'Music instruments' activity "
    "('Learn to recognize musical instruments'; instruments.js pairs {name}.ogg "
    "with 'Find the {word}'); resource/README: {credit}"
)
DEMO_CREDIT = {
    "drum_kit": "'drum_kit.ogg: http://www.freesound.org/samplesViewSingle.php"
    "?id=29534 Creative Commons Sampling Plus 1.0'",
}
DEMO_CREDIT_OTHER = (
    "'all other ogg files are released under the GPL and were created by: "
    "Sylvain Dechy, Jérome blanchard, julie jules, chloé tuvuku'"
)


def instrument_clips(
    a: Authoring,
    m: Mixing,
    kits: list[dict[str, Any]],
    speech: list[dict[str, Any]],
) -> None:
    """GCompris's instrument demos alone (12 s, looped), and each melodic one
    over a groove and under a speaking voice: the instrument is named by the
    demo, the rest by how the clip is built."""
    rcc = a.sources.file("gcompris-qt-data", GCOMPRIS_RCC, None)
    members = build.rcc_members(rcc.read_bytes())
    rcc_ref = a.ref("gcompris-qt-data", GCOMPRIS_RCC)
    licence = PACKAGES["gcompris-qt-data"]["licence"]
    bpms = [88.0, 96.0, 104.0, 112.0, 120.0, 128.0]
    k = 0
    for name, lab in DEMOS.items():
        member = f"{GCOMPRIS_RES}/{name}.ogg"
        x = a.sources.audio("gcompris-qt-data", GCOMPRIS_RCC, None, member)
        layer = {
            "type": "segment",
            **rcc_ref,
            "member": member,
            "member_sha256": build.hashlib.sha256(members[member]).hexdigest(),
            "start": 0.0,
            "end": round(len(x) / SR, 4),
            "loop": True,
            "licence": "CC-Sampling-Plus-1.0" if name == "drum_kit" else "GPL-3.0+",
            "role": name,
        }
        word = name.replace("_traversiere", "").replace("_", " ")
        ev = DEMO_EVIDENCE.format(
            name=name, word=word, credit=DEMO_CREDIT.get(name, DEMO_CREDIT_OTHER)
        )
        mix = None
        if not lab.get("percussion", False):
            kit = kits[k % len(kits)]
            d = m.drums(kit, k, bpms[k % len(bpms)], 0.0, gain_db=-3.0)
            mix = (kit, d, speech[k % len(speech)])
            k += 1
        looped_clips(
            m,
            f"demo-{name}",
            ("instrument_demo", "instrument_drums", "instrument_voice"),
            layer,
            instrument_labels(lab),
            ev,
            f"GCompris's {name}.ogg ({len(x) / SR:.1f} s) looped to 12 s",
            "the looped demo",
            mix,
        )
    del licence


WESNOTH = "usr/share/games/wesnoth/1.16/data/core/music"
WARZONE = "usr/share/games/warzone2100/music"
WARZONE_DESCRIPTION = (
    "warzone2100-music package description: 'It contains the background music for "
    "the menu and during the game, which varies between abstract, atmospheric and "
    "post-apocalyptic beats'"
)
SOUNDTRACK_MIN_SECONDS = 40.0
SOUNDTRACK_AT = (0.3, 0.65)  # where the two 15 s clips of a track start


def soundtrack_clips(a: Authoring, clip: Any) -> None:
    """Two 15 s clips (at 30 % and 65 % of the track) of every soundtrack piece
    of 40 s or more, labelled with the genre its source states and nothing else."""
    import mutagen

    root = a.sources.root("wesnoth-1.16-music") / WESNOTH
    for f in sorted(root.glob("*.ogg")):
        tags = mutagen.File(f).tags or {}
        genre = (tags.get("genre") or [None])[0]
        title = (tags.get("title") or [f.stem])[0]
        artist = (tags.get("artist") or ["Wesnoth Project"])[0]
        genres = ["classical"] if genre and "classical" in genre.lower() else None
        ev = (
            f"wesnoth-1.16-music {f.name}: Vorbis comment genre="
            f"{genre!r}, artist={artist!r}, title={title!r}"
            + ("" if genres else " (no classical genre stated: genre left unknown)")
        )
        soundtrack_track(
            a, clip, "wesnoth-1.16-music", f"{WESNOTH}/{f.name}", f.stem, title,
            artist, genres, ev, "wesnoth",
        )  # fmt: skip
    wz = a.sources.root("warzone2100-music") / WARZONE
    for album in sorted((wz / "albums").iterdir()):
        meta = json.loads((album / "album.json").read_text())
        for track in meta["tracks"]:
            path = f"{WARZONE}/albums/{album.name}/{track['filename']}"
            ev = (
                f"{WARZONE_DESCRIPTION}; albums/{album.name}/album.json: "
                f"'{meta['title']}', track '{track['title']}' by {track['author']}"
            )
            soundtrack_track(
                a, clip, "warzone2100-music", path,
                f"{album.name.split('_')[0]}-{Path(track['filename']).stem}",
                track["title"], track["author"], ["electronic"], ev, "warzone",
            )  # fmt: skip


def soundtrack_track(
    a: Authoring,
    clip: Any,
    package: str,
    path: str,
    stem: str,
    title: str,
    artist: str,
    genres: list[str] | None,
    evidence: str,
    prefix: str,
) -> None:
    import soundfile as sf

    seconds = sf.info(str(a.sources.file(package, path, None))).duration
    if seconds < SOUNDTRACK_MIN_SECONDS:
        return
    track_clips(
        a,
        clip,
        package,
        path,
        seconds,
        SOUNDTRACK_AT,
        f"{prefix}-{stem.lower().replace('_', '-')}",
        {"music": True, "genres": genres, "style": (genres or [None])[0]},
        evidence,
        title,
        artist,
        f"{prefix}-{stem}",
    )


LMMS = "usr/share/lmms/samples"
# LMMS sample -> what its name says. The instrument names come from the file
# names alone; a guitar sample of unstated kind (steel or nylon strings,
# electric or not) is "guitar" with no kind, as for Sonic Pi's guitars.
LMMS_INSTRUMENTS: dict[str, dict[str, Any]] = {
    "instruments/piano01.ogg": {"instruments": ["piano"], "piano": True},
    "instruments/piano02.ogg": {"instruments": ["piano"], "piano": True},
    "instruments/violin_double_stop01.ogg": {"instruments": ["violin"]},
    "instruments/violin_fingered01.ogg": {"instruments": ["violin"]},
    "instruments/violin_pizzicato01.ogg": {"instruments": ["violin"]},
    "instruments/cello01.ogg": {"instruments": ["cello"]},
    "instruments/flute01.ogg": {"instruments": ["flute"]},
    "instruments/trumpet01.ogg": {"instruments": ["trumpet"]},
    "instruments/church_organ01.ogg": {"instruments": ["organ"]},
    "instruments/church_organ02.ogg": {"instruments": ["organ"]},
    "instruments/e_organ01.ogg": {"instruments": ["organ"]},
    "instruments/steel_guitar01.ogg": {"instruments": [], "guitar": True},
    "instruments/steel_guitar_slight_distorted01.ogg": {
        "instruments": [],
        "guitar": True,
    },
    "instruments/steel_guitar_heavy_distorted01.ogg": {
        "instruments": [],
        "guitar": True,
    },
    "latin/latin_guitar01.ogg": {"instruments": [], "guitar": True},
    "latin/latin_guitar03.ogg": {"instruments": [], "guitar": True},
}
LMMS_EVIDENCE = (
    "lmms-common {path}: LMMS's sample library files it under {folder}/ and "
    "names it '{stem}'; copyright 'Files: *' GPL-2+"
)
# Loops whose file names name an electronic dance genre (electro, house,
# jungle, techno, rave): labelled **electronic**, the one mapping of a name
# onto a genre family here. beats/ holds drum loops.
LMMS_ELECTRONIC_BEATS = (
    "beats/electro_beat01.ogg",
    "beats/electro_beat02.ogg",
    "beats/house_loop01.ogg",
    "beats/jungle01.ogg",
)
LMMS_ELECTRONIC_SYNTHS = (
    "bassloops/techno_bass01.ogg",
    "bassloops/techno_bass02.ogg",
    "bassloops/techno_synth01.ogg",
    "bassloops/techno_synth02.ogg",
    "bassloops/techno_synth03.ogg",
    "bassloops/techno_synth04.ogg",
    "bassloops/rave_bass01.ogg",
    "bassloops/rave_bass02.ogg",
)
CHOIR = "ambi_choir.flac"
CHOIR_EVIDENCE = (
    "sonic-pi-samples README.md lists :ambi_choir under '## Ambient' "
    "(freesound.org/people/Exsomniel/sounds/207809); the sample is named a "
    "choir, and a choir sings; copyright: 'License: CC0'"
)
WARMUX_FLUTE = "usr/share/games/warmux/music/menu/Divertissement_pour_flute.ogg"
WARMUX_AT = (0.1, 0.4, 0.7)  # where the three 15 s clips of the piece start


def sample_pack_clips(
    a: Authoring,
    m: Mixing,
    kit: dict[str, Any],
    speech: list[dict[str, Any]],
) -> None:
    """Choose-part clips from sample packs and one stated-genre piece.

    LMMS's named instrument samples alone (looped to 12 s), over a groove and
    under a speaking voice; LMMS's genre-named electronic loops alone and
    layered; Sonic Pi's choir sample (the one sung voice with a stated
    source) alone and with drums, piano or guitar; WarMUX's flute piece,
    whose file says genre=Classique.
    """

    clip, drums = m.clip, m.drums

    def lmms_ev(path: str) -> str:
        folder, name = path.split("/")
        return LMMS_EVIDENCE.format(
            path=f"{LMMS}/{path}", folder=folder, stem=name.split(".")[0]
        )

    bpms = [90.0, 98.0, 106.0, 114.0, 122.0, 130.0]
    for k, (path, lab) in enumerate(LMMS_INSTRUMENTS.items()):
        layer = a.loop_layer(
            "lmms-common",
            f"{LMMS}/{path}",
            lab["instruments"][0] if lab["instruments"] else "guitar",
        )
        stem = path.split("/")[1].split(".")[0].replace("_", "-")
        built = f"LMMS's {path} ({layer['end']:.2f} s) looped to 12 s"
        d = drums(kit, k, bpms[k % len(bpms)], 0.0, gain_db=-3.0)
        looped_clips(
            m,
            f"lmms-{stem}",
            ("sample_loop", "sample_drums", "sample_voice"),
            layer,
            instrument_labels(lab),
            lmms_ev(path),
            built,
            f"{built},",
            (kit, d, speech[k % len(speech)]),
        )

    # ---- electronic loops: each alone, and each synth loop over a beat
    electronic = {"music": True, "genres": ["electronic"], "style": "electronic"}
    for path in LMMS_ELECTRONIC_BEATS + LMMS_ELECTRONIC_SYNTHS:
        beat = path.startswith("beats/")
        stem = path.split("/")[1].split(".")[0].replace("_", "-")
        clip(
            f"lmms-{stem}",
            "electronic_loop",
            [
                a.loop_layer(
                    "lmms-common", f"{LMMS}/{path}", "drums" if beat else "synth"
                )
            ],
            dict(electronic, drums=True) if beat else dict(electronic),
            [lmms_ev(path)],
            f"LMMS's {path} looped to 12 s",
            duration=12.0,
            base_piece=f"lmms-{stem}",
        )
    for k, path in enumerate(LMMS_ELECTRONIC_SYNTHS):
        beat = LMMS_ELECTRONIC_BEATS[k % len(LMMS_ELECTRONIC_BEATS)]
        stem = path.split("/")[1].split(".")[0].replace("_", "-")
        bstem = beat.split("/")[1].split(".")[0].replace("_", "-")
        clip(
            f"lmms-{stem}+{bstem}",
            "electronic_loop",
            [
                a.loop_layer("lmms-common", f"{LMMS}/{path}", "synth"),
                a.loop_layer("lmms-common", f"{LMMS}/{beat}", "drums", gain_db=-2.0),
            ],
            dict(electronic, drums=True),
            [lmms_ev(path), lmms_ev(beat)],
            f"LMMS's {path} and {beat}, each looped to 12 s, the beat 2 dB under",
            duration=12.0,
            base_piece=f"lmms-{stem}",
        )

    # ---- the choir sample: sung voices, alone and with one instrument or drums
    choir = a.loop_layer("sonic-pi-samples", f"{SONIC}/{CHOIR}", "choir")
    sung = {
        "vocals": True,
        "vocal_kind": "sung",
        "speech": False,
        "music": True,
        "instruments": ["choir"],
    }
    clip(
        "choir",
        "choir",
        [dict(choir)],
        dict(sung, instruments_complete=False),
        [CHOIR_EVIDENCE],
        f"Sonic Pi's {CHOIR} ({choir['end']:.2f} s) looped to 12 s",
        duration=12.0,
        base_piece="choir",
    )
    d = drums(kit, 1, 100.0, 0.0, gain_db=-3.0)
    clip(
        "choir+drums",
        "choir",
        [dict(choir), d],
        dict(sung, drums=True, bpm=100.0),
        [CHOIR_EVIDENCE, kit["evidence"]],
        f"the looped choir with a 16-step groove ({d['pattern']}, 100.0 bpm) on "
        f"real one-shots of {kit['name']}, 3 dB under",
        duration=12.0,
        base_piece="choir",
    )
    for path in ("instruments/piano02.ogg", "instruments/steel_guitar01.ogg"):
        lab = LMMS_INSTRUMENTS[path]
        stem = path.split("/")[1].split(".")[0].replace("_", "-")
        clip(
            f"choir+lmms-{stem}",
            "choir",
            [
                dict(choir),
                a.loop_layer("lmms-common", f"{LMMS}/{path}", stem, gain_db=-3.0),
            ],
            dict(
                sung,
                instruments=["choir", *lab["instruments"]],
                guitar=lab.get("guitar", False),
                piano=lab.get("piano", False),
            ),
            [CHOIR_EVIDENCE, lmms_ev(path)],
            f"the looped choir with LMMS's {path} looped, 3 dB under",
            duration=12.0,
            base_piece="choir",
        )

    # ---- WarMUX's flute piece: genre=Classique in its own file
    import mutagen

    tags = mutagen.File(a.sources.file("warmux-data", WARMUX_FLUTE, None)).tags
    genre = (tags.get("genre") or [None])[0]
    title = (tags.get("title") or ["Divertissement pour flute"])[0]
    artist = (tags.get("artist") or ["Lawrence Azzoug"])[0]
    if genre != "Classique":
        raise build.BuildError(f"warmux-data: {WARMUX_FLUTE} genre is {genre!r}")
    x = a.audio("warmux-data", WARMUX_FLUTE)
    seconds = len(x) / SR
    track_clips(
        a,
        clip,
        "warmux-data",
        WARMUX_FLUTE,
        seconds,
        WARMUX_AT,
        "warmux-flute",
        {
            "music": True,
            "genres": ["classical"],
            "style": "classical",
            "instruments": ["flute"],
            "instruments_complete": False,
        },
        f"warmux-data {Path(WARMUX_FLUTE).name}: Vorbis comment genre="
        f"{genre!r}, artist={artist!r}, title={title!r} (the title names "
        "a flute; other instruments are not stated)",
        title,
        artist,
        "warmux-flute",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="write labels.json")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=build.LABELS)
    args = parser.parse_args()
    a = Authoring(args.cache or build.default_cache())
    clips: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []

    def clip(
        cid: str,
        family: str,
        layers: list[dict[str, Any]],
        labels: dict[str, Any],
        evidence: list[str],
        construction: str,
        **extra: Any,
    ) -> str:
        licences = sorted({lay["licence"] for lay in layers})
        parts = {PART_OF[lay["package"]] for lay in layers}
        if len(parts) != 1:
            raise build.BuildError(f"{cid} mixes packages of both parts")
        full = {
            "vocals": None,
            "drums": None,
            "guitar": None,
            "piano": None,
            "instruments": None,
            "instruments_complete": False,
            "style": None,
            "vocal_kind": None,
            "speech": None,
            "music": None,
            "vocal_gender": None,
            "language": None,
            "genres": None,
            "bpm": None,
        }
        full.update(labels)
        if full["vocal_kind"] == "speech":
            full["speech"] = True
        clips.append(
            {
                "id": cid,
                "part": parts.pop(),
                "family": family,
                "duration": extra.pop("duration", CLIP_SECONDS),
                "layers": layers,
                "labels": full,
                "licence": " + ".join(licences),
                "construction": construction,
                "evidence": evidence,
                **extra,
            }
        )
        return cid

    # ---- speech segments: 15 s from the longest prompts, per speaker
    speech: list[dict[str, Any]] = []
    for spk in SPEAKERS:
        package, folder = spk["package"], spk["folder"]
        root = a.sources.root(package) / folder
        prompts = sorted(root.glob("*.g722"), key=lambda p: (-p.stat().st_size, p.name))
        taken = 0
        for p in prompts:
            # G.722 codes 16 kHz speech at 64 kbit/s: 8000 bytes a second
            if p.stat().st_size / 8000 < CLIP_SECONDS + 0.5 or taken >= 6:
                continue
            x = a.audio(package, f"{folder}/{p.name}")
            # the prompt's own start, skipping leading silence
            db = frame_db(x, 0.05)
            start = round(
                max(0.0, float(np.argmax(db > db.max() - 35)) * 0.05 - 0.1), 2
            )
            if start + CLIP_SECONDS > len(x) / SR:
                continue
            seg = {
                "type": "segment",
                **a.ref(package, f"{folder}/{p.name}"),
                "start": start,
                "end": round(start + CLIP_SECONDS, 2),
                "licence": PACKAGES[package]["licence"],
                "role": "voice",
            }
            speech.append(
                {
                    "layer": seg,
                    "speaker": spk["speaker"],
                    "gender": spk["gender"],
                    "language": spk["language"],
                    "part": PART_OF[package],
                    "prompt": p.stem,
                    "evidence": f"{package} {spk['credit']}; {p.name} is one of the "
                    "PBX's spoken prompts (a single speaker, no music).",
                }
            )
            taken += 1

    def interleave(part: str) -> list[dict[str, Any]]:
        """Speech segments of one part, speakers (packages) taking turns."""
        groups = [
            [s for s in speech if s["layer"]["package"] == spk["package"]]
            for spk in SPEAKERS
            if PART_OF[spk["package"]] == part
        ]
        order = [s for group in zip(*groups, strict=False) for s in group]
        return order + [s for g in groups for s in g if s not in order]

    speech_by_part = {part: interleave(part) for part in SPLIT}

    def voice(s: dict[str, Any], gain_db: float = 0.0) -> dict[str, Any]:
        return dict(s["layer"], gain_db=gain_db)

    def voice_labels(s: dict[str, Any]) -> dict[str, Any]:
        return {
            "vocals": True,
            "vocal_kind": "speech",
            "vocal_gender": s["gender"],
            "language": s["language"],
        }

    def lone_voice_labels(s: dict[str, Any]) -> dict[str, Any]:
        """A speaker (a speech segment or a prompt pack) heard alone."""
        return {
            "drums": False,
            "guitar": False,
            "piano": False,
            "instruments": [],
            "instruments_complete": True,
            "music": False,
            **voice_labels(s),
        }

    def voice_clip(s: dict[str, Any], cid: str) -> str:
        """A speech segment alone, as clip `cid`."""
        return clip(
            cid,
            "voice",
            [voice(s)],
            lone_voice_labels(s),
            [s["evidence"]],
            f"{s['speaker']}'s prompt '{s['prompt']}'",
            base_piece=s["prompt"],
        )

    # ---- drum kits: the Hydrogen kits (report), Sonic Pi's menegass kit (choose)
    kits: list[dict[str, Any]] = []
    for kit in KITS:
        kits.append(
            {
                "name": kit,
                "hits": kit_hits(a, kit),
                "package": "hydrogen-drumkits",
                "licence": KIT_LICENCE[kit],
                "evidence": f"hydrogen-drumkits {kit}: {KIT_EVIDENCE[kit]}",
            }
        )
    kits.append(
        {
            "name": "sonic-pi menegass",
            "hits": {
                r: a.ref("sonic-pi-samples", f"{SONIC}/{f}")
                for r, f in MENEGASS.items()
            },
            "package": "sonic-pi-samples",
            "licence": "CC0-1.0",
            "evidence": MENEGASS_EVIDENCE,
        }
    )
    kits_by_part = {
        part: [k for k in kits if PART_OF[k["package"]] == part] for part in SPLIT
    }

    def drums(
        kit: dict[str, Any],
        k: int,
        bpm: float,
        offset: float = 0.0,
        gain_db: float = -2.0,
    ) -> dict[str, Any]:
        return {
            "type": "drums",
            "package": kit["package"],
            "version": PACKAGES[kit["package"]]["version"],
            "kit": kit["name"],
            "hits": kit["hits"],
            "pattern": PATTERN_CYCLE[k % len(PATTERN_CYCLE)],
            "bpm": bpm,
            "offset": offset,
            "gain_db": gain_db,
            "licence": kit["licence"],
            "role": "drums",
        }

    drum_construction = (
        "a 16-step groove ({pattern}, {bpm} bpm) played with real one-shot "
        "recordings of an acoustic kit ({kit})"
    )
    used: set[int] = set()  # speech segments already in a mix (by id())

    def take_speech(part: str) -> dict[str, Any]:
        for s in speech_by_part[part]:
            if id(s) not in used:
                used.add(id(s))
                return s
        raise build.BuildError(f"too few speech segments in part {part}")

    # ---- Frets on Fire: guitar stems, the four factorial cells, full mixes
    for i, (package, folder, title) in enumerate(SONGS):
        part = PART_OF[package]
        g_path, s_path = f"{FOF}/{folder}/guitar.ogg", f"{FOF}/{folder}/song.ogg"
        g = a.audio(package, g_path)
        song = a.audio(package, s_path)
        start = best_window(g)
        end = round(start + CLIP_SECONDS, 2)
        bpm, first = tempo(g[int(start * SR) : int(end * SR)])
        slug = folder.split("/")[1].lower().replace(" ", "_")
        muldjord = package.endswith("muldjord")
        guitar_layer = {
            "type": "segment",
            **a.ref(package, g_path),
            "start": start,
            "end": end,
            "licence": PACKAGES[package]["licence"],
            "role": "guitar",
        }
        src_ev = f"{package}: {FOF_EVIDENCE[package]} {STEM_EVIDENCE}"
        gkind = ["electric guitar"] if muldjord else []
        base = {
            "guitar": True,
            "piano": False,
            "instruments": gkind,
            "instruments_complete": True,
            "music": True,
            "speech": False,
        }
        part_kits = kits_by_part[part]
        kit = part_kits[i % len(part_kits)]
        d = drums(kit, i, bpm, first)
        d_ev = kit["evidence"]
        d_con = drum_construction.format(pattern=d["pattern"], bpm=bpm, kit=d["kit"])
        s = take_speech(part)
        # Voice on top for half the songs, 4 dB under the guitar for the
        # other half: buried vocals are the hard case on real records.
        g_db, v_db = (-4.0, 0.0) if i % 2 == 0 else (0.0, -4.0)
        meta = {
            "title": title,
            "artist": "Muldjord" if muldjord else "Sectoid",
            "base_piece": slug,
        }
        g_id = clip(
            f"fof-{slug}-guitar",
            "guitar_stem",
            [dict(guitar_layer)],
            dict(base, vocals=False, drums=False),
            [src_ev],
            f"guitar stem of '{title}', {start}-{end} s",
            **meta,
        )
        gv_id = clip(
            f"fof-{slug}-guitar+voice",
            "guitar_voice",
            [dict(guitar_layer, gain_db=g_db), voice(s, v_db)],
            dict(base, drums=False, **voice_labels(s)),
            [src_ev, s["evidence"]],
            f"the same guitar stem mixed with {s['speaker']}'s prompt "
            f"'{s['prompt']}', voice {v_db - g_db:+.0f} dB against the guitar",
            **meta,
        )
        gd_id = clip(
            f"fof-{slug}-guitar+drums",
            "guitar_drums",
            [dict(guitar_layer), dict(d)],
            dict(base, vocals=False, drums=True, bpm=bpm),
            [src_ev, d_ev],
            f"the same guitar stem with {d_con}, 2 dB under the guitar",
            **meta,
        )
        gdv_id = clip(
            f"fof-{slug}-guitar+drums+voice",
            "guitar_drums_voice",
            [
                dict(guitar_layer, gain_db=g_db),
                dict(d, gain_db=g_db - 2.0),
                voice(s, v_db),
            ],
            dict(base, drums=True, bpm=bpm, **voice_labels(s)),
            [src_ev, d_ev, s["evidence"]],
            f"guitar stem + {d_con} (2 dB under the guitar) + {s['speaker']}'s "
            f"prompt '{s['prompt']}', voice {v_db - g_db:+.0f} dB against the guitar",
            **meta,
        )
        # Contract 3's pair_id column holds one pair per clip: even songs put
        # their vocals pairs there, odd songs their drums pairs, so that
        # `trainer evaluate` sees both attributes; labels.json keeps all four.
        even = i % 2 == 0
        pairs += [
            {"with": gv_id, "without": g_id, "attribute": "vocals", "column": even},
            {"with": gdv_id, "without": gd_id, "attribute": "vocals", "column": even},
            {"with": gd_id, "without": g_id, "attribute": "drums", "column": not even},
            {
                "with": gdv_id,
                "without": gv_id,
                "attribute": "drums",
                "column": not even,
            },
        ]
        mix = g + song[: len(g)] if len(song) >= len(g) else g[: len(song)] + song
        # Three full-mix windows a song, none overlapping the guitar segment
        # or each other (the best first, by the same loudness rule).
        taken_starts = [start]
        for n in range(3):
            mstart = best_window(mix, avoid=taken_starts)
            taken_starts.append(mstart)
            clip(
                f"fof-{slug}-fullmix" + ("" if n == 0 else f"{n + 1}"),
                "full_mix",
                [
                    {
                        "type": "stems",
                        "package": package,
                        "version": PACKAGES[package]["version"],
                        "stems": [a.ref(package, s_path), a.ref(package, g_path)],
                        "start": mstart,
                        "end": round(mstart + CLIP_SECONDS, 2),
                        "licence": PACKAGES[package]["licence"],
                        "role": "band",
                    }
                ],
                {
                    "guitar": True,
                    "instruments": gkind,
                    "instruments_complete": False,
                    "style": "metal" if muldjord else None,
                    "genres": ["metal"] if muldjord else None,
                    "music": True,
                },
                [
                    f"{package}: {FOF_EVIDENCE[package]} song.ogg + guitar.ogg is "
                    "the whole recording; whether it has vocals or drums is not "
                    "documented, so both are left unknown."
                ],
                f"song.ogg + guitar.ogg of '{title}' summed, "
                f"{mstart}-{mstart + CLIP_SECONDS} s",
                **meta,
            )

    # ---- drums alone, speech alone, speech over drums (each part its own kits)
    bpms = [92.0, 100.0, 108.0, 116.0, 124.0, 84.0, 132.0]
    triples: list[tuple[str, dict[str, Any], int]] = [
        ("report", k, i) for i, k in enumerate(kits_by_part["report"])
    ] + [("choose", kits_by_part["choose"][0], 6), ("choose", {}, 7)]
    for part, kit, i in triples:
        if kit:
            d = drums(kit, i, bpms[i], 0.0, gain_db=0.0)
            d_ev = kit["evidence"]
            d_con = drum_construction.format(
                pattern=d["pattern"], bpm=d["bpm"], kit=d["kit"]
            )
            name = kit["name"].lower().replace(" ", "_").replace(".", "")
            d_bpm: float | None = bpms[i]
        else:
            loop = a.audio("sonic-pi-samples", f"{SONIC}/loop_breakbeat.flac")
            d = {
                "type": "segment",
                **a.ref("sonic-pi-samples", f"{SONIC}/loop_breakbeat.flac"),
                "start": 0.0,
                "end": round(len(loop) / SR, 4),
                "loop": True,
                "gain_db": 0.0,
                "licence": "CC0-1.0",
                "role": "drums",
            }
            d_ev = (
                "sonic-pi-samples README.md lists loop_breakbeat under '## Loops' "
                "(freesound.org/people/Snapper4298/sounds/160354), copyright: "
                "'License: CC0'; a breakbeat is a sampled drum break"
            )
            d_con = "Sonic Pi's loop_breakbeat (a real drum break) looped"
            name = "breakbeat"
            d_bpm = None
        s = take_speech(part)
        nothing_else = {
            "guitar": False,
            "piano": False,
            "instruments": [],
            "instruments_complete": True,
        }
        d_id = clip(
            f"drums-{name}",
            "drums",
            [dict(d)],
            dict(
                nothing_else,
                vocals=False,
                drums=True,
                music=True,
                speech=False,
                bpm=d_bpm,
            ),
            [d_ev],
            d_con,
            base_piece=f"drums-{name}",
        )
        v_id = voice_clip(s, f"voice-{s['speaker'].split()[0].lower()}-{s['prompt']}")
        dv_id = clip(
            f"drums-{name}+voice",
            "drums_voice",
            [dict(d, gain_db=-3.0), voice(s)],
            dict(nothing_else, drums=True, music=True, bpm=d_bpm, **voice_labels(s)),
            [d_ev, s["evidence"]],
            f"{d_con}, 3 dB under {s['speaker']}'s prompt '{s['prompt']}'",
            base_piece=f"drums-{name}",
        )
        pairs += [
            {
                "with": dv_id,
                "without": d_id,
                "attribute": "vocals",
                "column": i % 2 == 0,
            },
            {
                "with": dv_id,
                "without": v_id,
                "attribute": "drums",
                "column": i % 2 == 1,
            },
        ]

    # ---- every other 15 s speech segment, alone (speech vs music, gender)
    for s in speech:
        if id(s) in used:
            continue
        used.add(id(s))
        who = s["speaker"].split()[0].lower()
        lang = s["layer"]["package"].split("-")[3]
        voice_clip(s, f"voice-{who}-{lang}-{s['prompt']}")

    # ---- 8 kHz prompt packs: the longest prompts joined, 0.4 s apart, to 15 s
    for pack in PROMPT_PACKS:
        package, folder = pack["package"], pack["folder"]
        root = a.sources.root(package) / folder
        prompts = sorted(root.glob("*.gsm"), key=lambda p: (-p.stat().st_size, p.name))
        k = 0
        for n in range(5):
            parts_: list[dict[str, Any]] = []
            total = 0.0
            while total < CLIP_SECONDS and k < len(prompts):
                p = prompts[k]
                k += 1
                x = a.audio(package, f"{folder}/{p.name}")
                parts_.append(
                    {
                        **a.ref(package, f"{folder}/{p.name}"),
                        "start": 0.0,
                        "end": round(len(x) / SR, 4),
                    }
                )
                total += len(x) / SR + 0.4
            if total < CLIP_SECONDS:
                break
            names = ", ".join(Path(q["path"]).stem for q in parts_)
            who = pack["speaker"].split()[0].lower()
            clip(
                f"voice-{who}-{n + 1}",
                "voice",
                [
                    {
                        "type": "concat",
                        "package": package,
                        "version": PACKAGES[package]["version"],
                        "parts": parts_,
                        "gap": 0.4,
                        "licence": PACKAGES[package]["licence"],
                        "role": "voice",
                    }
                ],
                lone_voice_labels(pack),
                [
                    f"{package} {pack['credit']}; each part is one of the PBX's "
                    "spoken prompts (a single speaker, no music)."
                ],
                f"{pack['speaker']}'s prompts {names}, 0.4 s apart",
                base_piece=f"{package}-{n + 1}",
            )

    # ---- solo instrument samples (Sonic Pi), looped into phrases
    # Sample -> (instrument, its Freesound author); a guitar of unstated kind
    # is "guitar" with no kind, as for LMMS's guitars.
    solos = {
        "guit_em9.flac": ("guitar", "Sub-d (freesound 46992)"),
        "guit_e_fifths.flac": ("guitar", "Sub-d (freesound 46990)"),
        "ambi_piano.flac": ("piano", "Rutger Muller (freesound 51245)"),
        "guit_harmonics.flac": ("guitar", "BStateham (freesound 141524)"),
        "guit_e_slide.flac": ("guitar", "Suva (freesound 2410)"),
    }
    solo_labels = {
        "guitar": {"instruments": [], "guitar": True},
        "piano": {"instruments": ["piano"], "piano": True},
    }
    for fname, (inst, who) in solos.items():
        layer = a.loop_layer("sonic-pi-samples", f"{SONIC}/{fname}", inst)
        section = "## Guitar" if inst == "guitar" else "## Ambient"
        clip(
            f"solo-{fname.split('.')[0]}",
            "solo_sample",
            [layer],
            instrument_labels(solo_labels[inst]),
            [
                f"sonic-pi-samples README.md lists :{fname.split('.')[0]} under "
                f"'{section}' ({who}); copyright: 'License: CC0'. A single {inst} "
                "sample: no drums, no voice."
            ],
            f"the {layer['end']} s sample looped to 12 s",
            duration=12.0,
            base_piece=fname.split(".")[0],
        )

    # ---- GCompris instrument demos: alone, over a groove, under a voice
    mixing = Mixing(clip, drums, voice, voice_labels, pairs)
    instrument_clips(a, mixing, kits_by_part["report"], speech_by_part["report"])

    # ---- soundtracks whose genre the package states (report part)
    soundtrack_clips(a, clip)

    # ---- sample packs and a stated-genre piece (choose part)
    sample_pack_clips(a, mixing, kits_by_part["choose"][0], speech_by_part["choose"])

    recipe = {
        "format": 2,
        "sample_rate": SR,
        "about": "Real-recording check set for beets-clap: see docs/realset.md. Labels "
        "are null where no evidence exists. vocal_kind says whether a voice speaks "
        "('speech': telephone prompts) or sings ('sung': the one choir sample, "
        "choose part only). 'split' assigns every package to one part: choose on "
        "'choose', report on 'report'.",
        "split": SPLIT,
        "packages": PACKAGES,
        "clips": clips,
        "pairs": pairs,
    }
    args.out.write_text(json.dumps(recipe, indent=1, ensure_ascii=False) + "\n")
    counts = {p: sum(c["part"] == p for c in clips) for p in SPLIT}
    print(f"{len(clips)} clips ({counts}), {len(pairs)} pairs -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
