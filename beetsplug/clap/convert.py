"""Converting an index of the first, sqlite-vec (vec0) layout to the current one."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .schema import CODES, VECTOR_SCHEMA, VECTORS
from .store import StoreError
from .vectors import CHUNK_SLOTS, put_vectors

if TYPE_CHECKING:
    import numpy as np

# Points the converter at another sqlite-vec build than the `vec` extra's
# (or, in tests, at a file that is not one).
VEC_PATH_ENV = "BEETS_CLAP_SQLITE_VEC"


def is_vec0(conn: Any) -> bool:
    """Whether the vectors are in a vec0 virtual table (the first layout)."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (VECTORS,)
    ).fetchone()
    return bool(row and row[0] and row[0].lstrip().upper().startswith("CREATE VIRTUAL"))


def extension_connection(db_path: str, timeout: float) -> Any:
    """A connection with sqlite-vec loaded (the standard sqlite3, or sqlean
    where this Python's sqlite3 cannot load extensions)."""
    import sqlite3

    module: Any = sqlite3
    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        try:
            import sqlean as module
        except ImportError as exc:
            raise StoreError(
                "this library's clap index is in beets-clap's first layout "
                "(sqlite-vec); converting it (once, vectors kept) needs SQLite "
                "extension loading: pip install 'beets-clap[vec]'"
            ) from exc
    path = os.environ.get(VEC_PATH_ENV)
    try:
        if not path:
            import sqlite_vec

            path = sqlite_vec.loadable_path()
    except ImportError as exc:
        raise StoreError(
            "this library's clap index is in beets-clap's first layout "
            "(sqlite-vec); converting it (once, vectors kept) needs sqlite-vec: "
            "pip install 'beets-clap[vec]'"
        ) from exc
    conn = module.connect(db_path, timeout=timeout, isolation_level=None)
    try:
        conn.enable_load_extension(True)
        conn.load_extension(path)
        conn.enable_load_extension(False)
    except module.Error as exc:
        conn.close()
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(f"cannot load sqlite-vec from {path}: {detail}") from exc
    return conn


def convert_vec0(db_path: str, timeout: float) -> None:
    """Move the vectors out of a vec0 table into the plain tables, in one
    transaction: nothing is re-embedded and nothing is lost on failure."""
    conn = extension_connection(db_path, timeout)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if is_vec0(conn):
                rows = conn.execute(
                    f"SELECT item_id, embedding FROM {VECTORS}"
                ).fetchall()
                conn.execute(f"DROP TABLE {VECTORS}")
                for ddl in VECTOR_SCHEMA:
                    conn.execute(ddl)
                conn.execute(f"DELETE FROM {CODES}")
                for start in range(0, len(rows), CHUNK_SLOTS):
                    put_vectors(
                        conn,
                        [
                            (int(i), _frombytes(blob))
                            for i, blob in rows[start : start + CHUNK_SLOTS]
                        ],
                    )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def _frombytes(blob: bytes) -> np.ndarray:
    import numpy as np

    return np.frombuffer(blob, np.float32)
