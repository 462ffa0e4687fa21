"""The clap-web and clap-map runs: a search page served, a map file written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beets.ui import UserError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from beets.library import Library

    from .model import Bundle
    from .store import Store

    # The plugin's accessors: (bundle, store) opened on first use.
    Resources = Callable[[], tuple[Bundle, Store]]


def serve_page(
    lib: Library,
    args: Sequence[str],
    host: str,
    port: int,
    resources: Resources,
    embed: Callable[[str, str], Any],
    limit: int,
    log: Any,
    announce: Callable[[str], None],
) -> None:
    """`beet clap-web`: serve the search page until interrupted."""
    try:
        import flask  # noqa: F401
    except ImportError as exc:
        raise UserError("clap-web needs Flask: pip install 'beets-clap[web]'") from exc
    from . import search, web

    if args:
        raise UserError("clap-web takes no query: type it on the page")
    bundle, store = resources()
    backend = web.Backend(lib, store, bundle, embed, search.query_fields(lib))
    if (problem := backend.index_problem()) is not None:
        log.warning("clap-web: {} (the page says so too)", problem)
    if not web.is_loopback(host):
        log.warning(
            "clap-web: listening on {}: anyone who reaches it can "
            "search and play the library",
            host,
        )
    app = web.create_app(backend, limit)
    try:
        web.serve(app, host, port, announce)
    except web.WebError as exc:
        raise UserError(str(exc)) from exc


def write_map(
    lib: Library,
    query: Sequence[str],
    output: str | None,
    color: str | None,
    layout: str,
    resources: Resources,
    searching: Callable[[Callable[[], Any]], Any],
) -> tuple[int, int]:
    """`beet clap-map`: the library's map written to `output` as one HTML
    file; returns (tracks, regions) drawn. `searching` turns a search's
    one-line errors into UserError."""
    from . import mapview

    if not output:
        raise UserError("give the file to write: beet clap-map -o map.html")
    bundle, store = resources()
    try:
        tracks, vectors = searching(
            lambda: mapview.library_points(lib, store, bundle, query, color)
        )
        title = mapview.library_title(query)
        data = mapview.map_data(
            tracks, vectors, bundle.embed_text, color, layout, title
        )
    except mapview.MapError as exc:
        raise UserError(str(exc)) from exc
    try:
        with open(output, "w", encoding="utf-8") as out:
            out.write(mapview.map_html(data))
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror}") from exc
    return len(data["ids"]), len(data["regions"])
