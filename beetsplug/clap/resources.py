"""The model bundle and the library's stores, opened on first use, kept for the run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beets.ui import UserError

from .guards import require_runtime
from .results import counted
from .settings import within_cpus

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .model import Bundle
    from .store import Store


class Resources:
    """What the commands share: one bundle, one store per library.db path;
    their errors become one-line UserErrors."""

    def __init__(self, settings: Mapping[str, Any], log: Any) -> None:
        self._settings = settings
        self._log = log
        self._bundle: Bundle | None = None
        self._stores: dict[str, Store] = {}
        self._threads: int | None = None

    def threads(self) -> int:
        """clap.threads for this process's sessions, capped at its CPUs
        (the note said once): onnxruntime starts every thread it is given."""
        if self._threads is None:
            threads, note = within_cpus("clap.threads", self._settings["threads"])
            if note is not None:
                self._log.info("{}", note)
            self._threads = threads
        return self._threads

    def bundle(self, audio: bool = False) -> Bundle:
        """The configured model bundle, loaded (and validated) on first use.

        Searches need only the text tower; `audio=True` (indexing) also
        opens and checks audio.onnx, before any file is decoded.
        """
        if self._bundle is None:
            require_runtime()
        from .model import Bundle, BundleError

        try:
            if self._bundle is None:
                self._bundle = Bundle.load(
                    self._settings["model"],
                    threads=self.threads(),
                    audio=False,
                )
                self._log.debug(
                    "model bundle {} from {} ({}, 0 = one per core)",
                    self._bundle.label,
                    self._bundle.path,
                    counted(self._bundle.threads, "thread"),
                )
            if audio:
                self._bundle.open_audio()
        except BundleError as exc:
            raise UserError(str(exc)) from exc
        return self._bundle

    def store(self, path: str) -> Store:
        """The plugin's own connection to the library.db at `path`."""
        if path not in self._stores:
            from . import coarse
            from .store import Store, StoreError

            coarse.set_threads(self.threads())
            try:
                self._stores[path] = Store.open(path)
            except StoreError as exc:
                raise UserError(str(exc)) from exc
        return self._stores[path]

    def close(self) -> None:
        """Close every store (at exit); the next use opens them again."""
        for store in self._stores.values():
            store.close()
        self._stores.clear()
