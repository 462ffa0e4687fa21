"""Smart playlists: atomic M3U files, config checks, clustering and cluster names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from queries_helpers import ROOT, audio_like, toy_embed_text, toy_word

from beetsplug.clap.clusters import (
    DESCRIPTORS,
    Descriptors,
    choose_k,
    cluster_embeddings,
    name_clusters,
)
from beetsplug.clap.m3u import (
    AUTO_PREFIX,
    Playlist,
    PlaylistEntry,
    remove_stale,
    slugify,
    write_m3u,
    write_playlists,
)
from beetsplug.clap.playlists import (
    PlaylistConfigError,
    automatic_playlists,
    prompt_playlists,
    update_playlists,
    validate_playlists,
)
from beetsplug.clap.query import parse_query
from beetsplug.clap.scoring import combine_scores

# --------------------------------------------------------------------------
# M3U files
# --------------------------------------------------------------------------


@pytest.fixture
def music(tmp_path: Path) -> list[Path]:
    """Three real files in an artist/album tree."""
    files = [
        tmp_path / "music" / "Miles Davis" / "Kind of Blue" / "01 So What.flac",
        tmp_path / "music" / "Brian Eno" / "Music for Airports" / "1-1.flac",
        tmp_path / "music" / "Björk" / "Homogenic" / "02 Hunter.mp3",
    ]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"fLaC")
    return files


def _entries(files: list[Path]) -> list[PlaylistEntry]:
    return [
        PlaylistEntry(os.fsencode(files[0]), 562.4, "Miles Davis", "So What"),
        PlaylistEntry(str(files[1]), 1048.0, "Brian Eno", "1/1"),
        PlaylistEntry(files[2], None, "Björk", "Hunter"),
    ]


def test_m3u_paths_are_relative_with_forward_slashes(
    tmp_path: Path, music: list[Path]
) -> None:
    target = tmp_path / "playlists" / "calm.m3u"
    target.parent.mkdir()
    count = write_m3u(
        target, _entries(music), extended=False, relative_to=tmp_path / "playlists"
    )
    assert count == 3
    assert target.read_bytes().decode().splitlines() == [
        "../music/Miles Davis/Kind of Blue/01 So What.flac",
        "../music/Brian Eno/Music for Airports/1-1.flac",
        "../music/Björk/Homogenic/02 Hunter.mp3",
    ]
    # Every line resolves to the real file from the playlist's folder.
    for line, f in zip(target.read_text().splitlines(), music, strict=True):
        assert (target.parent / line).resolve() == f.resolve()


def test_m3u_absolute_paths_keep_their_bytes(tmp_path: Path) -> None:
    odd = os.fsencode(tmp_path) + b"/caf\xe9 latin1.mp3"  # not valid UTF-8
    target = tmp_path / "raw.m3u"
    write_m3u(
        target, [(odd, 10, "a", "b")], extended=False, relative_to=None, prefix=""
    )
    assert target.read_bytes() == odd + b"\n"


def test_m3u_prefix_is_prepended(tmp_path: Path, music: list[Path]) -> None:
    target = tmp_path / "url.m3u"
    write_m3u(
        target,
        _entries(music)[:1],
        extended=False,
        relative_to=tmp_path / "music",
        prefix="http://nas/",
    )
    assert target.read_text() == "http://nas/Miles Davis/Kind of Blue/01 So What.flac\n"


def test_extended_m3u_matches_beets_smartplaylist(
    tmp_path: Path, music: list[Path]
) -> None:
    """Byte for byte what beets' smartplaylist writes for the same item and URI."""
    from beets.library import Item
    from beetsplug.smartplaylist import PlaylistItem

    item = Item(
        path=os.fsencode(music[0]), artist="Miles Davis", title="So What", length=562.4
    )
    uri = os.path.relpath(item.path, os.fsencode(tmp_path))
    expected = b"#EXTM3U\n" + PlaylistItem(item, uri).get_comment(True, [])
    target = tmp_path / "ext.m3u"
    write_m3u(
        target,
        [(item.path, item.length, item.artist, item.title)],
        extended=True,
        relative_to=tmp_path,
    )
    assert target.read_bytes() == expected


def test_extinf_unknown_length_and_newlines(tmp_path: Path, music: list[Path]) -> None:
    target = tmp_path / "ext.m3u"
    write_m3u(
        target,
        [
            PlaylistEntry(music[2], None, "Björk", "Hunter\r\n(live)"),
            # Untagged: named by the file, as everywhere a track is named.
            PlaylistEntry(music[2], float("nan"), "", ""),
            PlaylistEntry(music[2], 1.0, "Björk", ""),
        ],
        extended=True,
        relative_to=tmp_path,
    )
    assert target.read_text(encoding="utf-8").splitlines() == [
        "#EXTM3U",
        "#EXTINF:-1,Björk - Hunter (live)",
        "music/Björk/Homogenic/02 Hunter.mp3",
        "#EXTINF:-1,02 Hunter.mp3",
        "music/Björk/Homogenic/02 Hunter.mp3",
        "#EXTINF:1,Björk - 02 Hunter.mp3",
        "music/Björk/Homogenic/02 Hunter.mp3",
    ]


