"""What automatic playlist names say, held against the realset's labels.

`beet clap-playlists` clusters a library and names each cluster ("chillout
guitar, no drums"). This clusters each part of the realset as if it were a
library of its own, names the clusters with the plugin's code, and counts,
for every ", no X" a name says, how many of the cluster's clips the labels
say do have X, and for every "spoken word" how many are speech:

    python tests/benchmarks/realset/names.py --bundle models/clap-default \
        --data REALSET --cache CACHE [--part choose|report]

It reuses check.py's cache of the bundle's embeddings and tags (after a
check run it embeds only the descriptors' texts). The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2]))

import check  # noqa: E402
from concepts import presence  # noqa: E402


def _rate(labels: np.ndarray) -> tuple[int, int]:
    """(clips labelled with the part, clips labelled either way)."""
    known = labels >= 0
    return int((labels[known] == 1).sum()), int(known.sum())


def part_names(
    recipe: dict[str, Any],
    index: np.ndarray,
    audio: np.ndarray,
    tags: np.ndarray | None,
    bundle: Any,
    k: int | None = None,
) -> dict[str, Any]:
    """Cluster and name the clips at `index` as one library (`k` clusters;
    None: as many as the plugin makes of a library that size); per cluster
    its name, size, the labelled presence of each presence part and how
    many of its clips are speech."""
    from beetsplug.clap.clusters import DESCRIPTORS, SPEECH_NAME
    from beetsplug.clap.playlists import automatic_playlists

    clips = [recipe["clips"][i] for i in index]
    playlists = automatic_playlists(
        list(range(len(index))),
        audio[index],
        bundle.embed_text,
        k=k,
        tags=None if tags is None else tags[index],
        tag_meanings=bundle.tag_meanings if tags is not None else (),
    )
    rows = []
    said = {p: [0, 0, 0] for p in DESCRIPTORS.presence}  # names, with X, known
    spoken = [0, 0, 0]  # names, speech clips, clips labelled either way
    for playlist in playlists:
        members = playlist.item_ids
        row: dict[str, Any] = {"name": playlist.name, "clips": len(members)}
        for part in DESCRIPTORS.presence:
            labels = np.array([presence(part)(clips[i]["labels"]) for i in members])
            have, known = _rate(labels)
            row[part] = [have, known]
            if playlist.name.endswith(f", no {part}"):
                said[part][0] += 1
                said[part][1] += have
                said[part][2] += known
        speech = np.array([_speech(clips[i]["labels"]) for i in members])
        row["speech"] = list(_rate(speech))
        if playlist.name.split(" ")[:2] == SPEECH_NAME.split(" ")[:2]:
            spoken[0] += 1
            spoken[1] += row["speech"][0]
            spoken[2] += row["speech"][1]
        rows.append(row)
    summary = {
        p: {"names": n, "clips_with_it": w, "clips_labelled": k}
        for p, (n, w, k) in said.items()
    }
    return {
        "clusters": rows,
        "said_absent": summary,
        "said_speech": dict(
            zip(("names", "speech_clips", "clips_labelled"), spoken, strict=True)
        ),
    }


def _speech(labels: dict[str, Any]) -> int:
    """1 a voice speaks (alone or over music), 0 it does not, -1 unknown."""
    value = labels.get("speech")
    return -1 if value is None else int(bool(value))


def run(args: argparse.Namespace) -> dict[str, Any]:
    recipe, bundle, got = check.load_embedded(args)
    parts = ("choose", "report") if args.part is None else (args.part,)
    return {
        "model": bundle.label,
        "parts": {
            part: part_names(
                recipe,
                check.part_index(recipe, part),
                got["audio"],
                got.get("tags"),
                bundle,
            )
            for part in parts
        },
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"automatic playlist names on the realset: {report['model']}")
    for part, entry in report["parts"].items():
        print(f"\n== part {part}\n")
        presence_parts = list(entry["said_absent"])
        lines = [["name", "clips", *(f"with {p}" for p in presence_parts), "speech"]]
        for row in entry["clusters"]:
            lines.append(
                [
                    row["name"],
                    row["clips"],
                    *(f"{row[p][0]}/{row[p][1]}" for p in presence_parts),
                    f"{row['speech'][0]}/{row['speech'][1]}",
                ]
            )
        check._table(lines)
        for p, s in entry["said_absent"].items():
            print(
                f'", no {p}": {s["names"]} name(s); {s["clips_with_it"]} of their '
                f"{s['clips_labelled']} labelled clips have {p}"
            )
        s = entry["said_speech"]
        print(
            f'"spoken word": {s["names"]} name(s); {s["speech_clips"]} of their '
            f"{s['clips_labelled']} labelled clips are speech"
        )


def main(argv: Sequence[str] | None = None) -> int:
    return check.cached_main(argv, __doc__, "names", run, print_report)


if __name__ == "__main__":
    raise SystemExit(main())
