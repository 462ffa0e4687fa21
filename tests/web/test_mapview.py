"""The map's layout, regions, colours and HTML, without a browser."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from beetsplug.clap import mapview, web
from beetsplug.clap.mapview import MapError, Track


def _clustered(
    n: int, clusters: int, dim: int = 32, spread: float = 0.25, seed: int = 0
):
    """Unit vectors around `clusters` random centres, and each one's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    labels = rng.integers(clusters, size=n)
    x = centres[labels] + spread * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def _neighbours_kept(x: np.ndarray, y: np.ndarray, k: int = 10) -> float:
    """Mean share of each point's k nearest neighbours (cosine, in x) that
    are among its k nearest on the map."""
    high = np.argsort(-(x @ x.T), axis=1)[:, 1 : k + 1]
    d = ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    low = np.argsort(d, axis=1)[:, 1 : k + 1]
    return float(
        np.mean([len(set(a) & set(b)) / k for a, b in zip(high, low, strict=True)])
    )


def _embed(texts: list[str]) -> np.ndarray:
    """A text tower of fixed random directions per text (32-d)."""
    out = [np.random.default_rng(sum(map(ord, t))).standard_normal(32) for t in texts]
    out = np.array(out, np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_pca_is_deterministic_and_spreads_the_main_axis() -> None:
    x, _ = _clustered(300, 4)
    y = mapview.pca_layout(x)
    assert y.shape == (300, 2)
    np.testing.assert_array_equal(y, mapview.pca_layout(x.copy()))
    assert y[:, 0].var() >= y[:, 1].var()


def test_tsne_keeps_neighbours_together_better_than_pca() -> None:
    x, labels = _clustered(600, 12)
    tsne = mapview.tsne_layout(x, sample=400, iterations=250)
    pca = mapview.pca_layout(x)
    assert np.isfinite(tsne).all()
    assert _neighbours_kept(x, tsne) > _neighbours_kept(x, pca)
    # Placed points (outside the sample) land in their own cluster's part.
    centre = np.array([tsne[labels == c].mean(axis=0) for c in range(12)])
    nearest = ((tsne[:, None] - centre[None]) ** 2).sum(-1).argmin(axis=1)
    assert (nearest == labels).mean() > 0.9


def test_layout_scales_into_the_unit_square_for_any_size() -> None:
    for n in (1, 2, 3, 5, 40):
        x, _ = _clustered(n, 2)
        for method in mapview.LAYOUTS:
            y = mapview.layout(x, method)
            assert y.shape == (n, 2)
            assert (y >= 0).all()
            assert (y <= 1).all()
    with pytest.raises(
        MapError, match="unknown layout 'umap': choose one of tsne, pca"
    ):
        mapview.layout(x, "umap")


def test_regions_are_named_and_placed_among_their_tracks() -> None:
    x, _ = _clustered(200, 3)
    y = mapview.layout(x, "pca")
    labels, regions = mapview.regions(x, y, _embed)
    assert len(labels) == 200
    assert 2 <= len(regions) <= mapview.MAX_REGIONS
    assert sum(r.size for r in regions) == 200
    assert len({r.name for r in regions}) == len(regions)
    for c, region in enumerate(regions):
        mine = y[labels == c]
        assert mine[:, 0].min() <= region.x <= mine[:, 0].max()


def test_colours_by_category_and_by_number() -> None:
    index, legend, palette = mapview.colours(["rock", "pop", "rock", None, ""], "genre")
    assert [e["name"] for e in legend] == ["rock", "pop", "no value"]
    assert [palette[i] for i in index] == [
        palette[0],
        palette[1],
        palette[0],
        mapview.OTHER_COLOUR,
        mapview.OTHER_COLOUR,
    ]
    # beets keeps 0 for a number it does not know: no value, not the lowest.
    years = [0, *range(1960, 2020, 2)]
    index, legend, palette = mapview.colours(years, "year")
    assert [e["name"] for e in legend] == ["year 1960", "year 2018", "no value"]
    assert palette[index[0]] == mapview.OTHER_COLOUR
    assert index[1] == 0
    assert index[-1] == len(mapview.PALETTE) - 1


def _names(values: list, field: str) -> list[str]:
    return [e["name"] for e in mapview.colours(values, field)[1]]


def test_a_few_numbers_are_colours_in_ascending_order_and_0_is_no_value() -> None:
    """As with many numbers: 0 (beets' unknown year) is no value, not a
    year, and the values go low to high, not by how common they are."""
    years = [2008, 1999, 2008, 0, 2016, 2012, 2000, 2011, 1999, 1999]
    index, legend, palette = mapview.colours(years, "year")
    names = ["1999", "2000", "2008", "2011", "2012", "2016", "no value"]
    assert [e["name"] for e in legend] == names
    assert palette[index[3]] == mapview.OTHER_COLOUR
    assert [legend[i]["colour"] for i in index if i < 6] == [
        palette[i] for i in index if i < 6
    ]
    assert _names([120.5, 90.0, 0.0, None], "bpm") == ["90", "120.5", "no value"]


def test_the_grey_is_in_the_legend_only_when_a_track_is_grey() -> None:
    assert _names([3, 1, 2], "id") == ["1", "2", "3"]
    assert _names(list(range(1, 31)), "id") == ["id 1", "id 30"]
    assert _names([*range(1, 31), None], "id") == ["id 1", "id 30", "no value"]
    assert _names(["rock", "pop", "rock"], "genre") == ["rock", "pop"]
    many = [f"album {i}" for i in range(mapview.MAX_CATEGORIES + 2)]
    assert _names(many, "album")[-1] == "other"
    assert _names([*many, ""], "album")[-1] == "other / no value"


def test_colour_by_path_names_the_files_as_text(tmp_path) -> None:
    """A path is bytes in beets: the legend names the file as `beet ls`
    prints it, inside the library's folder or not; a flag is yes or no,
    not the number it is stored as."""
    from beets.library import Item, Library

    lib = Library(str(tmp_path / "library.db"), str(tmp_path / "music"))
    paths = [tmp_path / "music" / "a.ogg", tmp_path / "elsewhere" / "b.ogg"]
    ids = [
        lib.add(Item(title=p.stem, path=str(p).encode(), comp=i))
        for i, p in enumerate(paths)
    ]
    tracks = mapview.library_tracks(lib, ids, "path")
    assert [t.value for t in tracks] == [str(p) for p in paths]
    assert _names([t.value for t in tracks], "path") == [str(p) for p in paths]
    flags = [t.value for t in mapview.library_tracks(lib, ids, "comp")]
    assert flags == [False, True]
    assert _names(flags, "comp") == ["False", "True"]
    lib._close()


def test_html_is_self_contained_and_inert_to_odd_titles() -> None:
    tracks = [
        Track(i, "A </script><script>alert(1)</script>", f"t{i}") for i in range(6)
    ]
    x, _ = _clustered(6, 2)
    data = mapview.map_data(tracks, x, _embed, title="<b>lib</b>")
    page = mapview.map_html(data)
    assert "</script><script>alert" not in page
    assert "&lt;b&gt;lib&lt;/b&gt;" in page
    # Nothing is fetched: no src= or href= other than the empty icon.
    assert re.findall(r'(?:src|href)="([^"]*)"', page) == ["data:,"]
    embedded = re.search(
        r"clapMap\(document.getElementById\(\"clap-map\"\), (.*)\);", page
    )
    assert json.loads(embedded.group(1))["hover"][0].startswith("A </script>")


def test_map_data_refuses_an_empty_library() -> None:
    with pytest.raises(MapError, match="no indexed tracks to put on the map"):
        mapview.map_data([], np.zeros((0, 4), np.float32), _embed)


@pytest.mark.parametrize(
    ("typed", "text", "terms"),
    [
        ("jazz without vocals", "jazz without vocals", []),
        ("calm piano year:1990..1999", "calm piano", ["year:1990..1999"]),
        (
            '"rock: loud" ^genre:pop artist:"The Band"',
            '"rock: loud"',
            ["^genre:pop", "artist:The Band"],
        ),
        ("ambient mood:dark", "ambient mood:dark", []),  # not a field: words
        ('unbalanced "quote', 'unbalanced "quote', []),
        # no shell: apostrophes are letters, quotes keep words literal
        (
            "I can't stand drums and I don't want vocals year:1990..",
            "I can't stand drums and I don't want vocals",
            ["year:1990.."],
        ),
        ('"no vocals" live', '"no vocals" live', []),
        # a lone comma between query terms is beets' OR; any other is words
        (
            "calm piano year:1999 , artist:Feelings",
            "calm piano",
            ["year:1999", ",", "artist:Feelings"],
        ),
        ("ambient, no drums year:1990..", "ambient, no drums", ["year:1990.."]),
        ("ambient , no drums year:1990..", "ambient , no drums", ["year:1990.."]),
        ("calm year:1999 , piano", "calm , piano", ["year:1999"]),
        # a comma left at either end of the description is no part of it
        (
            "year:1999 , artist:x , calm",
            "calm",
            ["year:1999", ",", "artist:x"],
        ),
        ("calm , year:1999", "calm", ["year:1999"]),
        ('"year:1990" songs', '"year:1990" songs', []),
    ],
)
def test_the_search_box_splits_like_the_command_line(
    typed: str, text: str, terms: list[str]
) -> None:
    assert web.split_query(typed, {"year", "genre", "artist"}) == (text, terms)


def test_colour_by_the_old_name_of_a_list_field(tmp_path) -> None:
    """`--color genre` on a beets whose genres are a list: the first genre
    (as `genre:` still queries them); a name no field has is refused."""
    from beets.library import Item, Library

    from beetsplug.clap.search import list_fields

    lib = Library(str(tmp_path / "library.db"), str(tmp_path / "music"))
    ids = []
    for title, genres in (("a", ["rock", "pop"]), ("b", ["jazz"]), ("c", [])):
        item = Item(title=title, path=str(tmp_path / f"{title}.flac").encode())
        if "genre" in list_fields():
            item.genres = genres
        else:  # a beets before list fields
            item.genre = genres[0] if genres else ""
        ids.append(lib.add(item))
    tracks = mapview.library_tracks(lib, ids, "genre")
    assert [t.value for t in tracks] == ["rock", "jazz", tracks[2].value]
    assert not tracks[2].value
    with pytest.raises(MapError, match="no field 'genr'"):
        mapview.library_tracks(lib, ids, "genr")
    lib._close()