def test_exception_mid_write_leaves_the_old_playlist(
    tmp_path: Path, music: list[Path]
) -> None:
    target = tmp_path / "pl" / "calm.m3u"
    target.parent.mkdir()
    write_m3u(target, _entries(music), extended=True, relative_to=tmp_path)
    before = target.read_bytes()

    def failing():
        yield _entries(music)[0]
        yield _entries(music)[1]
        raise RuntimeError("library went away")

    with pytest.raises(RuntimeError, match="library went away"):
        write_m3u(target, failing(), extended=True, relative_to=tmp_path)
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "calm.m3u"
    ]  # no temp left


def test_killed_process_mid_write_leaves_the_old_playlist(tmp_path: Path) -> None:
    """A real crash (SIGKILL) half way: the old playlist is still whole."""
    target = tmp_path / "big.m3u"
    target.write_text("old-1.mp3\nold-2.mp3\n")
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from beetsplug.clap.m3u import write_m3u

        def entries():
            for i in range(100000):
                if i == 50000:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield (f"/music/track-{{i}}.mp3", 1.0, "a", "b")

        write_m3u({str(target)!r}, entries(), extended=True, relative_to=None)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=False
    )
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "old-1.mp3\nold-2.mp3\n"


def test_file_modes(tmp_path: Path, music: list[Path]) -> None:
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.m3u"
        write_m3u(fresh, _entries(music), extended=False, relative_to=None)
        assert fresh.stat().st_mode & 0o777 == 0o644  # readable by a media server
        private = tmp_path / "private.m3u"
        private.write_text("x\n")
        private.chmod(0o600)
        write_m3u(private, _entries(music), extended=False, relative_to=None)
        assert private.stat().st_mode & 0o777 == 0o600  # the user's choice is kept
    finally:
        os.umask(old)


def test_write_playlists_pretend_and_missing_items(
    tmp_path: Path, music: list[Path]
) -> None:
    table = dict(enumerate(_entries(music), start=1))
    playlists = [Playlist("Calm", "Calm.m3u", [3, 99, 1], "prompt", "calm")]
    out = tmp_path / "pl"
    planned = write_playlists(playlists, out, lambda ids: table, pretend=True)
    assert planned == [(out / "Calm.m3u", 2)]
    assert not out.exists()
    written = write_playlists(playlists, out, lambda ids: table, relative_to=tmp_path)
    assert written == planned
    assert (out / "Calm.m3u").read_text().splitlines() == [
        "music/Björk/Homogenic/02 Hunter.mp3",
        "music/Miles Davis/Kind of Blue/01 So What.flac",
    ]


def test_unwritable_playlist_folder_is_a_one_line_error(
    tmp_path: Path, music: list[Path]
) -> None:
    from beetsplug.clap.m3u import PlaylistError, PlaylistWriteError

    not_a_folder = tmp_path / "playlists"
    not_a_folder.write_text("I am a file\n")
    playlists = [Playlist("Calm", "Calm.m3u", [1], "prompt", "calm")]
    with pytest.raises(PlaylistWriteError) as info:
        write_playlists(
            playlists, not_a_folder, lambda ids: dict(enumerate(_entries(music)))
        )
    # The folder is named as the problem, not the first playlist for it.
    assert (
        str(info.value) == f"cannot create playlist folder {not_a_folder}: File exists"
    )
    assert isinstance(info.value, PlaylistError)
    assert isinstance(PlaylistConfigError("x"), PlaylistError)
    assert not_a_folder.read_text() == "I am a file\n"


def test_remove_stale_only_touches_automatic_playlists(tmp_path: Path) -> None:
    for name in (
        f"{AUTO_PREFIX}jazz-piano.m3u",
        f"{AUTO_PREFIX}old.m3u",
        "mine.m3u",
        f"{AUTO_PREFIX}notes.txt",
    ):
        (tmp_path / name).write_text("x\n")
    removed = remove_stale(tmp_path, {f"{AUTO_PREFIX}jazz-piano.m3u"})
    assert removed == [tmp_path / f"{AUTO_PREFIX}old.m3u"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{AUTO_PREFIX}jazz-piano.m3u",
        f"{AUTO_PREFIX}notes.txt",
        "mine.m3u",
    ]
    assert remove_stale(tmp_path / "missing", set()) == []


# --------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------


