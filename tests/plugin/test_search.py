"""`beet clap`, `clap-similar`, the `clap:` query and `$clap_score`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from beets.ui import UserError
from bundle_factory import build_tiny_bundle
from clap_helpers import ClapEnv

from beetsplug.clap import search
from beetsplug.clap.model import Bundle
from beetsplug.clap.store import STATE, VECTORS, Store

EMPTY_INDEX = r"^the clap index is empty: run `beet clap-index` first$"


def test_description_ranks_the_matching_tone_first(indexed: ClapEnv) -> None:
    assert indexed.lines("clap", "low", "-f", "$title")[:2] in (
        ["low", "low2"],
        ["low2", "low"],
    )
    assert indexed.lines("clap", "high", "-n", "1", "-f", "$title") == ["high"]
    assert indexed.lines("clap", "noise", "-n", "1", "-f", "$title") == ["noise"]
    assert indexed.lines("clap", "bright treble", "-n", "1", "-f", "$title") == ["high"]


def test_scores_are_sorted_and_shown(indexed: ClapEnv) -> None:
    lines = indexed.lines("clap", "high", "--score", "-f", "$title")
    scores = [float(line.split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    assert len(lines) == 5
    assert lines[0].endswith(" high")
    assert -1.0 <= scores[-1] < scores[0] <= 1.0


def test_clap_score_field_in_format(indexed: ClapEnv, tmp_path: Path) -> None:
    lines = indexed.lines("clap", "high", "-n", "2", "-f", "$clap_score|$title")
    first_score, first_title = lines[0].split("|")
    assert first_title == "high"
    assert 0.5 < float(first_score) <= 1.0
    assert float(lines[1].split("|")[0]) < float(first_score)
    # Four decimals whatever the value, so a column of scores lines up, and
    # the same score -s prints (three decimals).
    # (A path's ends fit it exactly: 1.0000, where round(score, 4) printed 1.0.)
    assert indexed.lines(
        "clap-path", "title::^low$", "title:high", "-n", "2", "-f", "$clap_score"
    ) == ["1.0000", "1.0000"]
    for command in (("clap", "high"), ("clap-similar", "title::^low$")):
        scored = indexed.lines(*command, "-s", "-f", "$clap_score")
        assert scored
        for line in scored:
            shown, field = line.split()
            assert re.fullmatch(r"-?[01]\.\d{4}", field), line
            assert float(field) == pytest.approx(float(shown), abs=6e-4)
    # Outside a search the field is empty, and nothing was stored on items.
    indexed.reload()
    assert indexed.lines("ls", "-f", "[$clap_score]$title", "title:high") == ["[]high"]
    assert indexed.sql("SELECT * FROM item_attributes WHERE key = 'clap_score'") == []
    # Nor is it a field of the library a map could be coloured by.
    drawn = tmp_path / "map.html"
    with pytest.raises(UserError) as info:
        indexed.run("clap-map", "-o", str(drawn), "--color", "clap_score")
    assert str(info.value) == (
        "no field 'clap_score' in this library for --color: "
        "e.g. genre, year, artist, album, format, bpm"
    )
    assert not drawn.exists()


def test_limit_and_beets_query_filter(indexed: ClapEnv) -> None:
    assert indexed.lines("clap", "low", "-n", "1", "-f", "$title") in (
        ["low"],
        ["low2"],
    )
    # The beets query restricts the candidates: the best "low" among these.
    assert (
        indexed.lines("clap", "low", "title::^(high|mid|noise)$", "-f", "$title")[0]
        != "high"
    )
    assert indexed.lines("clap", "low", "title:high", "-f", "$title") == ["high"]
    assert indexed.lines("clap", "low", "title:nothing-matches") == []
    with pytest.raises(UserError, match=r"^-n/--number must be at least 1$"):
        indexed.run("clap", "low", "-n", "0")


def test_albums_are_ranked_by_their_tracks_mean(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    low_album = [env.add(corpus[k], title=k, album="lows") for k in ("low", "low2")]
    mixed = [env.add(corpus[k], title=k, album="mixed") for k in ("high", "noise")]
    env.lib.add_album(low_album)
    env.lib.add_album(mixed)
    env.run("clap-index")
    lines = env.lines("clap", "low", "-a", "--score", "-f", "$album $clap_score")
    assert [line.split()[1] for line in lines] == ["lows", "mixed"]
    shown = float(lines[0].split()[0])
    # The album score is the mean of its tracks' scores.
    tracks = env.lines("clap", "low", "album:lows", "--score", "-f", "$title")
    assert shown == pytest.approx(
        np.mean([float(t.split()[0]) for t in tracks]), abs=2e-3
    )
    assert float(lines[0].split()[2]) == pytest.approx(shown, abs=2e-3)
    assert all(re.fullmatch(r"-?[01]\.\d{4}", line.split()[2]) for line in lines)
    assert env.lines("clap", "high", "-a", "album:lows", "-f", "$album") == ["lows"]


def test_clap_query_prefix_in_ls(indexed: ClapEnv) -> None:
    assert len(indexed.lines("ls", "clap:noise")) == 5  # query_top_k (50) > library
    indexed.reload(query_top_k=1)
    assert indexed.lines("ls", "-f", "$title", "clap:noise") == ["noise"]
    assert indexed.lines("ls", "-f", "$title", "clap:high tone") == ["high"]
    # Combined with ordinary query terms, and its score in the format.
    indexed.reload(query_top_k=2)
    assert indexed.lines("ls", "-f", "$title", "clap:low", "title:low2") == ["low2"]
    line = indexed.lines("ls", "-f", "$clap_score $title", "clap:high", "title:high")[0]
    assert float(line.split()[0]) > 0.5
    # beets lists the matches in its order; a sort on the score, as `clap`.
    assert indexed.lines("ls", "-f", "$title", "clap:noise", "clap_score-") == (
        indexed.lines("clap", "noise", "-n", "2", "-f", "$title")
    )


def test_clap_query_for_albums(env: ClapEnv, corpus: dict[str, Path]) -> None:
    env.lib.add_album(
        [env.add(corpus[k], title=k, album="lows") for k in ("low", "low2")]
    )
    env.lib.add_album(
        [env.add(corpus[k], title=k, album="rest") for k in ("mid", "noise")]
    )
    env.add(corpus["high"], title="high", album="")  # a singleton
    env.run("clap-index")
    # An album's $clap_score is its score as `clap -a` ranks it (the mean of
    # its tracks'), not empty.
    ranked = env.lines("clap", "-a", "low", "-f", "$clap_score $album")
    assert [line.split()[1] for line in ranked] == ["lows", "rest"]
    listed = env.lines("ls", "-a", "-f", "$clap_score $album", "clap:low")
    assert sorted(listed) == sorted(ranked)
    # A sort on the field lists them as `clap -a` ranks them.
    assert (
        env.lines("ls", "-a", "-f", "$clap_score $album", "clap:low", "clap_score-")
        == ranked
    )
    env.reload(query_top_k=1)
    assert env.lines("ls", "-a", "-f", "$clap_score $album", "clap:low") == ranked[:1]
    assert env.lines("ls", "-a", "-f", "$album", "clap:low") == ["lows"]
    assert env.lines("ls", "-a", "-f", "$album", "clap:noise") == ["rest"]
    # The best "high" track is a singleton: no album matches.
    assert env.lines("ls", "-a", "clap:high") == []


def test_clap_query_in_a_smart_playlist(indexed: ClapEnv, tmp_path: Path) -> None:
    indexed.unload_plugins()
    indexed.config["plugins"] = ["clap", "smartplaylist"]
    indexed.config["clap"]["query_top_k"] = 1
    indexed.config["smartplaylist"].set(
        {
            "playlist_dir": str(tmp_path / "lists"),
            "relative_to": str(tmp_path),
            "playlists": [{"name": "bright.m3u", "query": "clap:high"}],
        }
    )
    import beets.plugins

    beets.plugins.load_plugins()
    indexed.run("splupdate")
    listed = (tmp_path / "lists" / "bright.m3u").read_text().split()
    assert len(listed) == 1
    assert listed[0].endswith("high.flac")


def test_similar_excludes_seeds_and_finds_the_nearest(indexed: ClapEnv) -> None:
    lines = indexed.lines("clap-similar", "title::^low$", "-f", "$title")
    assert "low" not in lines
    assert lines[0] == "low2"
    assert len(lines) == 4
    scores = [
        float(s.split()[0]) for s in indexed.lines("clap-similar", "title:low", "-s")
    ]
    assert len(scores) == 3  # both low tones are seeds
    assert scores == sorted(scores, reverse=True)
    assert (
        indexed.lines("clap-similar", "title:high", "-n", "2", "-f", "$title")[0]
        != "high"
    )
    with pytest.raises(
        UserError, match=r"^no tracks match title:nothing: nothing to compare with$"
    ):
        indexed.run("clap-similar", "title:nothing")
    with pytest.raises(
        UserError, match=r"^give a query for the tracks to compare with"
    ):
        indexed.run("clap-similar")


def test_similar_with_unindexed_seeds(
    indexed: ClapEnv, corpus: dict[str, Path]
) -> None:
    indexed.add(corpus["mid"], title="new")
    with pytest.raises(
        UserError,
        match=r"^the one matched track is not indexed yet: run `beet clap-index`$",
    ):
        indexed.run("clap-similar", "title:new")


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\t\n"],
    ids=["empty", "spaces", "whitespace"],
)
def test_empty_descriptions_are_refused(indexed: ClapEnv, text: str) -> None:
    with pytest.raises(UserError, match=r"^empty description: say what to look for"):
        indexed.run("clap", text)
    with pytest.raises(UserError, match=r"^empty description"):
        indexed.run("ls", f"clap:{text}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "!!!",
            r"^nothing to search for in '!!!': describe the music in words, "
            r'e\.g\. beet clap "calm piano"$',
        ),
        ("1999", r"^nothing to search for in '1999'"),
        ("without", r"^'without' names nothing to leave out: say what"),
        ("no", r"^'no' names nothing to leave out"),
        (
            "jazz without",
            r"^'jazz without' ends with 'without' and names nothing to leave out: "
            r'say what, e\.g\. beet clap "jazz without vocals"$',
        ),
        ("ambient, no", r"^'ambient, no' ends with 'no' and names nothing"),
        ("high w/o any", r"^'high w/o any' ends with 'w/o any' and names nothing"),
    ],
    ids=["punctuation", "digits", "cue", "weak-cue", "dangling", "comma-no", "det"],
)
def test_descriptions_that_say_nothing_are_refused(
    indexed: ClapEnv, text: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        indexed.run("clap", text)
    with pytest.raises(UserError, match=message):
        indexed.run("ls", f"clap:{text}")


def test_a_title_ending_in_not_is_searched(indexed: ClapEnv) -> None:
    """Only an unfinished negation is refused: "no"/"not" end titles."""
    assert indexed.lines("clap", "high Why Not", "-n", "1", "-f", "$title") == ["high"]


def test_missing_description(indexed: ClapEnv) -> None:
    with pytest.raises(
        UserError, match=r'^give a description: beet clap "TEXT" \[QUERY\]$'
    ):
        indexed.run("clap")


def test_very_long_description_is_truncated_not_refused(indexed: ClapEnv) -> None:
    text = ("high " * 2000)[:10_000]
    assert len(text) == 10_000
    assert indexed.lines("clap", text, "-n", "1", "-f", "$title") == ["high"]


def _explained(out: list[str]) -> tuple[list[str], list[str], list[str]]:
    """`beet clap --explain` output: (the explanation, through its ranking
    line; the result lines; each result's note, its score's terms)."""
    end = next(i for i, line in enumerate(out) if line.startswith("ranking:")) + 1
    rest = out[end:]
    return out[:end], rest[0::2], rest[1::2]


def test_a_very_long_description_is_explained_in_readable_lines(
    indexed: ClapEnv,
) -> None:
    """The texts quoted are clipped with an ellipsis and their length; the
    ranking is the one without --explain."""
    text = ("high " * 2000)[:9_400]
    out = indexed.lines("clap", text, "-e", "-s", "-n", "3", "-f", "$title")
    ranked = indexed.lines("clap", text, "-s", "-n", "3", "-f", "$title")
    explained, results, notes = _explained(out)
    assert results == ranked
    assert [note.split()[0] for note in notes] == [r.split()[0] for r in ranked]
    assert max(map(len, explained)) <= 120, explained
    query = next(line for line in explained if line.startswith("query:"))
    assert re.fullmatch(r"query:       '(high )+high…' \([\d,]+ characters\)", query)
    assert any(re.match(r"ranking:     sim\('high high .*…' \(", x) for x in explained)


def test_unknown_words_only(indexed: ClapEnv) -> None:
    with pytest.raises(UserError, match=r"^the model has no words for 'xyzzy plugh'$"):
        indexed.run("clap", "xyzzy plugh")


def test_search_before_any_indexing(env: ClapEnv, corpus: dict[str, Path]) -> None:
    env.add(corpus["low"], title="low")
    with pytest.raises(UserError, match=EMPTY_INDEX):
        env.run("clap", "low")
    with pytest.raises(UserError, match=EMPTY_INDEX):
        env.run("ls", "clap:low")
    with pytest.raises(UserError, match=EMPTY_INDEX):
        env.run("clap-similar", "title:low")


def test_index_with_only_failures_says_they_failed(
    env: ClapEnv, tmp_path: Path
) -> None:
    """Not that the index is empty: clap-index would only fail again
    (test_messages has every command and library size)."""
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not really")
    env.add(bad, read_tags=False, title="bad")
    env.run("clap-index")
    with pytest.raises(
        UserError,
        match=r"^the one track in the library \(tester - bad\) failed to index: .*; "
        r"fix or replace its file, then run `beet clap-index`$",
    ):
        env.run("clap", "low")


def test_swapped_bundle_is_reported_stale_then_reindexed(
    indexed: ClapEnv, other_bundle: Path
) -> None:
    indexed.reload(model=str(other_bundle))
    with pytest.raises(
        UserError,
        match=r"^the clap index was built with another model bundle "
        r"\(clap-tiny 0\.1\.0 \([0-9a-f]{12}\)\): "
        r"run `beet clap-index` to embed the library with the current one$",
    ):
        indexed.run("clap", "low")
    with pytest.raises(UserError, match=r"another model bundle"):
        indexed.run("ls", "clap:low")
    out = indexed.lines("clap-index", "--pretend")
    assert out[0].startswith("would embed (other bundle): ")
    assert out[-1] == "clap-index: would embed 5, unchanged 0"
    # Re-indexing drops the old vectors (another dimension: 12 vs 8).
    assert (
        indexed.lines("clap-index")[-1]
        == "clap-index: embedded 5, unchanged 0, failed 0"
    )
    assert indexed.lines("clap", "high", "-n", "1", "-f", "$title") == ["high"]
    dims = {
        len(blob) // 4 for (blob,) in indexed.sql(f"SELECT embedding FROM {VECTORS}")
    }
    assert dims == {12}


def test_removed_items_lose_their_rows(indexed: ClapEnv) -> None:
    low_id = indexed.lib.items("title:low").get().id
    indexed.run("remove", "-f", "title:low", "title::^low$")
    assert indexed.sql(f"SELECT * FROM {STATE} WHERE item_id = ?", low_id) == []
    assert indexed.sql(f"SELECT item_id FROM {VECTORS} WHERE item_id = ?", low_id) == []
    (count,) = indexed.sql(f"SELECT count(*) FROM {VECTORS}")[0]
    assert count == 4
    assert "low" not in indexed.lines("clap", "low", "-f", "$title")


def test_removal_through_the_library_api(indexed: ClapEnv) -> None:
    item = indexed.lib.items("title:mid").get()
    item.remove()
    # The state row goes with beets' own transaction; the vector is dropped
    # by the next clap-index (the API has no cli_exit).
    assert indexed.sql(f"SELECT * FROM {STATE} WHERE item_id = ?", item.id) == []
    assert indexed.lines("clap", "mid", "-f", "$title")[0] != "mid"
    indexed.run("clap-index")
    assert (
        indexed.sql(f"SELECT item_id FROM {VECTORS} WHERE item_id = ?", item.id) == []
    )


def test_negated_attribute_is_penalised(indexed: ClapEnv) -> None:
    # The toy text tower is a bag of words: "low without noise" points at
    # low AND noise; only the parser's penalty pushes the noise track down.
    indexed.reload(negation_weight=0)
    blind = indexed.lines("clap", "low without noise", "-n", "3", "-f", "$title")
    assert blind.index("noise") < 3
    indexed.reload(negation_weight=1.0)
    scored = indexed.lines("clap", "low without noise", "-s", "-f", "$title")
    titles = [line.split()[1] for line in scored]
    assert titles.index("noise") > titles.index("mid")
    # The score is exactly sim(whole) - w * sim(noise).
    bundle = Bundle.load(indexed.bundle)
    whole, noise = bundle.embed_text(["low without noise", "noise"])
    with Store.open(indexed.lib.path) as store:
        _, mat = store.vectors([indexed.lib.items("title::^noise$").get().id])
    expected = float(mat[0] @ whole - 1.0 * (mat[0] @ noise))
    shown = next(float(line.split()[0]) for line in scored if line.endswith(" noise"))
    assert shown == pytest.approx(expected, abs=1e-3)


def test_explain_shows_the_parse_and_the_formula(indexed: ClapEnv) -> None:
    out = indexed.lines(
        "clap", "--explain", "low without noise", "-n", "1", "-f", "$title"
    )
    assert out[:3] == [
        "query:       'low without noise'",
        "affirmative: 'low'",
        "negated:     noise",
    ]
    # Noise is no voice: the description still wants none, and speech alone
    # ranks after music as in a plain one.
    assert (
        "ranking:     sim('low without noise') - 0.5 * sim('noise') - 8 * speech"
    ) in out
    assert out[-2] == "low"
    # Under the result, its score term by term.
    assert re.fullmatch(
        r"    \d\.\d{4} = sim \d\.\d{4} - 0\.5 \* noise -?\d\.\d{4}"
        r" - 8 \* speech \d\.\d{4}",
        out[-1],
    )
    # A refused voice: its penalty decides, no speech term.
    voice = indexed.lines("clap", "--explain", "low without vocals", "-n", "1")
    assert "ranking:     sim('low without vocals') - 0.5 * penalty('vocals')" in voice
    assert not any("speech" in line for line in voice)


def test_explain_names_the_speech_penalty_of_a_plain_description(
    indexed: ClapEnv,
) -> None:
    plain = indexed.lines("clap", "--explain", "low", "-n", "1")
    assert "ranking:     sim('low') - 8 * speech" in plain
    assert any(
        line.startswith("  speech: max(0, sim('spoken word') - 0.6)") for line in plain
    )
    # A description that wants a voice, or a weight of 0: no speech penalty.
    voice = indexed.lines("clap", "--explain", "female vocals", "-n", "1")
    assert "ranking:     sim('female vocals')" in voice
    assert not any("speech" in line for line in voice)
    indexed.reload(speech_weight=0)
    plain = indexed.lines("clap", "--explain", "low", "-n", "1")
    assert "ranking:     sim('low')" in plain


def _drum_tagger_library(
    env: ClapEnv, corpus: dict[str, Path], tmp_path: Path, **settings: float
) -> Path:
    """Four tones indexed with a tiny bundle whose first tag, named "drums",
    fires on the low tone. Its text tower's "drums" points nowhere acoustic,
    so only the tagger knows the low tone "has drums"."""
    from bundle_factory import build_tiny_bundle

    bundle = build_tiny_bundle(
        tmp_path / "drum-tagger", with_tags=True, tag_names=["drums", "high", "noise"]
    )
    env.reload(model=str(bundle), **settings)
    for kind in ("low", "mid", "high", "noise"):
        env.add_copy(corpus[kind], title=kind)
    env.run("clap-index")
    return bundle


def _scores_and_tags(
    env: ClapEnv, text: str
) -> tuple[dict[str, float], dict[str, float]]:
    """title -> score of `beet clap TEXT`, and title -> the stored drums tag."""
    lines = env.lines("clap", text, "--score", "-f", "$title")
    scores = {line.split()[1]: float(line.split()[0]) for line in lines}
    with Store.open(env.lib.path) as store:
        tags = {t: store.tags([i])[i][0] for t, i in _ids(env).items()}
    return scores, tags


def _scores_off_and_on(
    env: ClapEnv,
    corpus: dict[str, Path],
    tmp_path: Path,
    text: str,
    key: str,
    on: float,
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Scores of `beet clap TEXT` with the tag weight `key` at 0, then at
    `on`, on the drum-tagger library; and the stored drums tags."""
    bundle = _drum_tagger_library(env, corpus, tmp_path, **{key: 0})
    without, _ = _scores_and_tags(env, text)
    env.reload(model=str(bundle), **{key: on})
    with_tags, tags = _scores_and_tags(env, text)
    return without, with_tags, tags


