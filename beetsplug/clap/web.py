"""The clap-web search page: a Flask app over the library, its index and model."""

from __future__ import annotations

import ipaddress
import re
import socket
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .items import item_artist, item_path, track_label
from .mapview import MapError, library_points, map_data, static_text

if TYPE_CHECKING:
    from beets.library import Library
    from flask import Flask

    from .model import Bundle
    from .search import TextQuery
    from .store import Store

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8338  # beets' own `web` plugin takes 8337
MAX_RESULTS = 500
MAX_QUERY_CHARS = 1000
# The only files /static/ serves: a fixed list, so no request names a path.
STATIC_FILES = {
    "map.js": "text/javascript",
    "map.css": "text/css",
    "web.js": "text/javascript",
    "web.css": "text/css",
}
_MAX_ID = 2**63 - 1  # SQLite's integer range; larger ids cannot exist
# How a refused description's message shows one to search for: the page
# has a search box, not `beet clap` (search.description_problem).
BOX_EXAMPLE = 'search for "{}"'


class WebError(Exception):
    """clap-web cannot start as asked; the message is one line."""


class ApiError(Exception):
    """A request answered with a JSON error: one line and an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# A word of the search box: runs of characters other than spaces, where a
# double-quoted stretch may hold spaces (artist:"The Band"); an unbalanced
# double quote is a plain character.
_BOX_WORD = re.compile(r'(?:[^\s"]+|"[^"]*"|")+')


def split_query(text: str, fields: set[str]) -> tuple[str, list[str]]:
    """(description, beets query terms) of what was typed in the search box,
    as `beet clap TEXT QUERY` takes them: words naming a known field
    (year:1990..1999, artist:"The Band") are the beets query, the rest is the
    description, as typed. A lone `,` between two query terms is beets' OR,
    as on the command line (`year:1999 , title:Feelings`); any other comma
    is the description's ("ambient, no drums"). The box is no shell: an
    apostrophe is part of its word ("I can't stand drums"), and double
    quotes around description words keep them literal, as they do in a
    description (docs/queries.md). `fields`: search.query_fields."""
    from .search import is_query_term

    typed = _BOX_WORD.findall(text)
    is_term = [
        not word.startswith('"') and is_query_term(word.replace('"', ""), fields)
        for word in typed
    ]
    words, terms = [], []
    for i, word in enumerate(typed):
        between_terms = 0 < i < len(typed) - 1 and is_term[i - 1] and is_term[i + 1]
        if is_term[i]:
            terms.append(word.replace('"', ""))
        elif word == "," and between_terms:
            terms.append(word)
        else:
            words.append(word)
    # A lone comma left at either end of the description separated it from
    # the query terms ("year:1999 , title:x , calm"): no part of the music.
    while words and words[0] == ",":
        words.pop(0)
    while words and words[-1] == ",":
        words.pop()
    return " ".join(words), terms


@dataclass
class Backend:
    """The library, its index and the model, shared by every request (one
    request at a time uses the index and model: the lock)."""

    lib: Library
    store: Store
    bundle: Bundle
    # The plugin's configured embed_query: (description, example).
    embed: Callable[[str, str], TextQuery]
    fields: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _map_lock: threading.Lock = field(default_factory=threading.Lock)
    _map: dict[str, Any] | None = None

    def index_problem(self) -> str | None:
        """Why the index cannot be searched, in one line; None when it can."""
        from .search import SearchError, check_index
        from .store import StoreError

        try:
            with self.lock:
                check_index(self.store, self.bundle)
        except (SearchError, StoreError) as exc:
            return str(exc)
        return None

    def search(self, typed: str, limit: int) -> dict[str, Any]:
        typed = " ".join(typed.split())
        if len(typed) > MAX_QUERY_CHARS:
            raise ApiError(
                400,
                f"the query is too long ({len(typed)} characters, "
                f"at most {MAX_QUERY_CHARS})",
            )
        if not typed:
            raise ApiError(
                400, 'type a description, e.g. "calm piano" or "jazz without vocals"'
            )
        text, terms = split_query(typed, self.fields)
        if not text:
            raise ApiError(
                400,
                "say what to look for before the beets query, e.g. "
                f'"calm piano {" ".join(terms)}"',
            )
        ranked, explanation, note, spelt = self._locked(
            lambda: _ranked(self, text, terms, limit)
        )
        answer = self._answer(ranked, explanation, spelt)
        if not answer["results"] and note:
            answer["note"] = note
        return answer

    def similar(self, item_id: int, limit: int) -> dict[str, Any]:
        item = self._item(item_id)
        ranked, explanation, _note, _spelt = self._locked(
            lambda: _ranked(self, None, [], limit, like=item_id)
        )
        label = track_label(item_artist(item), item.title, item.path, " – ")
        answer = self._answer(ranked, f"tracks that sound like {label}\n{explanation}")
        # The page names the track from here when the view is loaded from
        # its address (?like=ID).
        answer["track"] = label
        return answer

    def audio_path(self, item_id: int) -> str:
        """The file of a library item: the only files the server sends."""
        import os

        path = item_path(self.lib, self._item(item_id))
        if not os.path.isfile(path):
            raise ApiError(404, f"the file of item {item_id} is missing")
        return path

    def map(self) -> dict[str, Any]:
        """The whole indexed library's map, computed once per server run
        (searches wait only while it reads the library, not while it is
        laid out)."""
        with self._map_lock:
            if self._map is None:
                tracks, vectors = self._locked(
                    lambda: library_points(self.lib, self.store, self.bundle)
                )
                try:
                    self._map = map_data(tracks, vectors, self.bundle.embed_text)
                except MapError as exc:
                    raise ApiError(400, str(exc)) from exc
            return self._map

    def _item(self, item_id: int) -> Any:
        item = self.lib.get_item(item_id) if 0 < item_id <= _MAX_ID else None
        if item is None:
            raise ApiError(404, f"no item with id {item_id} in the library")
        return item

    def _locked(self, run: Callable[[], Any]) -> Any:
        """Run with the lock held; the search's one-line errors become 400s."""
        from beets.dbcore.query import ParsingError

        from .search import SearchError
        from .store import StoreError

        try:
            with self.lock:
                return run()
        except (SearchError, StoreError, MapError) as exc:
            raise ApiError(400, str(exc)) from exc
        except ParsingError as exc:  # beets' InvalidQueryError among them
            raise ApiError(400, f"invalid query: {exc}") from exc
        except sqlite3.OperationalError as exc:
            raise ApiError(503, f"library database: {exc}; try again") from exc

    def _answer(
        self,
        ranked: Sequence[tuple[int, float]],
        explanation: str,
        spelt: Mapping[int, str] | None = None,
    ) -> dict[str, Any]:
        from beets.util import displayable_path

        results = []
        for item_id, score in ranked:
            item = self.lib.get_item(item_id)
            if item is None:  # removed since it was embedded
                continue
            results.append(
                {
                    "id": item_id,
                    "path": displayable_path(item_path(self.lib, item)),
                    "artist": item_artist(item),
                    "title": item.title,
                    "album": item.album,
                    "score": round(score, 4),
                    "explanation": explanation,
                }
            )
            if spelt and item_id in spelt:
                results[-1]["terms"] = spelt[item_id]
        return {"explanation": explanation, "results": results}