def test_validate_playlists_defaults() -> None:
    specs = validate_playlists(
        [
            {"name": "Calm piano", "query": " calm piano, no vocals "},
            {
                "name": "90s.m3u",
                "query": "rock",
                "filter": "year:1990..1999",
                "size": 5,
            },
            {"name": "a/b", "query": "jazz", "filter": ""},
        ],
        default_size=40,
    )
    assert [tuple(s) for s in specs] == [
        ("Calm piano", "calm piano, no vocals", None, 40, "Calm piano.m3u"),
        ("90s.m3u", "rock", "year:1990..1999", 5, "90s.m3u"),
        ("a/b", "jazz", None, 40, "a_b.m3u"),
    ]
    assert validate_playlists(None) == []


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            "calm",
            "clap.playlists must be a list of playlists (each a mapping with name "
            "and query), not 'calm'",
        ),
        (
            {"name": "x"},
            "clap.playlists must be a list of playlists (each a mapping with name "
            "and query), not a mapping (start each playlist with `- name:`)",
        ),
        (
            ["calm"],
            "clap.playlists[0] must be a playlist (a mapping with name and query), "
            "not 'calm'",
        ),
        (
            [["calm"]],
            "clap.playlists[0] must be a playlist (a mapping with name and query), "
            "not a list",
        ),
        ([{"query": "calm"}], "clap.playlists[0]: missing 'name'"),
        (
            [{"name": "", "query": "calm"}],
            "clap.playlists[0]: 'name' must be a non-empty string, not ''",
        ),
        (
            [{"name": "A", "query": "x"}, {"name": "B"}],
            "clap.playlists[1] (B): missing 'query'",
        ),
        (
            [{"name": "B", "query": 3}],
            "clap.playlists[0] (B): 'query' must be a non-empty string, not 3",
        ),
        (
            [{"name": "B", "query": "x", "size": 0}],
            "clap.playlists[0] (B): 'size' must be a whole number >= 1, not 0",
        ),
        (
            [{"name": "B", "query": "x", "size": "ten"}],
            "clap.playlists[0] (B): 'size' must be a whole number >= 1, not 'ten'",
        ),
        (
            [{"name": "B", "query": "x", "size": True}],
            "'size' must be a whole number >= 1, not True",
        ),
        (
            [{"name": "B", "query": "x", "filter": ["a"]}],
            "clap.playlists[0] (B): 'filter' must be a beets query string, not ['a']",
        ),
        (
            [{"name": "B", "query": "x", "quary": "y"}],
            "clap.playlists[0]: unknown key 'quary' (valid: name, query, filter, size)",
        ),
        (
            [{"name": "..", "query": "x"}],
            "clap.playlists[0] (..): 'name' is not usable as a file name",
        ),
        (
            [{"name": "Jazz", "query": "x"}, {"name": "Jazz.m3u", "query": "y"}],
            "clap.playlists[1] (Jazz.m3u): 'Jazz' already writes Jazz.m3u",
        ),
    ],
)
def test_validate_playlists_errors(entries, message: str) -> None:
    with pytest.raises(PlaylistConfigError) as info:
        validate_playlists(entries)
    assert str(info.value) == message or message in str(info.value)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------
# Prompt playlists on a real beets library
# --------------------------------------------------------------------------


def test_prompt_playlists_with_a_real_library(tmp_path: Path) -> None:
    from beets.library import Item, Library

    lib = Library(str(tmp_path / "library.db"), str(tmp_path / "music"))
    tracks = [
        # (title, year, words describing the audio)
        ("Vocal jazz", 1961, {"jazz": 1, "piano": 1, "vocals": 1}),
        ("Piano trio", 1962, {"jazz": 1, "piano": 1}),
        ("Solo piano", 1995, {"calm": 1, "piano": 1}),
        ("Sung ballad", 1996, {"calm": 1, "piano": 1, "vocals": 1.2}),
        ("Rock song", 1994, {"rock": 1, "guitar": 1, "vocals": 1, "drums": 1}),
    ]
    vectors = {}
    for n, (title, year, words) in enumerate(tracks):
        path = tmp_path / "music" / f"{n:02d} {title}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"fLaC")
        item = Item(
            path=os.fsencode(path), title=title, artist="X", year=year, length=60.0 + n
        )
        lib.add(item)
        vectors[item.id] = audio_like(words, 1, noise=0.0, seed=n)[0]

    calls = []

    def rank(
        query: str, beets_filter: str | None, limit: int
    ) -> list[tuple[int, float]]:
        """The search as the plugin does it: parsed query, penalty, beets filter."""
        calls.append((query, beets_filter, limit))
        ids = [
            item.id
            for item in (lib.items(beets_filter) if beets_filter else lib.items())
        ]
        parsed = parse_query(query)
        texts = toy_embed_text([query, *parsed.negated])
        mat = np.stack([vectors[i] for i in ids])
        negated = texts[1:] @ mat.T if parsed.negated else None
        scores = combine_scores(mat @ texts[0], negated, 0.7)
        return sorted(zip(ids, scores.tolist(), strict=True), key=lambda p: -p[1])[
            :limit
        ]

    config = [
        {"name": "Calm piano", "query": "calm piano, no vocals", "size": 2},
        {"name": "90s", "query": "piano", "filter": "year:1990..1999"},
    ]
    playlists = prompt_playlists(config, rank, default_size=10)
    titles = {item.id: item.title for item in lib.items()}
    assert [(p.name, p.filename, p.kind, p.query) for p in playlists] == [
        ("Calm piano", "Calm piano.m3u", "prompt", "calm piano, no vocals"),
        ("90s", "90s.m3u", "prompt", "piano"),
    ]
    assert [titles[i] for i in playlists[0].item_ids] == ["Solo piano", "Piano trio"]
    assert [titles[i] for i in playlists[1].item_ids][:2] == [
        "Solo piano",
        "Sung ballad",
    ]
    assert {titles[i] for i in playlists[1].item_ids} == {
        "Solo piano",
        "Sung ballad",
        "Rock song",
    }
    assert calls == [
        ("calm piano, no vocals", None, 2),
        ("piano", "year:1990..1999", 10),
    ]

    def entry_for(item_id: int) -> PlaylistEntry | None:
        item = lib.get_item(item_id)
        return item and PlaylistEntry(item.path, item.length, item.artist, item.title)

    out = tmp_path / "playlists"
    write_playlists(
        playlists,
        out,
        lambda ids: {i: e for i in ids if (e := entry_for(i))},
        extended=True,
        relative_to=out,
    )
    assert (out / "Calm piano.m3u").read_text().splitlines() == [
        "#EXTM3U",
        "#EXTINF:62,X - Solo piano",
        "../music/02 Solo piano.flac",
        "#EXTINF:61,X - Piano trio",
        "../music/01 Piano trio.flac",
    ]


