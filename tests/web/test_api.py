"""clap-web's JSON API and clap-map, through real `beet` subprocesses."""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from beets.library import Library
from clap_helpers import beet_without, run_python
from web_helpers import (
    OUTSIDE,
    TRACKS,
    UNTAGGED,
    Server,
    beet,
    make_library,
    track_file,
)

# beets >= 2.14 stores paths inside the library's directory relative to it.
RELATIVE_PATHS = importlib.util.find_spec("beets.context") is not None


def _get(server: Server, path: str, **headers: str) -> tuple[int, dict, bytes]:
    """GET `path` exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _json(server: Server, path: str) -> tuple[int, Any]:
    status, headers, body = _get(server, path)
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)


def _items(library: Path) -> dict[int, Any]:
    lib = Library(str(library / "library.db"))
    try:
        return {item.id: item for item in lib.items()}
    finally:
        lib._close()


def test_search_returns_ranked_tracks_with_their_explanation(
    server: Server, library: Path
) -> None:
    status, body = _json(server, "/api/search?q=low%20bass%20without%20noise&n=3")
    assert status == 200
    results = body["results"]
    assert len(results) == 3
    assert set(results[0]) == {
        "id",
        "path",
        "artist",
        "title",
        "album",
        "score",
        "explanation",
        "terms",
    }
    # The three low tones of the library, best first.
    assert {r["title"] for r in results} == {"Deep One", "Deep Two", "Rumble"}
    assert [r["score"] for r in results] == sorted(
        (r["score"] for r in results), reverse=True
    )
    items = _items(library)
    for r in results:
        assert r["path"] == str(track_file(library, r["id"]))
        assert r["artist"] == items[r["id"]].artist
    assert "negated:     noise" in body["explanation"]
    assert results[0]["explanation"] == body["explanation"]
    # Each track's own score, term by term, as the ranking line adds it up.
    for r in results:
        assert r["terms"].startswith(f"{r['score']:.4f} = sim "), r["terms"]
        assert " - 0.5 * noise " in r["terms"]


def test_similar_tracks_have_no_terms(server: Server) -> None:
    status, body = _json(server, "/api/similar/1?n=2")
    assert status == 200
    assert body["results"]
    assert all("terms" not in r for r in body["results"])


def test_beets_query_terms_filter_as_on_the_command_line(server: Server) -> None:
    status, body = _json(server, "/api/search?q=low%20year:2000..2020%20%5Etitle:glare")
    assert status == 200
    titles = {r["title"] for r in body["results"]}
    # year 2000..2020 and not Glare: Rumble, Shine, Hiss and the untagged one.
    assert titles == {"Rumble", "Shine <b>", "Hiss", ""}
    assert body["results"][0]["title"] == "Rumble"
    assert body["explanation"].endswith("beets query: year:2000..2020 ^title:glare")


def test_a_lone_comma_between_beets_terms_is_or_as_on_the_command_line(
    server: Server,
) -> None:
    from urllib.parse import quote

    status, body = _json(
        server, "/api/search?q=" + quote("low year:1991 , title:Glare")
    )
    assert status == 200
    assert {r["title"] for r in body["results"]} == {"Deep One", "Glare"}
    assert body["explanation"].endswith("beets query: year:1991 , title:Glare")
    assert body["explanation"].startswith("query:       'low'\n")
    status, body = _json(
        server, "/api/search?q=" + quote("low year:1800 , title:nothingatall")
    )
    assert body["note"] == "no tracks match year:1800 , title:nothingatall"


def test_the_search_box_reads_apostrophes_and_quotes_as_typed(server: Server) -> None:
    """No shell between the box and the parser: "can't" keeps its negation,
    and double quotes keep words literal as in a description."""
    from urllib.parse import quote

    status, body = _json(server, "/api/search?q=" + quote("low, I can't stand noise"))
    assert status == 200
    assert "negated:     noise" in body["explanation"]
    status, body = _json(server, "/api/search?q=" + quote('"no noise" low'))
    assert status == 200
    assert "negated:     (none)" in body["explanation"]


def test_nothing_found_says_why(server: Server) -> None:
    """As `beet clap` says it: the beets query matches no track."""
    status, body = _json(server, "/api/search?q=low%20title:nothingatall")
    assert status == 200
    assert body["results"] == []
    assert body["note"] == "no tracks match title:nothingatall"
    status, body = _json(server, "/api/search?q=low")
    assert "note" not in body


def test_more_like_this_leaves_out_the_track_itself(server: Server) -> None:
    status, body = _json(server, "/api/similar/1?n=3")
    assert status == 200
    ids = [r["id"] for r in body["results"]]
    assert 1 not in ids
    assert body["results"][0]["title"] in {"Rumble", "Deep Two"}
    assert body["explanation"].startswith("tracks that sound like Bass Unit – Deep One")
    assert body["track"] == "Bass Unit – Deep One"  # the page's heading
    # A track without tags is named by its file, as on the page.
    _status, body = _json(server, f"/api/similar/{len(TRACKS)}?n=1")
    assert body["explanation"].startswith(f"tracks that sound like {UNTAGGED}\n")
    assert body["track"] == UNTAGGED


def test_files_inside_the_library_directory_are_found_on_every_thread(
    server: Server, library: Path
) -> None:
    """beets makes a path stored relative to the library's directory
    absolute only on the thread that opened the library; clap-web answers
    on threads of its own, in a process whose working folder is elsewhere."""
    conn = sqlite3.connect(library / "library.db")
    try:
        stored = dict(conn.execute("SELECT id, path FROM items").fetchall())
    finally:
        conn.close()
    if RELATIVE_PATHS:
        assert stored[1] == b"00.flac"
    assert stored[OUTSIDE] == str(track_file(library, OUTSIDE)).encode()
    for item_id in (1, OUTSIDE):
        status, _headers, body = _get(server, f"/api/audio/{item_id}")
        assert status == 200
        assert body == track_file(library, item_id).read_bytes()
    _status, found = _json(server, f"/api/search?q=noise&n={len(TRACKS)}")
    _status, similar = _json(server, "/api/similar/1?n=500")
    assert len(found["results"]) == len(TRACKS)
    assert len(similar["results"]) == len(TRACKS) - 1
    for result in found["results"] + similar["results"]:
        assert result["path"] == str(track_file(library, result["id"]))


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        (
            "/api/search",
            400,
            'type a description, e.g. "calm piano" or "jazz without vocals"',
        ),
        (
            "/api/search?q=%20%20",
            400,
            'type a description, e.g. "calm piano" or "jazz without vocals"',
        ),
        (
            "/api/search?q=jazz%20without",
            400,
            "'jazz without' ends with 'without' and names nothing to leave out: "
            'say what, e.g. search for "jazz without vocals"',
        ),
        (
            "/api/search?q=%3F%3F%3F!!",
            400,
            "nothing to search for in '???!!': describe the music in words, "
            'e.g. search for "calm piano"',
        ),
        (
            "/api/search?q=" + "la%20" * 600,
            400,
            "the query is too long (1799 characters, at most 1000)",
        ),
        (
            "/api/search?q=year:1990..1999",
            400,
            "say what to look for before the beets query, "
            'e.g. "calm piano year:1990..1999"',
        ),
        (
            "/api/search?q=low%20year:abc..",
            400,
            "invalid query: 'year:abc..': 'abc' is not an int or a float",
        ),
        ("/api/search?q=low&n=0", 400, "n must be a whole number from 1 to 500"),
        ("/api/search?q=low&n=many", 400, "n must be a whole number from 1 to 500"),
        ("/api/search?q=low&n=100000", 400, "n must be a whole number from 1 to 500"),
        ("/api/similar/999", 404, "no item with id 999 in the library"),
        ("/api/similar/0", 404, "no item with id 0 in the library"),
        ("/api/audio/999", 404, "no item with id 999 in the library"),
        (
            "/api/audio/" + "9" * 30,
            404,
            "no item with id " + "9" * 30 + " in the library",
        ),
        ("/api/similar/-1", 404, "not found"),
        ("/api/nothing", 404, "not found"),
    ],
)
def test_bad_requests_get_one_line_of_json(
    server: Server, path: str, status: int, error: str
) -> None:
    assert _json(server, path) == (status, {"error": error})


@pytest.mark.parametrize(
    "path",
    [
        "/api/audio/../../../../etc/passwd",
        "/api/audio/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/audio/1/../../library.db",
        "/api/audio/%2Fetc%2Fpasswd",
        "/api/audio/1%00",
        "/static/../web.py",
        "/static/..%2fweb.py",
        "/static/%2e%2e%2f%2e%2e%2fstore.py",
        "/static/index.html/../../mapview.py",
        "/../../../etc/passwd",
    ],
)
def test_no_request_names_a_file(server: Server, path: str) -> None:
    status, _headers, body = _get(server, path)
    assert status == 404
    assert json.loads(body) == {"error": "not found"}


def test_audio_is_the_library_file_with_ranges_for_seeking(
    server: Server, library: Path
) -> None:
    data = track_file(library, 4).read_bytes()
    status, headers, body = _get(server, "/api/audio/4")
    assert status == 200
    assert body == data
    assert headers["Accept-Ranges"] == "bytes"
    status, headers, body = _get(server, "/api/audio/4", Range="bytes=1000-1999")
    assert status == 206
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert body == data[1000:2000]


def test_static_files_are_the_packaged_ones(server: Server) -> None:
    from beetsplug.clap.mapview import static_text

    for name in ("map.js", "web.js", "web.css", "map.css"):
        status, _headers, body = _get(server, f"/static/{name}")
        assert status == 200
        assert body.decode() == static_text(name)
    status, headers, body = _get(server, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    # Everything the page loads comes from this server.
    page = body.decode()
    assert "http://" not in page
    assert "https://" not in page


def test_map_of_the_library(server: Server) -> None:
    status, body = _json(server, "/api/map")
    assert status == 200
    assert sorted(body["ids"]) == list(range(1, len(TRACKS) + 1))
    assert len(body["x"]) == len(body["y"]) == len(TRACKS)
    assert "Bass Unit – Deep One" in body["hover"]
    assert UNTAGGED in body["hover"]  # no title, no artist: the file's name
    assert body["regions"]
    assert all(r["name"] for r in body["regions"])


def test_a_library_without_an_index_says_so(tmp_path: Path, tiny_bundle: Path) -> None:
    beetsdir = make_library(tmp_path, tiny_bundle, index=False)
    running = Server(beetsdir)
    try:
        empty = "the clap index is empty: run `beet clap-index` first"
        assert _get(running, "/")[0] == 200
        assert _json(running, "/api/search?q=low") == (400, {"error": empty})
        assert _json(running, "/api/map") == (400, {"error": empty})
        assert _json(running, "/api/similar/1") == (400, {"error": empty})
        # A file gone from the disk is not looked for anywhere else.
        track_file(beetsdir, 2).unlink()
        assert _json(running, "/api/audio/2") == (
            404,
            {"error": "the file of item 2 is missing"},
        )
        assert _get(running, "/api/audio/1")[0] == 200
    finally:
        _out, err = running.stop()
    assert f"clap-web: {empty} (the page says so too)" in err
    assert "Traceback" not in err


def test_a_port_in_use_is_one_line(library: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = beet(library, "clap-web", "--port", str(port), timeout=60)
    assert done.returncode == 1
    assert done.stderr == (
        f"error: cannot listen on 127.0.0.1:{port}: address already in use: "
        "stop the other program or choose another --port\n"
    )


def test_a_port_out_of_range_is_one_line(library: Path) -> None:
    done = beet(library, "clap-web", "--port", "70000", timeout=60)
    assert done.returncode == 1
    assert done.stderr == "error: --port must be from 0 to 65535, not 70000\n"


def test_without_flask_clap_web_says_what_to_install(library: Path) -> None:
    done = beet_without(library, ("flask",), "clap-web", timeout=60)
    assert done.returncode == 1
    assert done.stderr == "error: clap-web needs Flask: pip install 'beets-clap[web]'\n"


def test_loading_the_plugin_imports_neither_flask_nor_selenium(library: Path) -> None:
    code = (
        "import sys\n"
        "import beets.plugins\n"
        "from beets import config\n"
        "config.read()\n"
        "beets.plugins.load_plugins()\n"
        "[p.commands() for p in beets.plugins.find_plugins()]\n"
        "print(*(m for m in ('flask', 'werkzeug', 'selenium') if m in sys.modules))\n"
    )
    done = run_python(library, code, check=True, timeout=60)
    assert done.stdout == "\n"


def test_clap_map_writes_one_self_contained_file(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    done = beet(library, "clap-map", "album:Lows", "-o", str(out), "--color", "year")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"clap-map: wrote {out} (3 tracks, 2 regions)\n"
    page = out.read_text()
    assert "http://" not in page
    assert "https://" not in page
    assert "Bass Unit – Deep One" in page


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["-o", "{tmp}/m.html", "--color", "genr"],
            "no field 'genr' in this library for --color: "
            "e.g. genre, year, artist, album, format, bpm",
        ),
        (
            ["-o", "{tmp}/m.html", "--layout", "umap"],
            "unknown layout 'umap': choose one of tsne, pca",
        ),
        (
            ["album:polka", "-o", "{tmp}/m.html"],
            "no tracks match album:polka",
        ),
        ([], "give the file to write: beet clap-map -o map.html"),
        (
            ["-o", "{tmp}/no/such/folder/m.html"],
            "cannot write {tmp}/no/such/folder/m.html: No such file or directory",
        ),
    ],
)
def test_clap_map_bad_input(
    library: Path, tmp_path: Path, args: list[str], error: str
) -> None:
    done = beet(library, "clap-map", *(a.format(tmp=tmp_path) for a in args))
    assert done.returncode == 1
    assert done.stderr == f"error: {error.format(tmp=tmp_path)}\n"