def _ranked(
    backend: Backend,
    text: str | None,
    terms: Sequence[str],
    limit: int,
    like: int | None = None,
) -> tuple[list[tuple[int, float]], str, str | None, dict[int, str]]:
    """(ranked (item id, score), explanation, why nothing was ranked, each
    ranked item's score spelt out term by term): the one place this module
    calls the search module, for a description or for the tracks that sound
    like item `like`, among the items the beets query terms match. The why,
    as `beet clap` says it (no track matches the beets query, or those that
    do failed to index or are not indexed yet), is None unless a beets query
    left nothing to rank; the terms are a description's only."""
    from . import search
    from .results import tracks_not_found

    candidates = search.matching_ids(backend.lib, list(terms)) if terms else None
    where = f"\nbeets query: {' '.join(terms)}" if terms else ""
    if like is not None:
        ranked = search.rank_similar(
            backend.store, backend.bundle, [like], limit, candidates
        )
        explanation = f"cosine to the track's vector{where}"
        spelt: dict[int, str] = {}
    else:
        query = backend.embed(text or "", BOX_EXAMPLE)
        ranked = search.rank_items(
            backend.store, backend.bundle, query, limit, candidates
        )
        explanation = query.explain() + where
        spelt = search.item_terms(backend.store, query, [i for i, _ in ranked])
    why = None
    if not ranked and candidates is not None:
        why = tracks_not_found(backend.lib, backend.store, list(terms), candidates)
    return ranked, explanation, why, spelt