def test_prompt_playlists_validate_before_searching() -> None:
    calls = []
    with pytest.raises(
        PlaylistConfigError, match=r"clap.playlists\[1\] \(B\): missing 'query'"
    ):
        prompt_playlists(
            [{"name": "A", "query": "x"}, {"name": "B"}],
            lambda q, f, n: calls.append(q) or [],
        )
    assert calls == []


# --------------------------------------------------------------------------
# Clustering
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "k"), [(1, 1), (2, 2), (10, 2), (50, 5), (100, 7), (1000, 22), (100000, 30)]
)
def test_choose_k(n: int, k: int) -> None:
    assert choose_k(n) == k


def test_choose_k_rejects_empty() -> None:
    with pytest.raises(ValueError, match="cannot cluster an empty library"):
        choose_k(0)


def _blobs(
    sizes: list[int], seed: int = 0, noise: float = 0.6
) -> tuple[np.ndarray, np.ndarray]:
    # Every blob says whether it has vocals and drums: a cluster the model
    # knows nothing about either way could be named "no vocals" by chance.
    words = [
        {"jazz": 1, "piano": 1, "vocals": 0.5, "drums": 0.5},
        {"ambient": 1, "synth": 1, "vocals": -0.8, "drums": 0.5},
        {"rock": 1, "guitar": 1, "vocals": 0.5, "drums": 0.5},
        {"classical": 1, "strings": 1, "vocals": 0.5, "drums": -0.8},
    ]
    parts = [
        audio_like(words[b], size, noise, seed + b) for b, size in enumerate(sizes)
    ]
    truth = np.concatenate([np.full(size, b) for b, size in enumerate(sizes)])
    return np.concatenate(parts), truth


def test_clusters_recover_blobs_deterministically() -> None:
    x, truth = _blobs([40, 25, 15])
    labels, centres = cluster_embeddings(x, 3, seed=0)
    # Exactly the true partition, numbered by size.
    np.testing.assert_array_equal(labels, truth)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, rtol=1e-5)
    assert centres.dtype == np.float32
    again = cluster_embeddings(x, 3, seed=0)
    np.testing.assert_array_equal(again[0], labels)
    np.testing.assert_array_equal(again[1], centres)
    # Another seed finds the same clusters with the same canonical numbering.
    np.testing.assert_array_equal(cluster_embeddings(x, 3, seed=5)[0], labels)


def test_cluster_k_from_library_size() -> None:
    x, _ = _blobs([30, 30, 30, 30])  # 120 tracks -> round(sqrt(60)) = 8 clusters
    labels, centres = cluster_embeddings(x, None)
    assert centres.shape == (8, x.shape[1])
    assert set(labels.tolist()) == set(range(8))
    sizes = np.bincount(labels)
    assert (np.diff(sizes) <= 0).all()  # largest first


def test_cluster_k_is_capped_by_distinct_vectors() -> None:
    x = np.repeat(np.eye(4, 8, dtype=np.float32)[:2], [3, 2], axis=0)
    labels, centres = cluster_embeddings(x, 4)
    assert labels.tolist() == [0, 0, 0, 1, 1]
    assert centres.shape == (2, 8)
    labels, centres = cluster_embeddings(x[:1] * 3, 5)  # one vector, not normalised
    assert labels.tolist() == [0]
    np.testing.assert_allclose(centres, x[:1])


