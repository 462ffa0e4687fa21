"""The `clap:TEXT` named query: beets query classes matching a search's top-k."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from beets.dbcore.query import FieldQuery
from beets.plugins import find_plugins
from beets.ui import UserError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from . import ClapPlugin


def _plugin() -> ClapPlugin:
    from . import ClapPlugin  # the package is loaded by the time a query runs

    for plugin in find_plugins():
        if isinstance(plugin, ClapPlugin):
            return plugin
    raise UserError("the clap plugin is not loaded")


class ClapQuery(FieldQuery[str]):
    """`clap:TEXT`: the items among the `query_top_k` best for TEXT.

    A named query (`item_queries`), so `beet ls clap:"calm piano"` and
    smartplaylist queries work. The search runs once per query object,
    on first use, and its id set is reused for every match.
    """

    _column = "items.id"

    def __init__(self, field_name: str, pattern: str, fast: bool = True) -> None:
        super().__init__(field_name, pattern, fast=True)
        self._ids: set[int] | None = None

    def _search(self) -> set[int]:
        return _plugin().query_ids(self.pattern)

    def _matching(self) -> set[int]:
        if self._ids is None:
            self._ids = self._search()
        return self._ids

    def col_clause(self) -> tuple[str, Sequence[str]]:
        ids = json.dumps(sorted(self._matching()))
        return f"{self._column} IN (SELECT value FROM json_each(?))", [ids]

    def match(self, obj: Any) -> bool:
        return obj.id in self._matching()


class ClapAlbumQuery(ClapQuery):
    """`beet ls -a clap:TEXT`: albums holding any of the top-k tracks."""

    _column = "albums.id"

    def _search(self) -> set[int]:
        return _plugin().query_album_ids(self.pattern)
