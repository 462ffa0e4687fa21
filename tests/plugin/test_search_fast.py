"""Filter queries resolved to ids without building beets objects."""

from __future__ import annotations

import pytest
from beets.library import Item, Library

from beetsplug.clap.search import matching_ids

QUERIES = [
    "year:1990..1999",
    "format:MP3",
    "artist:b",
    "-artist:b",
    "year:1995 , format:FLAC",
    "title:t1",
    "mood:calm",  # a flexible attribute
    "artpath::cover",  # an album field in an item query (joins albums)
    "path::/music/a",
    "^year:1990..2000 format:MP3",
]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Library:
    from beets import config

    config["create_backup_before_migrations"] = False
    root = tmp_path_factory.mktemp("lib")
    lib = Library(str(root / "library.db"), directory=str(root / "music"))
    for i in range(60):
        item = Item(
            path=f"/music/{'ab'[i % 2]}/{i}.flac".encode(),
            title=f"t{i}",
            artist="ab"[i % 3 == 0],
            year=1985 + i % 20,
            format=["MP3", "FLAC", "AAC"][i % 3],
        )
        if i % 4 == 0:
            item.mood = "calm"
        lib.add(item)
    for start in range(0, 60, 10):
        album = lib.add_album(list(lib.items(f"title:t{start}", None))[:1])
        if start % 20 == 0:
            album.artpath = f"/art/cover{start}.jpg".encode()
            album.store()
    return lib


@pytest.mark.parametrize("query", QUERIES)
def test_matching_ids_equal_beets_matching(lib: Library, query: str) -> None:
    expected = {item.id for item in lib.items(query)}
    assert matching_ids(lib, query) == expected
    assert matching_ids(lib, query.split()) == {
        item.id for item in lib.items(query.split())
    }


def test_matching_ids_for_albums_and_no_query(lib: Library) -> None:
    assert matching_ids(lib, None) is None
    assert matching_ids(lib, []) is None
    assert matching_ids(lib, "artpath::cover", albums=True) == {
        a.id for a in lib.albums("artpath::cover")
    }
    assert len(matching_ids(lib, "artpath::cover", albums=True)) == 3
    assert len(matching_ids(lib, "mood:calm")) == 15