def test_tagger_evidence_joins_a_negated_attributes_penalty(
    env: ClapEnv, corpus: dict[str, Path], tmp_path: Path
) -> None:
    without, with_tags, tags = _scores_off_and_on(
        env, corpus, tmp_path, "tone, no drums", "tag_weight", 2.0
    )
    assert tags["low"] > 0.5 > max(tags["mid"], tags["high"], tags["noise"])
    pct = _relative(tags)
    for title, score in with_tags.items():
        # weight 0.5 (the bundle's default) x tag weight 2 x the drums tag
        # relative to its top in the library
        expected = without[title] - 0.5 * 2.0 * pct[title]
        # max() over one negated attribute: the penalty is that sum exactly
        assert score == pytest.approx(expected, abs=2e-3)
    assert min(with_tags, key=with_tags.get) == "low"
    explained = env.lines("clap", "--explain", "tone, no drums", "-n", "1")
    assert (
        "  drums: penalty = text sim('drums') + 2 x tags drums (by lexicon)"
        in explained
    )
    assert explained[-3].endswith(" - 0.5 * penalty('drums') - 8 * speech")
    from beetsplug.clap import DEFAULTS

    assert DEFAULTS["tag_weight"] == search.DEFAULT_TAG_WEIGHT
    assert DEFAULTS["speech_weight"] == search.DEFAULT_SPEECH_WEIGHT