def _limit(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_RESULTS:
        raise ApiError(400, f"n must be a whole number from 1 to {MAX_RESULTS}")
    return number


def create_app(backend: Backend, default_limit: int = 20) -> Flask:
    """The Flask app: the page, its static files and the JSON API."""
    import os

    from flask import Flask, Response, jsonify, request, send_file
    from werkzeug.exceptions import HTTPException

    app = Flask(__name__, static_folder=None)

    @app.get("/")
    def page() -> Response:
        return Response(static_text("index.html"), mimetype="text/html")

    @app.get("/static/<name>")
    def static_file(name: str) -> Response:
        if name not in STATIC_FILES:
            raise ApiError(404, "no such file")
        return Response(static_text(name), mimetype=STATIC_FILES[name])

    @app.get("/api/search")
    def api_search() -> Any:
        limit = _limit(request.args.get("n"), default_limit)
        return jsonify(backend.search(request.args.get("q", ""), limit))

    @app.get("/api/similar/<int:item_id>")
    def api_similar(item_id: int) -> Any:
        limit = _limit(request.args.get("n"), default_limit)
        return jsonify(backend.similar(item_id, limit))

    @app.get("/api/audio/<int:item_id>")
    def api_audio(item_id: int) -> Any:
        path = backend.audio_path(item_id)
        # conditional=True answers Range requests (206), so players can seek.
        return send_file(path, conditional=True, download_name=os.path.basename(path))

    @app.get("/api/map")
    def api_map() -> Any:
        return jsonify(backend.map())

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Any:
        return jsonify(error=str(exc)), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        message = {404: "not found"}.get(exc.code or 0, exc.name.lower())
        return jsonify(error=message), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        # One line for the page and the console, never a traceback.
        app.logger.error("clap-web: %s: %s", type(exc).__name__, exc)
        return jsonify(error=f"internal error: {type(exc).__name__}: {exc}"), 500

    return app


def _check_port(host: str, port: int) -> None:
    """WebError unless `host`:`port` can be listened on (checked before the
    server starts: werkzeug would print its own lines and exit)."""
    if not 0 <= port <= 65535:
        raise WebError(f"--port must be from 0 to 65535, not {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise WebError(f"cannot listen on {host!r}: no such host address") from exc
    probe = socket.socket(family, kind, proto)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = ": stop the other program or choose another --port"
        raise WebError(
            f"cannot listen on {host}:{port}: {reason.lower()}{hint}"
        ) from exc
    finally:
        probe.close()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(app: Flask, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve until interrupted (Ctrl+C), announcing the address once."""
    import logging

    from werkzeug.serving import make_server

    _check_port(host, port)
    # Request lines would drown the announcement; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        server = make_server(host, port, app, threaded=True)
    except (OSError, SystemExit) as exc:
        raise WebError(f"cannot listen on {host}:{port}: {exc}") from exc
    shown = f"[{host}]" if ":" in host else host
    announce(f"clap-web: http://{shown}:{server.server_port}/ (Ctrl+C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