@pytest.mark.parametrize(
    ("vectors", "k", "message"),
    [
        (np.zeros((0, 4)), None, "expected a non-empty"),
        (np.zeros(4), None, "expected a non-empty"),
        (np.array([[np.nan, 1.0]]), None, "vectors contain NaN or infinity"),
        (np.eye(3), 0, "number of clusters must be >= 1, not 0"),
    ],
)
def test_cluster_rejects_bad_input(vectors, k, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cluster_embeddings(vectors, k)


# --------------------------------------------------------------------------
# Naming
# --------------------------------------------------------------------------


def _centre(words: dict[str, float]) -> np.ndarray:
    v = sum(w * toy_word(word) for word, w in words.items())
    return v / np.linalg.norm(v)


def test_names_describe_the_centres(embed_text) -> None:
    centres = np.stack(
        [
            _centre({"jazz": 1, "piano": 1, "vocals": 0.5, "drums": 0.5}),
            _centre({"ambient": 1, "synth": 1, "vocals": -1.5, "drums": 0.5}),
            _centre(
                {"rock": 1, "electric": 1, "guitar": 1, "vocals": 0.5, "drums": -1.5}
            ),
            _centre({"melancholic": 1.2, "cello": 1, "vocals": 0.5, "drums": 0.5}),
        ]
    )
    assert name_clusters(centres, embed_text, DESCRIPTORS) == [
        "jazz piano",
        "ambient synth, no vocals",
        "rock electric guitar, no drums",
        "melancholic cello",
    ]


def test_names_are_unique(embed_text) -> None:
    twins = np.stack(
        [
            _centre({"jazz": 1, "piano": 1, "calm": 0.3}),
            _centre({"jazz": 1, "piano": 1, "calm": 0.3, "bass": 0.01}),
            _centre({"jazz": 1, "piano": 1, "calm": 0.3, "bass": 0.02}),
        ]
    )
    names = name_clusters(twins, embed_text, DESCRIPTORS)
    assert len(set(names)) == 3
    assert len({slugify(n) for n in names}) == 3
    assert all("piano" in n for n in names)


def test_identical_centres_get_numbered_names(embed_text) -> None:
    same = np.stack([_centre({"jazz": 1, "piano": 1, "vocals": 0.5, "drums": 0.5})] * 6)
    names = name_clusters(same, embed_text, DESCRIPTORS)
    assert len({slugify(n) for n in names}) == 6
    assert names[0] == "jazz piano"
    assert names[-1] == "jazz piano 3"  # four alternatives, then numbers


def test_naming_checks_the_text_encoder(embed_text) -> None:
    centres = np.stack([_centre({"jazz": 1})])
    with pytest.raises(
        ValueError, match=r"embed_text returned shape \(2, 256\) for 60 texts"
    ):
        name_clusters(centres, lambda texts: embed_text(texts[:2]), DESCRIPTORS)
    with pytest.raises(
        ValueError, match="text embeddings have 256 dimensions, centres 8"
    ):
        name_clusters(np.eye(1, 8), embed_text, DESCRIPTORS)
    assert name_clusters(np.zeros((0, 8)), embed_text, DESCRIPTORS) == []


def test_absence_is_judged_track_by_track(embed_text) -> None:
    """ ", no drums" needs four in five of the cluster's tracks to sound
    without drums: the centre leaning that way is not enough."""
    without = _centre({"rock": 1, "guitar": 1, "drums": -1.5})
    with_drums = _centre({"rock": 1, "guitar": 1, "drums": 1.5})
    centre = _centre({"rock": 1, "guitar": 1, "drums": -0.5})[None]
    assert name_clusters(centre, embed_text, DESCRIPTORS) == ["rock guitar, no drums"]
    for lacking, named in ((4, "rock guitar, no drums"), (3, "rock guitar")):
        members = np.stack([without] * lacking + [with_drums] * (5 - lacking))
        names = name_clusters(centre, embed_text, DESCRIPTORS, members=[members])
        assert names == [named], lacking
    # Two parts missing: the one more of the tracks lack comes first.
    both = _centre({"rock": 1, "guitar": 1, "drums": -1.5, "vocals": -1.5})
    drums_only = _centre({"rock": 1, "guitar": 1, "drums": -1.5, "vocals": 1.5})
    members = np.stack([both] * 4 + [drums_only])
    names = name_clusters(centre, embed_text, DESCRIPTORS, members=[members])
    assert names == ["rock guitar, no drums"]
    members = np.stack([both] * 5)
    assert name_clusters(centre, embed_text, DESCRIPTORS, members=[members])[0] in (
        "rock guitar, no drums",
        "rock guitar, no vocals",
    )
    with pytest.raises(ValueError, match="2 member sets for 1 centres"):
        name_clusters(centre, embed_text, DESCRIPTORS, members=[members, members])
    with pytest.raises(ValueError, match=r"cluster 0's members must be \[n, 256\]"):
        name_clusters(centre, embed_text, DESCRIPTORS, members=[members[:, :3]])


def test_clusters_heard_as_speech_are_named_spoken_word(embed_text) -> None:
    """Half a cluster's tracks heard as speech (the search's SPEECH_MARGIN)
    name it "spoken word", numbered if there are more; fewer do not."""
    talk = _centre({"spoken": 1, "word": 1})
    talk_over_piano = _centre({"spoken": 1, "word": 1, "piano": 2})
    piano = _centre({"mellow": 1, "piano": 1, "vocals": 0.5, "drums": 0.5})
    centres = np.stack([talk, talk, piano])
    assert name_clusters(centres, embed_text, DESCRIPTORS) == [
        "spoken word",
        "spoken word 2",
        "mellow piano",
    ]
    for spoken, named in ((3, True), (2, False)):
        members = [np.stack([talk] * spoken + [talk_over_piano] * (6 - spoken))]
        (name,) = name_clusters(talk[None], embed_text, DESCRIPTORS, members=members)
        assert (name == "spoken word") is named, (spoken, name)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("R&B, no drums", "r-and-b-no-drums"),
        ("Björk — live!", "bjork-live"),
        ("???", "playlist"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


TAG_NAMES = [
    "techno",
    "electronic",
    "msd:80s",
    "vocals",
    "no vocals",
    "piano",
    "female vocal",
    "weird",
    "msd:Mellow",
]


def _tagged_library() -> tuple[np.ndarray, list[np.ndarray]]:
    """Tags of three 10-item clusters: electronic and 80s without vocals;
    mellow piano with female vocals; nothing that stands out."""
    profiles = [
        [0.3, 0.9, 0.7, 0.05, 0.8, 0.1, 0.02, 0.5, 0.2],
        [0.05, 0.1, 0.1, 0.9, 0.05, 0.8, 0.7, 0.5, 0.6],
        [0.1, 0.3, 0.2, 0.5, 0.3, 0.3, 0.3, 0.5, 0.3],
    ]
    rng = np.random.default_rng(0)
    tags = np.concatenate(
        [np.clip(p + rng.normal(0, 0.03, (10, len(p))), 0, 1) for p in profiles]
    )
    return tags.astype(np.float32), [np.arange(10) + 10 * c for c in range(3)]


def test_tags_read_what_stands_out_in_a_cluster() -> None:
    from beetsplug.clap.clusters import read_cluster_tags
    from beetsplug.clap.meanings import read_tag_meanings

    tags, members = _tagged_library()
    electronic, mellow, plain = read_cluster_tags(
        tags, members, read_tag_meanings(TAG_NAMES)
    )
    assert set(electronic.lead) == {"electronic", "techno"}
    assert electronic.era == ("80s",)
    # "vocals" and "female vocal" stand out in the mellow cluster, but a
    # presence part is named only when it is missing (the text tower's call).
    assert (mellow.lead, mellow.era, mellow.parts) == (("mellow",), (), ("piano",))
    # "weird" names nothing.
    assert (plain.lead, plain.era, plain.parts) == ((), (), ())
    with pytest.raises(ValueError, match=r"tags must be \[n_items, 9\]"):
        read_cluster_tags(tags[:, :3], members, read_tag_meanings(TAG_NAMES))


def test_tags_name_clusters_and_the_text_tower_fills_in(embed_text) -> None:
    """Tag evidence names what it singles out; the text tower names the
    rest, and says what the clusters lack (the tags' "vocals" does not
    outvote it either way)."""
    from beetsplug.clap.clusters import read_cluster_tags
    from beetsplug.clap.meanings import read_tag_meanings

    tags, members = _tagged_library()
    readings = read_cluster_tags(tags, members, read_tag_meanings(TAG_NAMES))
    centres = np.stack(
        [
            _centre({"ambient": 1, "synth": 1, "vocals": 1.5, "drums": 0.5}),
            _centre({"jazz": 1, "piano": 1, "vocals": -1.5, "drums": 0.5}),
            _centre({"rock": 1, "guitar": 1, "vocals": 0.5, "drums": -1.5}),
        ]
    )
    text_only = name_clusters(centres, embed_text, DESCRIPTORS)
    assert text_only == [
        "ambient synth",
        "jazz piano, no vocals",
        "rock guitar, no drums",
    ]
    named = name_clusters(centres, embed_text, DESCRIPTORS, readings)
    first, second, third = named
    assert first.startswith("80s ")
    assert "electronic" in first or "techno" in first
    assert "no vocals" not in first  # the tags' "no vocals" does not say it
    assert second == "mellow piano, no vocals"  # nor their "vocals" deny it
    assert third == "rock guitar, no drums"
    assert all(len(name.split()) <= 5 for name in named)


# --------------------------------------------------------------------------
# Automatic playlists
# --------------------------------------------------------------------------


def test_automatic_playlists(embed_text) -> None:
    x, truth = _blobs([30, 20, 12, 3])
    ids = [1000 + i for i in range(len(x))]
    playlists = automatic_playlists(ids, x, embed_text, k=4, min_size=5, size=15)
    assert [(p.name, p.filename, p.kind) for p in playlists] == [
        ("jazz piano", f"{AUTO_PREFIX}jazz-piano.m3u", "auto"),
        (
            "ambient synth, no vocals",
            f"{AUTO_PREFIX}ambient-synth-no-vocals.m3u",
            "auto",
        ),
        ("rock guitar", f"{AUTO_PREFIX}rock-guitar.m3u", "auto"),
    ]  # the 3-track cluster is skipped
    assert [len(p.item_ids) for p in playlists] == [15, 15, 12]
    for blob, playlist in enumerate(playlists):
        members = np.flatnonzero(truth == blob)
        assert {i - 1000 for i in playlist.item_ids} <= set(members.tolist())
        # Ordered by closeness to the centre of the cluster.
        centre = x[members].mean(axis=0)
        centre /= np.linalg.norm(centre)
        closeness = [float(x[i - 1000] @ centre) for i in playlist.item_ids]
        assert closeness == sorted(closeness, reverse=True)
    assert (
        automatic_playlists(ids, x, embed_text, k=4, min_size=5, size=15) == playlists
    )


def test_automatic_playlists_edge_cases(embed_text) -> None:
    assert automatic_playlists([], np.zeros((0, 8)), embed_text) == []
    x, _ = _blobs([4])
    assert automatic_playlists(list(range(4)), x, embed_text, min_size=5) == []
    with pytest.raises(ValueError, match="3 ids but 4 vectors"):
        automatic_playlists([1, 2, 3], x, embed_text)
    with pytest.raises(ValueError, match="min_size must be >= 1, not 0"):
        automatic_playlists(list(range(4)), x, embed_text, min_size=0)
    with pytest.raises(ValueError, match="4 ids but 3 rows of tags"):
        automatic_playlists(list(range(4)), x, embed_text, tags=np.zeros((3, 2)))


def test_default_descriptors_cover_the_trainer_vocabulary() -> None:
    """Cluster names use the words the model was trained on."""
    from trainer import vocab

    assert set(vocab.STYLES) <= set(DESCRIPTORS.genres)
    assert set(vocab.MOODS) <= set(DESCRIPTORS.moods)
    assert set(vocab.PRESENCE) == set(DESCRIPTORS.presence)
    assert set(DESCRIPTORS.instruments) & set(vocab.INSTRUMENTS) >= {
        "piano",
        "acoustic guitar",
        "strings",
        "saxophone",
        "choir",
    }


def test_automatic_playlists_with_a_real_onnx_bundle(tmp_path: Path) -> None:
    """Real audio through a real (tiny) ONNX bundle, named by its text tower."""
    from bundle_factory import build_tiny_bundle

    from beetsplug.clap.model import Bundle

    bundle = Bundle.load(build_tiny_bundle(tmp_path / "bundle", dim=8))
    rng = np.random.default_rng(0)
    t = np.arange(bundle.window_samples) / bundle.sample_rate
    windows = []
    for kind in ["low"] * 8 + ["high"] * 7 + ["noise"] * 6:
        if kind == "noise":
            wave = rng.uniform(-1, 1, t.size)
        else:
            freq = rng.uniform(100, 200) if kind == "low" else rng.uniform(2500, 3500)
            wave = np.sin(2 * np.pi * freq * t + rng.uniform(0, 6))
        windows.append(0.5 * wave)
    vectors, _tags = bundle.embed_audio(np.asarray(windows, np.float32))
    words = Descriptors(
        genres=("low", "high", "noise"),
        moods=("calm",),
        instruments=("bass", "treble", "hiss"),
        presence=(),
    )
    playlists = automatic_playlists(
        list(range(21)), vectors, bundle.embed_text, k=3, min_size=5, vocabulary=words
    )
    assert [(p.name, sorted(p.item_ids)) for p in playlists] == [
        ("low bass", list(range(8))),
        ("high treble", list(range(8, 15))),
        ("noise hiss", list(range(15, 21))),
    ]


# --------------------------------------------------------------------------
# update_playlists: the whole command without beets
# --------------------------------------------------------------------------


def _library_fixture(tmp_path: Path):
    x, _truth = _blobs([20, 12])
    ids = list(range(1, len(x) + 1))
    table = {
        i: PlaylistEntry(str(tmp_path / "music" / f"{i:03d}.flac"), 60.0, "A", f"t{i}")
        for i in ids
    }
    loads = []

    def library():
        loads.append(1)
        return ids, x

    def rank(query: str, beets_filter: str | None, limit: int):
        vec = toy_embed_text([query])[0]
        scores = x @ vec
        order = np.argsort(-scores, kind="stable")[:limit]
        return [(ids[i], float(scores[i])) for i in order]

    return table, library, rank, loads


def _update(tmp_path: Path, out: Path, prompts: list, **options):
    """update_playlists over the two-blob library, in two clusters."""
    table, library, rank, _ = _library_fixture(tmp_path)
    return update_playlists(
        out,
        lambda ids: table,
        prompts=prompts,
        rank=rank,
        library=library,
        embed_text=toy_embed_text,
        clusters=2,
        **options,
    )


def _folder_with_a_stale_list(tmp_path: Path) -> Path:
    out = tmp_path / "playlists"
    out.mkdir()
    (out / f"{AUTO_PREFIX}gone-cluster.m3u").write_text("old\n")
    return out


def test_update_playlists_writes_both_kinds_and_removes_stale(tmp_path: Path) -> None:
    out = _folder_with_a_stale_list(tmp_path)
    (out / "mine.m3u").write_text("mine\n")
    result = _update(
        tmp_path,
        out,
        [{"name": "Jazz", "query": "jazz piano", "size": 4}],
        min_size=5,
        auto_size=10,
        extended=True,
        relative_to=out,
    )
    assert [(p.name, path.name, n) for p, path, n in result.written] == [
        ("Jazz", "Jazz.m3u", 4),
        ("jazz piano", f"{AUTO_PREFIX}jazz-piano.m3u", 10),
        ("ambient synth, no vocals", f"{AUTO_PREFIX}ambient-synth-no-vocals.m3u", 10),
    ]
    assert result.removed == [out / f"{AUTO_PREFIX}gone-cluster.m3u"]
    assert sorted(p.name for p in out.iterdir()) == [
        "Jazz.m3u",
        f"{AUTO_PREFIX}ambient-synth-no-vocals.m3u",
        f"{AUTO_PREFIX}jazz-piano.m3u",
        "mine.m3u",
    ]
    lines = (out / "Jazz.m3u").read_text().splitlines()
    assert lines[0] == "#EXTM3U"
    ids = [int(line[len("../music/") :][:3]) for line in lines[2::2]]
    assert lines[1::2] == [f"#EXTINF:60,A - t{i}" for i in ids]
    assert len(ids) == 4
    assert all(1 <= i <= 20 for i in ids)  # the jazz prompt finds the jazz blob


def test_update_playlists_pretend_writes_and_removes_nothing(tmp_path: Path) -> None:
    out = _folder_with_a_stale_list(tmp_path)
    result = _update(tmp_path, out, [{"name": "Jazz", "query": "jazz"}], pretend=True)
    assert [path.name for _p, path, _n in result.written] == [
        "Jazz.m3u",
        f"{AUTO_PREFIX}jazz-piano.m3u",
        f"{AUTO_PREFIX}ambient-synth-no-vocals.m3u",
    ]
    assert result.removed == []
    assert sorted(p.name for p in out.iterdir()) == [f"{AUTO_PREFIX}gone-cluster.m3u"]


def test_update_playlists_prompt_wins_a_file_name_clash(tmp_path: Path) -> None:
    name = f"{AUTO_PREFIX}jazz-piano.m3u"
    result = _update(tmp_path, tmp_path / "pl", [{"name": name, "query": "rock"}])
    assert [(p.kind, path.name) for p, path, _n in result.written] == [
        ("prompt", name),
        ("auto", f"{AUTO_PREFIX}ambient-synth-no-vocals.m3u"),
    ]
    # Named like an automatic playlist, the prompt's file is no stale one.
    assert result.removed == []
    assert (tmp_path / "pl" / name).is_file()


def test_update_playlists_keeps_the_old_automatic_lists_when_none_is_made(
    tmp_path: Path,
) -> None:
    out = _folder_with_a_stale_list(tmp_path)
    result = _update(tmp_path, out, [], min_size=100)
    assert result == (
        [],
        [],
        [
            "no automatic playlist: the largest of the 2 clusters of 32 tracks "
            "has 20, fewer than cluster_min_size 100; the automatic playlist "
            f"already in {out} is kept"
        ],
    )
    assert [p.name for p in out.iterdir()] == [f"{AUTO_PREFIX}gone-cluster.m3u"]
    # A prompt playlist named like an automatic one is not counted as one.
    mine = f"{AUTO_PREFIX}mine"
    for _ in range(2):  # the second run finds the prompt's file there
        result = _update(tmp_path, out, [{"name": mine, "query": "jazz"}], min_size=100)
    assert sorted(p.name for p in out.iterdir()) == [
        f"{AUTO_PREFIX}gone-cluster.m3u",
        f"{mine}.m3u",
    ]
    assert result.warnings[-1].endswith(
        f"; the automatic playlist already in {out} is kept"
    )
    # The same in an empty folder, without the clause about kept lists.
    empty = tmp_path / "empty"
    assert _update(tmp_path, empty, [], min_size=100).warnings == [
        "no automatic playlist: the largest of the 2 clusters of 32 tracks "
        "has 20, fewer than cluster_min_size 100"
    ]


def test_update_playlists_checks_config_before_any_work(tmp_path: Path) -> None:
    table, library, rank, loads = _library_fixture(tmp_path)
    with pytest.raises(
        PlaylistConfigError, match=r"clap.playlists\[0\]: missing 'name'"
    ):
        update_playlists(
            tmp_path,
            lambda ids: table,
            prompts=[{"query": "x"}],
            rank=rank,
            library=library,
            embed_text=toy_embed_text,
        )
    assert loads == []
    with pytest.raises(ValueError, match="prompt playlists need a rank function"):
        update_playlists(
            tmp_path, lambda ids: table, prompts=[{"name": "a", "query": "x"}]
        )
    with pytest.raises(ValueError, match="automatic playlists need a text encoder"):
        update_playlists(tmp_path, lambda ids: table, library=library)
    assert update_playlists(tmp_path / "none", lambda ids: table) == ([], [], [])
    assert not (tmp_path / "none").exists()


def test_a_real_library_with_tags_names_clusters_by_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`beet clap-playlists` on a real library indexed by a bundle with tags:
    the low tones, whose "electronic" tag is high, are named so; the high
    tones are not. A name says ", no vocals" exactly when four in five of
    the cluster's stored vectors are closer to "no vocals" than to "vocals"
    under the bundle's own text tower (its tags do not decide it)."""
    sys.path.insert(0, str(ROOT / "tests" / "plugin"))
    from bundle_factory import build_tiny_bundle
    from clap_helpers import ClapEnv, write_audio

    from beetsplug.clap.model import Bundle
    from beetsplug.clap.store import Store

    # The tiny graph's tags answer the low band, the high band and a
    # constant: named here as a tagger would name them.
    bundle = build_tiny_bundle(
        tmp_path / "bundle",
        with_tags=True,
        tag_names=["electronic", "vocals", "weird"],
    )
    lists = tmp_path / "lists"
    with ClapEnv(capsys, bundle, playlist_dir=str(lists), cluster_min_size=2) as env:
        tones = {f"low{i}": str(110 + 15 * i) for i in range(4)}
        tones |= {f"high{i}": str(2600 + 200 * i) for i in range(4)}
        for title, hz in tones.items():
            env.add(write_audio(tmp_path / "music" / f"{title}.flac", hz), title=title)
        env.run("clap-index")
        printed = env.lines("clap-playlists", "--clusters", "2")
        titles = {item.id: item.title for item in env.lib.items()}
        with Store.open(env.lib.path) as store:
            ids, vectors = store.all_vectors(Bundle.load(bundle).identity)
        texts = Bundle.load(bundle).embed_text(
            ["vocals", "no vocals", "drums", "no drums"]
        )
    names = {line.split(":")[0].removeprefix("wrote ") for line in printed}
    low = next(name for name in names if "electronic" in name)
    (high,) = names - {low}
    assert "electronic" not in high, printed
    files = {p.name: p.read_text() for p in lists.glob("*.m3u")}
    for name, band in ((low, "low"), (high, "high")):
        rows = [n for n, i in enumerate(ids) if titles[int(i)].startswith(band)]
        lacking = vectors[rows] @ texts[1::2].T > vectors[rows] @ texts[0::2].T
        said = [
            p
            for p, share in zip(("vocals", "drums"), lacking.mean(axis=0), strict=True)
            if share >= 0.8
        ]
        if said:
            assert any(name.endswith(f", no {p}") for p in said), (name, lacking)
        else:
            assert ", no " not in name, (name, lacking)
    assert sorted(files) == sorted(f"{AUTO_PREFIX}{slugify(n)}.m3u" for n in names)
    assert all(
        "low" in line for line in files[f"{AUTO_PREFIX}{slugify(low)}.m3u"].split()
    )