def test_tagger_evidence_lifts_a_wanted_attribute(
    env: ClapEnv, corpus: dict[str, Path], tmp_path: Path
) -> None:
    # Asked for "tone with drums" (no negation), the bonus rescores the pool.
    without, with_tags, tags = _scores_off_and_on(
        env, corpus, tmp_path, "tone with drums", "affirmed_tag_weight", 3.0
    )
    pct = _relative(tags)
    for title, score in with_tags.items():
        assert score == pytest.approx(without[title] + 3.0 * pct[title], abs=2e-3)
    assert max(with_tags, key=with_tags.get) == "low"
    assert max(without, key=without.get) != "low"
    explained = env.lines("clap", "--explain", "tone with drums", "-n", "1")
    assert "  wanted drums: evidence = tags drums (by lexicon), w 3" in explained
    assert explained[-3] == (
        "ranking:     sim('tone with drums') + 3 * evidence('drums') - 8 * speech"
    )
    from beetsplug.clap import DEFAULTS

    assert DEFAULTS["affirmed_tag_weight"] == search.DEFAULT_AFFIRMED_TAG_WEIGHT


TERMS = re.compile(
    r"(?P<score>-?\d\.\d{4}) = sim (?P<sim>-?\d\.\d{4})"
    r"(?: - (?P<w>[\d.]+) \* \w+ (?P<penalty>-?\d\.\d{4}))?"
    r"(?: \+ (?P<a>[\d.]+) \* evidence (?P<evidence>-?\d\.\d{4}))?"
    r"(?: - (?P<s>[\d.]+) \* speech (?P<speech>-?\d\.\d{4}))?"
)


