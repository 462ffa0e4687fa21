"""The plugin's tables inside library.db: their names and definitions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# item_id -> float32 vector, plus where the vector's int8 code sits.
VECTORS = "clap_vectors"
# The int8 codes, vectors.CHUNK_SLOTS vectors per row, scanned by the coarse pass.
CODES = "clap_codes"
STATE = "clap_state"
META = "clap_meta"
TAGS = "clap_tags"

# Index state, its key/value table and tag probabilities.
STATE_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT)",
    f"CREATE TABLE IF NOT EXISTS {STATE} ("
    "item_id INTEGER PRIMARY KEY, mtime REAL NOT NULL, size INTEGER NOT NULL, "
    "bundle TEXT NOT NULL, "
    "status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), "
    "error TEXT, windows INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL, "
    "max_windows INTEGER NOT NULL DEFAULT 0)",
    f"CREATE TABLE IF NOT EXISTS {TAGS} (item_id INTEGER PRIMARY KEY, tags BLOB)",
)
# Columns of STATE that an index made by an older version lacks, with the
# definition that adds them; each default reads as "not recorded".
# max_windows: the window cap the vector was embedded with.
STATE_ADDED_COLUMNS = {"max_windows": "INTEGER NOT NULL DEFAULT 0"}
# The vectors and their codes: recreated when the dimension changes.
VECTOR_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {VECTORS} ("
    "item_id INTEGER PRIMARY KEY, embedding BLOB NOT NULL, "
    "chunk INTEGER NOT NULL, slot INTEGER NOT NULL)",
    # ids int64[slots] (0 = free), scales float32[slots], sums int32[slots],
    # codes int8[dim, slots]: dimension-major, as the scan reads them.
    f"CREATE TABLE IF NOT EXISTS {CODES} ("
    "chunk INTEGER PRIMARY KEY, version INTEGER NOT NULL, used INTEGER NOT NULL, "
    "ids BLOB NOT NULL, scales BLOB NOT NULL, sums BLOB NOT NULL, "
    "codes BLOB NOT NULL)",
)
# Id lists travel as one JSON parameter (no limit on SQL variables).
ID_LIST = "(SELECT value FROM json_each(?))"


def json_ids(ids: Iterable[int]) -> str:
    """The parameter for ID_LIST."""
    return json.dumps([int(i) for i in ids])


def column_names(conn: Any, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}


def table_names(conn: Any) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows.fetchall()}
