"""Guards of the clap commands: settings, runtime imports, one-line DB errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beets.ui import UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from beets.library import Library

# What every command needs at run time, by import name (also the pip name).
RUNTIME_MODULES = ("numpy", "onnxruntime", "tokenizers")


def require_runtime() -> None:
    """One line instead of a traceback when a runtime library cannot be
    imported (missing, or a broken install that raises on import)."""
    import importlib

    for name in RUNTIME_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken install raises more than ImportError
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise UserError(
                f"cannot import {name} ({type(exc).__name__}"
                f"{': ' + detail if detail else ''}): the clap plugin needs it; "
                f"reinstall it: pip install --force-reinstall {name}"
            ) from exc


def guarded(
    check: Callable[[], None], func: Callable[[Library, Any, list[str]], None]
) -> Callable[[Library, Any, list[str]], None]:
    """A command that refuses to start on invalid settings (`check`), and
    reports failures of library.db itself in one line, not a traceback.

    The usual database failure is a lock held past the busy timeout by
    another writer (a long `beet import`); every write of the plugin is a
    transaction, so what had been committed is kept and a re-run carries on.
    A library the user may read but not write is named as such.
    """
    import functools

    @functools.wraps(func)
    def run(lib: Library, opts: Any, args: list[str]) -> None:
        import sqlite3

        check()
        try:
            func(lib, opts, args)
        except sqlite3.OperationalError as exc:
            from .store import BUSY_TIMEOUT_SECONDS

            reason = str(exc)
            if "locked" in reason or "busy" in reason:
                raise UserError(
                    "library database is locked by another program "
                    f"(waited {BUSY_TIMEOUT_SECONDS:g} s): nothing half-written "
                    "was kept; run the command again when it has finished"
                ) from exc
            if "readonly" in reason:
                from beets.util import displayable_path

                raise UserError(
                    f"library database {displayable_path(lib.path)} is read-only "
                    "to this user: this command writes the index there "
                    "(searching does not); make the file and its folder "
                    "writable, or run it as their owner"
                ) from exc
            raise UserError(f"library database error: {reason}") from exc

    return run