@pytest.mark.parametrize("text", ["tone with drums", "tone with drums, no noise"])
def test_explain_spells_out_each_results_score(
    env: ClapEnv, corpus: dict[str, Path], tmp_path: Path, text: str
) -> None:
    """Under each result, --explain adds its score up term by term: the
    terms are the ranking's (they sum to the score shown by --score), and
    the evidence is the tag the result has."""
    _drum_tagger_library(env, corpus, tmp_path, tag_weight=2.0, affirmed_tag_weight=3.0)
    scores, tags = _scores_and_tags(env, text)
    out = env.lines("clap", "--explain", text, "-s", "-f", "$title")
    _, results, notes = _explained(out)
    assert len(results) == len(notes) == 4
    relative = _relative(tags)
    for result, note in zip(results, notes, strict=True):
        score, title = result.split()
        terms = TERMS.fullmatch(note.strip())
        assert terms is not None, note
        assert terms["score"] == score
        assert float(score) == pytest.approx(scores[title], abs=1e-4)
        total = float(terms["sim"])
        if terms["penalty"] is not None:
            total -= float(terms["w"]) * float(terms["penalty"])
        assert terms["evidence"] is not None
        assert float(terms["evidence"]) == pytest.approx(relative[title], abs=1e-3)
        total += float(terms["a"]) * float(terms["evidence"])
        if terms["speech"] is not None:
            total -= float(terms["s"]) * float(terms["speech"])
        assert total == pytest.approx(float(score), abs=5e-4)
        # A negated description has a penalty; both want no voice, so both
        # have the speech term.
        assert (terms["penalty"] is not None) == ("no noise" in text)
        assert terms["speech"] is not None


