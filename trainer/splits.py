"""The split reader: a split's captions parquet (one file or its shards) as Clips.

One on-disk layout serves MSD + LP-MusicCaps-MSD, the synthetic corpus and the
test fixtures (see docs/training.md):

    DATA/captions/{split}.parquet     (or the published shards {split}-*.parquet)
    DATA/audio/<path>                 (mp3/flac/wav/ogg, or the 16 kHz `.npy` twin)

Training (trainer.data) and evaluation (trainer.evaluate) both read splits
here, so they agree on columns, shards and audio paths. No torch: evaluation
runs ONNX bundles only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CAPTIONS_DIR = "captions"
AUDIO_DIR = "audio"
# The MSD community preprocessing stores 16 kHz mono arrays next to the mp3 paths.
NPY_SAMPLE_RATE = 16000
CAPTION_COLUMNS: tuple[str, ...] = (
    "caption_writing",
    "caption_summary",
    "caption_paraphrase",
    "caption_attribute_prediction",
)
# Contract 3's parquet columns: LP-MusicCaps-MSD as published, then the
# extras the synthetic corpus and fixtures carry (all optional for MSD).
LP_COLUMNS: tuple[str, ...] = (
    "track_id",
    "title",
    "artist_name",
    "release",
    "year",
    "tag",
    *CAPTION_COLUMNS,
    "path",
)
EXTRA_COLUMNS: tuple[str, ...] = (
    "attributes",
    "absent",
    "pair_id",
    "pair_attribute",
    "base_piece",
    "soundfont",
)


def split_schema() -> Any:
    """The pyarrow schema of a captions/{split}.parquet written by this project."""
    import pyarrow as pa

    string_list = pa.list_(pa.string())
    types = {"year": pa.int64(), "tag": string_list, "absent": string_list}
    return pa.schema(
        [(c, types.get(c, pa.string())) for c in (*LP_COLUMNS, *EXTRA_COLUMNS)]
    )


class DataError(Exception):
    """A data directory that cannot be used; the message is one line."""


@dataclass
class Clip:
    """One row of a split: what the dataset needs, resolved once."""

    track_id: str
    audio: Path  # the file actually read (the `.npy` twin when present)
    tags: list[str]
    captions: dict[str, str]  # non-empty sentence captions by column
    absent: list[str] | None = None  # true negations (synthetic corpus only)
    attributes: dict[str, Any] | None = None
    # Synthetic corpus only: the base piece the clip was rendered from (its
    # minimal-pair sibling shares it) and the attribute that pair flips
    # ("drums", "vocals", "instrument:piano"), so training can batch siblings
    # together and make their texts differ in exactly that attribute.
    group: str | None = None
    pair_attribute: str | None = None
    pair_id: str | None = None  # the minimal pair the clip belongs to

    @property
    def pair_term(self) -> str | None:
        """The flipped attribute as a vocabulary term ("instrument:" dropped)."""
        attr = self.pair_attribute
        if not attr:
            return None
        return attr.split(":", 1)[1] if attr.startswith("instrument:") else attr


@dataclass
class SplitStats:
    """What reading a split dropped, so the log can say it."""

    rows: int = 0
    missing_audio: int = 0
    no_text: int = 0
    missing_examples: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- files


def split_files(data_dir: Path, split: str) -> list[Path]:
    """The parquet file(s) of a split: `{split}.parquet`, else the HF shards."""
    captions = Path(data_dir) / CAPTIONS_DIR
    single = captions / f"{split}.parquet"
    if single.is_file():
        return [single]
    shards = sorted(captions.glob(f"{split}-*.parquet"))
    if shards:
        return shards
    raise DataError(f"data directory {data_dir}: no {CAPTIONS_DIR}/{split}.parquet")


def audio_file(data_dir: Path, rel: str) -> Path:
    """The file to read for a `path` value, preferring the preprocessed `.npy` twin."""
    path = Path(data_dir) / AUDIO_DIR / rel
    twin = path.with_suffix(".npy")
    return twin if twin.is_file() else path


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # tolerate a comma-joined string
        value = value.split(",")
    return [str(t).strip().lower() for t in value if t is not None and str(t).strip()]


def read_split(
    data_dir: Path | str,
    split: str,
    *,
    caption_columns: Sequence[str] = CAPTION_COLUMNS,
    max_items: int | None = None,
    keep_missing_audio: bool = False,
) -> tuple[list[Clip], SplitStats]:
    """Read one split, every shard of it, in file order; drop (and count)
    rows without audio or without any text.

    Only `path` is required; every other column is optional so that the
    published LP-MusicCaps-MSD parquet, the synthetic corpus and a hand-made
    table all load. With `keep_missing_audio` a row whose audio file is
    missing is kept (and still counted), so that a benchmark can report it
    among the clips it could not embed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir = Path(data_dir)
    try:
        table = pa.concat_tables(
            [pq.read_table(p) for p in split_files(data_dir, split)],
            promote_options="default",
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(
            f"data directory {data_dir}: cannot read {split} captions: {exc}"
        ) from exc
    if "path" not in table.column_names:
        raise DataError(
            f"data directory {data_dir}: {split} captions have no 'path' column"
        )
    # LP-MusicCaps' caption columns are optional (a hand-made table may have
    # tags only); any other column asked for must be there, or a misspelt
    # name would silently train without sentence captions.
    unknown = [
        c
        for c in caption_columns
        if c not in table.column_names and c not in CAPTION_COLUMNS
    ]
    if unknown:
        raise DataError(
            f"data directory {data_dir}: {split} captions have no column "
            f"{unknown[0]!r} to take captions from (its columns: "
            f"{', '.join(table.column_names)})"
        )

    def column(name: str) -> list[Any]:
        if name in table.column_names:
            return table.column(name).to_pylist()
        return [None] * table.num_rows

    paths, track_ids, tags = column("path"), column("track_id"), column("tag")
    absent, attributes = column("absent"), column("attributes")
    groups, pair_attrs = column("base_piece"), column("pair_attribute")
    pair_ids = column("pair_id")
    captions = {c: column(c) for c in caption_columns}
    stats = SplitStats(rows=table.num_rows)
    clips: list[Clip] = []
    for i, rel in enumerate(paths):
        if max_items is not None and len(clips) >= max_items:
            break
        path = audio_file(data_dir, rel) if rel else None
        if path is None or not path.is_file():
            stats.missing_audio += 1
            if len(stats.missing_examples) < 3:
                stats.missing_examples.append(str(rel))
            if path is None or not keep_missing_audio:
                continue
        texts = {
            c: v.strip() for c, vals in captions.items() if (v := vals[i]) and v.strip()
        }
        clip_tags = _tags(tags[i])
        if not texts and not clip_tags:
            stats.no_text += 1
            continue
        attrs = attributes[i]
        if isinstance(attrs, str):
            try:
                attrs = json.loads(attrs)
            except json.JSONDecodeError:
                attrs = None
        clips.append(
            Clip(
                track_id=str(track_ids[i] if track_ids[i] is not None else rel),
                audio=path,
                tags=clip_tags,
                captions=texts,
                absent=_tags(absent[i]) if absent[i] is not None else None,
                attributes=attrs if isinstance(attrs, dict) else None,
                group=groups[i] or None,
                pair_attribute=pair_attrs[i] or None,
                pair_id=pair_ids[i] or None,
            )
        )
    return clips, stats