def _relative(tags: dict[str, float]) -> dict[str, float]:
    """title -> its drums tag over the tag's top in the library (the 99th
    percentile of the four, at least 0.05): what the search counts."""
    top = max(float(np.quantile(list(tags.values()), 0.99)), 0.05)
    return {title: min(value / top, 1.0) for title, value in tags.items()}


@pytest.mark.parametrize("weight", ["tag_weight", "affirmed_tag_weight"])
def test_a_word_reaches_the_tag_that_means_it(
    env: ClapEnv, corpus: dict[str, Path], tmp_path: Path, weight: str
) -> None:
    # No tag is named "percussion", but the lexicon counts drums as one:
    # the "drums" tag speaks for it, wanted (first) and negated (last).
    _drum_tagger_library(env, corpus, tmp_path, **{weight: 5.0})
    # (The tiny text tower knows neither "tone" nor "percussion": only the
    # tag can rank the tones.)
    text = "jazz with percussion" if weight != "tag_weight" else "jazz, no percussion"
    scores, tags = _scores_and_tags(env, text)
    assert tags["low"] > 0.5 > max(tags["mid"], tags["high"], tags["noise"])
    best = max(scores, key=scores.get)
    worst = min(scores, key=scores.get)
    assert (best if weight != "tag_weight" else worst) == "low"
    explained = env.lines("clap", "--explain", text, "-n", "1")
    assert any("tags drums (by lexicon)" in line for line in explained), explained


def test_the_text_encoder_links_a_word_the_lexicon_does_not_know(
    env: ClapEnv,
    corpus: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "treble" names no concept and no tag; the tiny text tower puts it
    # beside the meaning of the "high" tag. Among three tags none can stand
    # out by the default threshold (a real tagger has dozens), so the test
    # lowers it.
    from beetsplug.clap import taglinks

    bundle_path = build_tiny_bundle(tmp_path / "tagged", with_tags=True)
    env.reload(model=str(bundle_path))
    for kind in ("low", "mid", "high", "noise"):
        env.add_copy(corpus[kind], title=kind)
    env.run("clap-index")
    monkeypatch.setattr(taglinks, "TEXT_LINK_THRESHOLD", 1.0)
    taglinks.forget_links()
    bundle = Bundle.load(bundle_path)
    titles = {i: t for t, i in _ids(env).items()}
    with Store.open(env.lib.path) as store:
        wanted = search.embed_query(bundle, "treble", 0.5, 2.0, 5.0)
        assert wanted.parsed.affirmed == ["treble"]
        assert wanted.affirmed_matches[0].by == "text encoder"
        ranked = [titles[i] for i, _ in search.rank_items(store, bundle, wanted, 4)]
        assert ranked[0] == "high"
        # The tiny tower reads "-treble" as treble (the high tone first); the
        # tag "treble" is linked to puts the high tone last.
        untagged = search.embed_query(bundle, "-treble", 0.5, 0.0, 0.0)
        ranked = [titles[i] for i, _ in search.rank_items(store, bundle, untagged, 4)]
        assert ranked[-1] != "high"
        negated = search.embed_query(bundle, "-treble", 0.5, 5.0, 0.0)
        ranked = [titles[i] for i, _ in search.rank_items(store, bundle, negated, 4)]
        assert ranked[-1] == "high"
    assert "  wanted treble: evidence = tags high (by text encoder), w 5" in (
        wanted.explain().splitlines()
    )
    assert "5 x tags high (by text encoder)" in negated.explain()
    taglinks.forget_links()


def _ids(env: ClapEnv) -> dict[str, int]:
    return {item.title: item.id for item in env.lib.items()}


def test_negation_weight_comes_from_config_then_bundle(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    import json
    import shutil

    from bundle_factory import write_manifest

    bundle = Bundle.load(tiny_bundle)
    assert (
        search.resolve_negation_weight(None, bundle) == search.DEFAULT_NEGATION_WEIGHT
    )
    assert search.resolve_negation_weight(0.8, bundle) == 0.8
    calibrated = tmp_path / "calibrated"
    shutil.copytree(tiny_bundle, calibrated)
    manifest = json.loads((calibrated / "manifest.json").read_text())
    manifest["query"] = {"negation_weight": 0.3}
    write_manifest(calibrated, manifest)
    assert search.resolve_negation_weight(None, Bundle.load(calibrated)) == 0.3


def test_store_knn_and_vectors_agree(indexed: ClapEnv, tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle)
    query = bundle.embed_text(["high"])[0]
    with Store.open(indexed.lib.path) as store:
        hits = store.knn(query, 3)
        ids, mat = store.vectors([i for i, _ in hits])
        exact = dict(zip(ids.tolist(), (mat @ query).tolist(), strict=True))
        for item_id, score in hits:
            assert score == pytest.approx(exact[item_id], abs=1e-5)
        only = store.knn(query, 5, candidates=[1, 2])
        assert {i for i, _ in only} == {1, 2}
