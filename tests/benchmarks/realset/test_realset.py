"""Consistency of the committed realset recipe and of the check's metrics.

Part of the project's suite (the benchmark scripts beside it are not
tests); alone, `python -m pytest tests/benchmarks/realset -q`. Needs no
packages or audio: it guards the properties the benchmark's honesty rests
on (every clip cites each of its sources, the split keeps every package in
one part, minimal pairs differ in exactly their attribute, no guitar kind
is claimed absent, the report part can decide each concept) and the
arithmetic of the figures it reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build
import check
import concepts

RECIPE = build.load_recipe()
CLIPS = {c["id"]: c for c in RECIPE["clips"]}
PRESENCE = ("vocals", "drums", "guitar", "piano")


def test_clip_ids_unique_and_durations_in_range():
    assert len(CLIPS) == len(RECIPE["clips"])
    assert len(CLIPS) >= 250
    for clip in RECIPE["clips"]:
        assert 10.0 <= clip["duration"] <= 30.0, clip["id"]


def test_every_clip_cites_evidence_licence_and_pinned_sources():
    for clip in RECIPE["clips"]:
        assert clip["evidence"], clip["id"]
        assert all(len(e) > 40 for e in clip["evidence"]), clip["id"]
        assert clip["licence"], clip["id"]
        for layer in clip["layers"]:
            package = layer["package"]
            assert package in RECIPE["packages"], (clip["id"], package)
            assert layer["version"] == RECIPE["packages"][package]["version"]
            refs = (
                list(layer["hits"].values())
                if layer["type"] == "drums"
                else layer.get("stems") or layer.get("parts") or [layer]
            )
            for ref in refs:
                assert len(ref["sha256"]) == 64
                assert ref["path"].startswith("usr/")
                if "member" in ref:  # a file inside a resource bundle: its own hash
                    assert len(ref["member_sha256"]) == 64


def test_labels_are_bool_or_unknown_and_every_voice_speaks_or_sings():
    for clip in RECIPE["clips"]:
        labels = clip["labels"]
        for attr in PRESENCE:
            assert labels[attr] in (True, False, None), (clip["id"], attr)
        kind = labels["vocal_kind"]
        assert (kind in ("speech", "sung")) == (labels["vocals"] is True), clip["id"]
        if kind is not None:  # a voice of known kind says whether it speaks
            assert labels["speech"] == (kind == "speech"), clip["id"]


def test_binary_attributes_are_balanced():
    for attr in ("vocals", "drums", "guitar"):
        values = [c["labels"][attr] for c in RECIPE["clips"]]
        assert values.count(True) >= 20, attr
        assert values.count(False) >= 20, attr


def test_pairs_differ_in_exactly_their_attribute():
    assert RECIPE["pairs"]
    for pair in RECIPE["pairs"]:
        with_x, without_x = (
            CLIPS[pair["with"]]["labels"],
            CLIPS[pair["without"]]["labels"],
        )
        attr = pair["attribute"]
        assert with_x[attr] is True
        assert without_x[attr] is False
        for other in PRESENCE:
            if other != attr:
                assert with_x[other] == without_x[other], (pair, other)


def test_pair_column_holds_each_clip_once_and_both_attributes():
    rows = build.rows_for(RECIPE)
    groups: dict[str, list[str]] = {}
    for row in rows:
        if row["pair_id"]:
            groups.setdefault(row["pair_id"], []).append(row["pair_attribute"])
    assert all(len(members) == 2 for members in groups.values())
    attrs = [members[0] for members in groups.values()]
    assert attrs.count("vocals") >= 8
    assert attrs.count("drums") >= 8


def test_absent_never_claims_a_guitar_kind_when_a_guitar_plays():
    for clip in RECIPE["clips"]:
        absent = build.absent_for(clip["labels"])
        if clip["labels"]["guitar"]:
            assert not [t for t in absent if "guitar" in t], clip["id"]
        if clip["labels"]["vocals"] is None:
            assert "vocals" not in absent


def test_unknown_labels_stay_out_of_tags_captions_and_attributes():
    mix = CLIPS["fof-armygeddon-fullmix"]
    assert mix["labels"]["vocals"] is None
    assert mix["labels"]["drums"] is None
    row = next(r for r in build.rows_for(RECIPE) if r["track_id"] == mix["id"])
    assert "vocals" not in row["tag"]
    assert "drums" not in row["tag"]
    assert "vocals" not in row["caption_writing"].lower()
    assert row["absent"] == []
    assert '"vocals"' not in row["attributes"]
    assert '"instruments"' not in row["attributes"]


def test_auc_counts_ties_half_and_orders():
    scores = np.array([0.9, 0.8, 0.5, 0.5, 0.1])
    labels = np.array([True, True, True, False, False])
    # positives vs negatives: (0.9,0.8 beat both) 4 wins, 0.5 vs 0.5 tie, 0.5 > 0.1
    assert check.auc(scores, labels) == pytest.approx(5.5 / 6)
    assert check.auc(-scores, labels) == pytest.approx(0.5 / 6)
    assert np.isnan(check.auc(scores, np.ones(5, bool)))


def test_ranking_counts_precision_and_violation(monkeypatch):
    recipe = {
        "clips": [
            {"id": str(i), "labels": {"vocals": v, "drums": False, "guitar": None}}
            for i, v in enumerate([False, True, False, None, True, False])
        ]
    }
    order = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # clip 0 ranks first
    monkeypatch.setattr(check, "RANKING", [("music without vocals", {"vocals": False})])
    rows = check.ranking_rows(recipe, {"sim": lambda q: order})
    row = rows[0]
    assert row["pool"] == 5
    assert row["relevant"] == 3
    # top 5 of the pool = clips 0,1,2,4,5: three without vocals, two with
    assert row["sim_p@5"] == pytest.approx(0.6)
    assert row["sim_viol@5"] == pytest.approx(0.4)


def test_drum_grid_places_hits_on_the_beat():
    class OneShot(build.Sources):
        def __init__(self) -> None:
            pass

        def audio(self, package: str, path: str, sha256: str | None) -> np.ndarray:
            hit = np.zeros(100, np.float32)
            hit[0] = {"kick": 1.0, "snare": 2.0, "hat": 4.0}[path]
            return hit

    layer = {"package": "p", "pattern": "rock", "bpm": 120.0, "offset": 0.0,
             "hits": {r: {"path": r} for r in ("kick", "snare", "hat")}}  # fmt: skip
    out = build.render_drums(layer, OneShot(), 4 * build.SAMPLE_RATE)  # two bars
    step = build.SAMPLE_RATE // 8  # a sixteenth at 120 bpm = 0.125 s
    assert out[0] == pytest.approx(1.0 + 0.7 * 4.0)  # kick + accented hat on 1
    assert out[4 * step] == pytest.approx(2.0 + 0.7 * 4.0)  # snare + hat on 2
    assert out[3 * step] == 0.0  # nothing on the 4th sixteenth
    # every kick and snare lands on an eighth-note hat: 8 onsets a bar, 2 bars
    assert np.count_nonzero(out) == 16


def test_a_kind_is_known_from_the_instrument_list_or_its_absent_family():
    """ "electric guitar" is present where a clip's sources name it, absent
    where there is no guitar, unknown for a guitar of unstated kind."""
    recipe = {
        "clips": [
            {"labels": {"guitar": True, "instruments": ["electric guitar"]}},
            {"labels": {"guitar": True, "instruments": []}},
            {"labels": {"guitar": False, "instruments": []}},
            {"labels": {"guitar": None, "instruments": []}},
            {"labels": {"guitar": None, "instruments": None}},  # a soundtrack
        ]
    }
    assert check.known(recipe, "electric guitar").tolist() == [1, -1, 0, -1, -1]
    assert check.known(recipe, "guitar").tolist() == [1, 1, 0, -1, -1]


def test_absence_bars_count_the_labelled_clips_each_bar_would_deny():
    import absence

    recipe = {
        "clips": [
            {"part": "choose", "labels": {"drums": True}},
            {"part": "choose", "labels": {"drums": True}},
            {"part": "choose", "labels": {"drums": False}},
            {"part": "report", "labels": {"drums": True}},
            {"part": "choose", "labels": {"drums": None}},
        ]
    }
    # Two drum tags; a clip is silent on drums by its louder one.
    probs = np.array(
        [[0.04, 0.005], [0.2, 0.3], [0.001, 0.002], [0.0, 0.0], [0.0, 0.0]]
    )
    choose = check.part_index(recipe, "choose")
    rows = absence.denials(recipe, ["drums", "drums"], probs, choose, ["drums", "harp"])
    drums, harp = rows
    # Only the first drum clip is quiet enough to deny, under 0.05 and 0.1;
    # the report part's clip and the unknown one never count.
    assert drums["labelled_present"] == 2
    assert [drums[f"denied_present<{b}"] for b in absence.BARS] == [0, 0, 0, 1, 1]
    assert drums["largest_safe_bar"] == 0.03
    assert harp == {"concept": "harp", "labelled_present": 0}


# --------------------------------------------------------------------------
# The split and the concept labels


def test_enough_clips_from_enough_sources():
    used = {lay["package"] for c in RECIPE["clips"] for lay in c["layers"]}
    assert len(RECIPE["clips"]) >= 250
    assert len(used) >= 8
    assert used == set(RECIPE["packages"])  # no listed package left unused


def test_split_puts_every_package_in_exactly_one_part():
    split = RECIPE["split"]
    assert set(split) == {"choose", "report"}
    choose, report = set(split["choose"]), set(split["report"])
    assert not choose & report
    assert choose | report == set(RECIPE["packages"])
    assert len(choose) + len(report) == sum(len(v) for v in split.values())


def test_every_clip_lies_in_the_part_of_all_its_sources():
    part_of = {p: part for part, pkgs in RECIPE["split"].items() for p in pkgs}
    for clip in RECIPE["clips"]:
        parts = {part_of[lay["package"]] for lay in clip["layers"]}
        assert parts == {clip["part"]}, clip["id"]


def test_every_clip_cites_each_of_its_sources():
    for clip in RECIPE["clips"]:
        for layer in clip["layers"]:
            assert any(layer["package"] in e for e in clip["evidence"]), (
                clip["id"],
                layer["package"],
            )


def test_genre_and_gender_labels_quote_their_statement():
    # The words the sources use: a Vorbis genre tag, a readme, a package
    # description; a speaker folder's _f_/_m_ or the credits' own words.
    said = {
        "classical": ("Classical", "Classique"),
        "metal": ("metal",),
        "electronic": ("beats", "techno", "house", "electro", "jungle", "rave"),
    }
    for clip in RECIPE["clips"]:
        labels = clip["labels"]
        text = " ".join(clip["evidence"])
        for g in labels.get("genres") or ():
            assert any(w in text for w in said[g]), (clip["id"], g)
        if labels.get("vocal_kind") == "sung":  # only a stated choir sings here
            assert "choir" in text, clip["id"]
        mark = {"female": ("_f_", "Armelle"), "male": ("_m_",)}
        if labels.get("vocal_gender"):
            assert any(m in text for m in mark[labels["vocal_gender"]]), clip["id"]


def assert_each_class_thrice(clips: list[dict], need: tuple[str, ...]) -> None:
    """Each concept in `need`, and each negated concept, labels at least 3 of
    `clips` 1 and at least 3 of them 0: enough to decide a threshold on."""
    by_id = {c.id: c for c in concepts.CONCEPTS}
    for concept in [by_id[cid] for cid in need] + concepts.NEGATED:
        values = concept.labels(clips)
        assert values.count(1) >= 3, concept.id
        assert values.count(0) >= 3, concept.id


def test_concept_labels_are_ternary_and_the_report_part_can_decide():
    report = [c for c in RECIPE["clips"] if c["part"] == "report"]
    for concept in concepts.CONCEPTS + concepts.NEGATED:
        values = concept.labels(RECIPE["clips"])
        assert set(values) <= {-1, 0, 1}, concept.id
    need = (
        "vocals", "female voice", "male voice", "drums", "guitar", "piano",
        "violin", "strings", "flute", "electronic", "classical", "spoken word",
    )  # fmt: skip
    assert_each_class_thrice(report, need)


def test_the_choose_part_can_decide_what_thresholds_are_chosen_for():
    """Instruments, singing, speech against music and two genres have at
    least 3 clips of each class in `choose`; male voice is the known gap
    (no package voiced by a man outside the report part was found)."""
    choose = [c for c in RECIPE["clips"] if c["part"] == "choose"]
    assert len(choose) >= 120
    need = (
        "vocals", "singing", "female voice", "drums", "guitar", "piano",
        "violin", "cello", "strings", "flute", "trumpet", "organ", "choir",
        "electronic", "classical", "rock/metal", "spoken word", "music",
    )  # fmt: skip
    assert_each_class_thrice(choose, need)
    assert len({c["base_piece"] for c in choose if c["labels"]["genres"]}) >= 10


def test_concept_label_rules():
    violin = {"instruments": ["violin"], "instruments_complete": True, "music": True}
    harp = {"instruments": ["harp"], "instruments_complete": True, "music": True}
    horn = {"instruments": ["horn"], "instruments_complete": True, "music": True}
    unknown = {"instruments": None, "instruments_complete": False, "music": True}
    strings = concepts.instrument("strings")
    assert [strings(x) for x in (violin, harp, horn, unknown)] == [1, -1, 0, -1]
    assert concepts.absent(strings)(horn) == 1
    speech = {"speech": True, "music": False, "vocals": True, "vocal_gender": "male"}
    mixed = {"speech": True, "music": True}
    song = {"music": True, "genres": ["classical"]}
    assert [concepts.spoken(x) for x in (speech, mixed, song)] == [1, -1, 0]
    assert [concepts.music(x) for x in (speech, mixed, song)] == [0, -1, 1]
    electronic = concepts.genre("electronic")
    assert [electronic(x) for x in (speech, song, unknown)] == [0, 0, -1]
    assert concepts.absent(strings)(speech) == -1  # speech is not "music without"
    assert concepts.gender("male")(speech) == 1
    assert concepts.gender("female")(speech) == 0
    assert concepts.gender("female")({"vocals": False}) == 0
    assert concepts.gender("female")({"vocals": True}) == -1
    choir = {"vocals": True, "vocal_kind": "sung", "music": True}
    assert [concepts.sung(x) for x in (choir, speech, violin)] == [1, 0, -1]
    assert concepts.sung({"vocals": False}) == 0


def test_cached_rows_are_reused_and_only_new_clips_computed(tmp_path):
    asked: list[list[int]] = []

    def compute(index: list[int]) -> dict[str, np.ndarray]:
        asked.append(list(index))
        return {
            "names": np.array(["t"]),
            "probs": np.array([[float(ord(ids[n]))] for n in index]),
        }

    ids = ["a", "b"]
    first = check.cached(tmp_path, "tagger", ids, compute)
    ids = ["b", "c", "a"]  # one clip added, order changed
    second = check.cached(tmp_path, "tagger", ids, compute)
    assert asked == [[0, 1], [1]]
    assert second["probs"][:, 0].tolist() == [98.0, 99.0, 97.0]
    assert second["names"].tolist() == first["names"].tolist() == ["t"]
    third = check.cached(tmp_path, "tagger", ids, compute)
    assert asked == [[0, 1], [1]]  # nothing new: nothing computed
    assert third["probs"].tolist() == second["probs"].tolist()


def tag_rows(index: list[int]) -> dict[str, np.ndarray]:
    return {"names": np.array(["t"]), "probs": np.array([[float(n)] for n in index])}


def test_a_cache_write_cut_short_leaves_the_old_cache(tmp_path):
    check.cached(tmp_path, "tagger", ["a"], tag_rows)
    before = (tmp_path / "tagger.npz").read_bytes()

    def fails_mid_write(index: list[int]) -> dict[str, np.ndarray]:
        # A row np.savez cannot pickle: the write stops inside "probs".
        row = np.empty(1, dtype=object)
        row[0] = lambda: None
        return {"names": np.array(["t"]), "probs": row[None]}

    with pytest.raises(Exception, match="pickle"):
        check.cached(tmp_path, "tagger", ["a", "b"], fails_mid_write)
    assert [p.name for p in tmp_path.iterdir()] == ["tagger.npz"]
    assert (tmp_path / "tagger.npz").read_bytes() == before


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "EOFError"),
        (b"PK\x03\x04 not a whole zip", "BadZipFile"),
        (b"\x93NUMPY garbage", "ValueError"),
        (None, "BadZipFile"),  # a real cache cut in half
    ],
    ids=["empty", "zip-start", "npy-garbage", "cut-in-half"],
)
def test_an_unreadable_cache_is_computed_again_with_one_line(
    tmp_path, capsys, body, error
):
    path = tmp_path / "tagger.npz"
    if body is None:
        check.cached(tmp_path, "tagger", [str(n) for n in range(200)], tag_rows)
        body = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(body)
    assert check.cached(tmp_path, "tagger", ["a", "b"], None) == {}
    note = capsys.readouterr().err
    assert note.startswith(f"realset cache: {path} unreadable ({error}: ")
    assert note.endswith("); computing it again\n")
    assert note.count("\n") == 1
    path.write_bytes(body)
    got = check.cached(tmp_path, "tagger", ["a", "b"], tag_rows)
    assert got["probs"][:, 0].tolist() == [0.0, 1.0]
    assert capsys.readouterr().err == note
    with np.load(path) as z:  # overwritten with what was computed
        assert z["ids"].tolist() == ["a", "b"]


def test_r_precision_and_tag_columns():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([True, False, True, False, False])
    assert check.r_precision(scores, labels) == pytest.approx(0.5)  # top 2: 1 of 2
    assert check.r_precision(-scores, labels) == pytest.approx(0.0)
    assert np.isnan(check.r_precision(scores, np.zeros(5, bool)))
    probs = np.array([[0.2, 0.9], [0.7, 0.1]])
    assert concepts.tag_column("b", ["a", "b"], probs).tolist() == [0.9, 0.1]
    flipped = concepts.tag_column("1-a", ["a", "b"], probs)
    assert flipped.tolist() == pytest.approx([0.8, 0.3])
    assert concepts.tag_column("c", ["a", "b"], probs) is None


def test_part_report_scores_concepts_and_parity_on_toy_clips(monkeypatch):
    clips = [
        {"id": str(i), "part": "report", "labels": {"vocals": v, "music": True}}
        for i, v in enumerate([True, True, True, False, False, False, None])
    ]
    speech = {"vocals": True, "speech": True, "music": False}
    clips.append({"id": "s", "part": "report", "labels": speech})
    recipe = {"clips": clips}
    vocals = concepts.Concept(
        "vocals", "part", "vocals", concepts.presence("vocals"), {"MTT_musicnn": "v"}
    )
    monkeypatch.setattr(concepts, "CONCEPTS", [vocals])
    monkeypatch.setattr(concepts, "NEGATED", [])
    monkeypatch.setattr(concepts, "MUSIC_QUERIES", ("music",))
    # text ranks one negative above one positive; the tag is perfect
    text = np.array([0.9, 0.8, 0.3, 0.5, 0.2, 0.1, 0.0, 0.95])
    tag = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.5, 0.99])
    out = check.part_report(
        recipe,
        np.arange(len(clips)),
        {"plugin": {"vocals": text, "music": text}},
        {"MTT_musicnn": (["v"], tag[:, None])},
    )
    row = out["concepts"][0]
    assert (row["n_pos"], row["n_neg"]) == (4, 3)  # the unknown clip is left out
    # positives 0.9 0.8 0.3 0.95 vs negatives 0.5 0.2 0.1: 0.3 loses to 0.5
    assert row["auc_plugin"] == pytest.approx(11 / 12)
    assert row["rprec_plugin"] == pytest.approx(0.75)
    assert row["auc_MTT_musicnn:v"] == pytest.approx(1.0)
    assert row["tag_MTT_musicnn"] == "v"
    summary = out["summary"]["MTT_musicnn"]
    assert summary["auc_tag"] == pytest.approx(1.0)
    assert summary["at_parity_plugin"] == 0
    speech = out["speech"][0]  # the speech clip tops the "music" query
    assert speech["n_speech"] == 1
    assert speech["first_speech_rank_plugin"] == 1
    assert speech["auc_plugin"] == pytest.approx(0.0)


def test_other_wordings_name_judged_concepts_and_read_as_them():
    """wordings.py asks concepts the check judges, in words other than the
    check's own, and a wording of "music without X" negates something while
    a wording of a wanted concept negates nothing (but "music", which may
    be asked for by refusing speech: "no talking")."""
    import wordings

    from beetsplug.clap.query import parse_query

    judged = {c.id: c for c in concepts.CONCEPTS + concepts.NEGATED}
    assert set(wordings.WORDINGS) <= set(judged)
    for concept_id, texts in wordings.WORDINGS.items():
        concept = judged[concept_id]
        assert concept.query not in texts
        assert len(set(texts)) == len(texts)
        for text in texts:
            negated = parse_query(text).negated
            if concept_id == "music" and negated == ["speech"]:
                continue
            assert bool(negated) == (concept.kind == "negated"), text


def test_typos_are_one_slip_from_a_judged_concept_and_read_as_it():
    """wordings.py's TYPOS misspell words of the check's own wording ("excluding"
    for "without") by one slip, and the parser reads them as that wording."""
    import wordings

    from beetsplug.clap.lexicon import lexicon
    from beetsplug.clap.query import _one_slip, parse_query

    tolerant = lexicon().grammar["typo_tolerant"]
    judged = {c.id: c for c in concepts.CONCEPTS + concepts.NEGATED}
    for concept_id, texts in wordings.TYPOS.items():
        query = judged[concept_id].query
        for text in texts:
            slips = [w for w in text.split() if w not in query.split()]
            assert slips, text
            assert all(any(_one_slip(w, t) for t in tolerant) for w in slips), text
            assert parse_query(text).restated == parse_query(query).restated, text


def test_wording_rows_score_each_wording_against_the_part_labels():
    import wordings

    recipe = check.load_recipe(check.HERE / "labels.json")
    index = check.part_index(recipe, "choose")
    clips = [recipe["clips"][i] for i in index]
    drums = next(c for c in concepts.CONCEPTS if c.id == "drums")
    truth = np.zeros(len(recipe["clips"]), np.float32)
    truth[index] = [max(v, 0) for v in drums.labels(clips)]

    def score(query):  # "drum kit" knows the labels, the rest reverse them
        return truth if query == "drum kit" else -truth

    rows = wordings.rows_for_part(recipe, index, score, {})
    row = next(r for r in rows if r["concept"] == "drums")
    assert row["wordings"]["drum kit"] == 1.0
    assert row["wordings"]["percussion"] == 0.0
    assert row["check"] == {"drums": 0.0}
    assert row["mean_wordings"] == pytest.approx(1 / len(wordings.WORDINGS["drums"]))


def test_voice_rows_compare_the_stated_genders_and_no_voice():
    """wordings.voice_rows: per refused voice, the AUC of a woman's voice
    over none, a man's over none and a woman's over a man's, among the
    clips whose labels state them (the report part has all three)."""
    import wordings

    recipe = check.load_recipe(check.HERE / "labels.json")
    index = check.part_index(recipe, "report")
    labels = [recipe["clips"][i]["labels"] for i in range(len(recipe["clips"]))]
    rank = {"female": 2.0, "male": 0.0}
    truth = np.array(
        [
            1.0
            if lab.get("vocals") is False
            else rank.get(lab.get("vocal_gender"), 0.5)
            for lab in labels
        ],
        np.float32,
    )
    rows = wordings.voice_rows(recipe, index, lambda text: truth)
    assert [r["text"] for r in rows] == list(wordings.REFUSED_VOICES)
    assert rows[0]["female > none"] == 1.0
    assert rows[0]["male > none"] == 0.0
    assert rows[0]["female > male"] == 1.0
    # the choose part states no man's voice: only the woman's over none
    choose = wordings.voice_rows(
        recipe, check.part_index(recipe, "choose"), lambda t: truth
    )
    assert set(choose[0]) == {"text", "female > none"}


def test_names_count_the_labelled_clips_a_name_says_are_without():
    """names.py clusters a part, names it with the plugin's code and counts,
    per ", no X", the clips labelled with X among the named cluster's."""
    import names

    sys.path.insert(0, str(check.HERE.parents[1] / "queries"))
    from queries_helpers import audio_like, toy_embed_text

    class ToyBundle:  # the playlists' naming needs only a text tower
        embed_text = staticmethod(toy_embed_text)

    recipe = check.load_recipe(check.HERE / "labels.json")
    index = check.part_index(recipe, "choose")
    labelled = [i for i in index if recipe["clips"][i]["labels"].get("drums")]
    plain = [i for i in index if recipe["clips"][i]["labels"].get("drums") is False]
    chosen = np.array(labelled[:6] + plain[:10])
    audio = np.zeros((len(recipe["clips"]), 256), np.float32)
    # The clips with drums sound of drums, the others of "no drums": except
    # one clip with drums among those, which the name then wrongly covers.
    audio[chosen[:5]] = audio_like({"rock": 1, "guitar": 1, "drums": 2}, 5, 0.05, 0)
    quiet = {"ambient": 1, "synth": 1, "drums": -2}
    audio[chosen[5:]] = audio_like(quiet, 11, 0.05, 1)
    report = names.part_names(recipe, chosen, audio, None, ToyBundle(), k=2)
    rows = report["clusters"]
    without = [r for r in rows if r["name"].endswith(", no drums")]
    assert sum(r["clips"] for r in rows) == 16  # no cluster too small to name
    assert sum(r["clips"] for r in without) == 11
    assert sum(r["drums"][0] for r in without) == 1
    assert report["said_absent"]["drums"] == {
        "names": len(without),
        "clips_with_it": 1,
        "clips_labelled": 11,
    }


def test_vacuous_scores_each_concept_among_the_clips_without_the_negated():
    """vacuous.py: per negated attribute, a library of the part's clips
    labelled without it, the concepts judged there (never the attribute or
    what implies it) and each ranking's AUC, averaged per attribute."""
    import vacuous

    recipe = check.load_recipe(check.HERE / "labels.json")
    index = check.part_index(recipe, "choose")
    seen: list[tuple[str, str, list[int]]] = []

    def scores(text: str, attr: str, library: np.ndarray) -> dict[str, np.ndarray]:
        seen.append((text, attr, library.tolist()))
        concept = next(c for c in concepts.CONCEPTS if c.query == text)
        truth = np.array(concept.labels([recipe["clips"][i] for i in library]), float)
        # every ranking right but the negated one, which is reversed
        return {c: (-truth if c == "negated" else truth) for c in vacuous.COLUMNS}

    report = vacuous.part_rows(recipe, index, scores)
    assert set(report) == set(vacuous.NEGATED)
    for attr, got in report.items():
        labels = check.known(recipe, attr)
        library = [i for i in index.tolist() if labels[i] == 0]
        assert got["clips"] == len(library) > 0
        asked = [(t, lib) for t, a, lib in seen if a == attr]
        assert asked
        assert all(lib == library for _, lib in asked)
        judged = {r["concept"] for r in got["rows"]}
        assert judged
        assert not judged & vacuous.NEGATED[attr]
        for row in got["rows"]:
            assert min(row["n_pos"], row["n_neg"]) >= concepts.MIN_POSITIVES
            assert row["plain"] == row["penalty"] == 1.0
            assert row["negated"] == 0.0
        assert got["mean"]["plain"] == 1.0
        assert got["mean"]["negated"] == 0.0
    # drums are judged among the clips without vocals, vocals never are
    assert "drums" in {r["concept"] for r in report["vocals"]["rows"]}
    assert "vocals" in {r["concept"] for r in report["drums"]["rows"]}


def test_speech_rows_hold_negated_music_queries_against_speech_alone():
    """check.speech_rows: a music query that negates an instrument is
    answered by the music without it (NEGATED's labels) and held against
    speech alone; a ranking that puts speech first says so."""
    recipe = check.load_recipe(check.HERE / "labels.json")
    clips = [recipe["clips"][i] for i in check.part_index(recipe, "report")]
    negated = {c.id: c for c in concepts.NEGATED}
    speech = np.array([concepts.music(c["labels"]) == 0 for c in clips])
    scores = {}
    for query, concept in concepts.NEGATED_MUSIC_QUERIES:
        answers = np.array(negated[concept].labels(clips)) == 1
        # speech alone first, then the answers, then the rest
        scores[query] = 2.0 * speech + 1.0 * answers
    rows = {r["query"]: r for r in check.speech_rows(clips, {"t": scores})}
    scored = {q for q, r in rows.items() if "auc_t" in r}
    assert scored == {q for q, _ in concepts.NEGATED_MUSIC_QUERIES}
    for query, concept in concepts.NEGATED_MUSIC_QUERIES:
        row = rows[query]
        answers = np.array(negated[concept].labels(clips)) == 1
        assert row["n_music"] == int(answers.sum())
        assert row["n_speech"] == int(speech.sum()) >= 10
        assert row["auc_t"] == 0.0
        assert row["first_speech_rank_t"] == 1
        assert row["speech_in_top10_t"] == 10
    flipped = {q: -s for q, s in scores.items()}
    for row in check.speech_rows(clips, {"t": flipped}):
        if row["query"] not in scored:
            continue
        assert row["auc_t"] == 1.0
        assert row["speech_in_top10_t"] == 0
        assert row["first_speech_rank_t"] == row["n_music"] + 1


def test_conjunctions_ask_for_two_things_and_judge_the_clips_with_both():
    """conjunctions.py: descriptions of two concepts of different families,
    answered by the clips labelled with both; a scorer that knows the answer
    gets every column's AUC and R-precision at 1."""
    import conjunctions

    asked = conjunctions.descriptions()
    texts = {t for t, _, _, _ in asked}
    assert "metal with male vocals" in texts
    assert "electronic music with drums" in texts
    assert "piano with drums" in texts
    assert "piano and flute" in texts
    assert "piano or flute" in texts
    assert "violin with strings" not in texts  # one family
    assert "vocals with metal" not in texts  # the genre reads first
    assert "drums and vocals" not in texts  # a voice reads after "with"
    recipe = check.load_recipe(check.HERE / "labels.json")
    index = check.part_index(recipe, "choose")
    clips = recipe["clips"]  # a scorer scores every clip, as one library
    by_text = {t: (a, b, k) for t, a, b, k in asked}

    def scores(text: str) -> dict[str, np.ndarray]:
        a, b, kind = by_text[text]
        labels = conjunctions.both if kind == "together" else conjunctions.either
        truth = labels(a, b, clips).astype(float)
        return dict.fromkeys(conjunctions.COLUMNS, truth)

    report = conjunctions.part_rows(recipe, index, scores)
    assert report["rows"]
    for row in report["rows"]:
        assert min(row["n_pos"], row["n_neg"]) >= concepts.MIN_POSITIVES
        for c in conjunctions.COLUMNS:
            assert row[f"auc_{c}"] == 1.0
            assert row[f"rprec_{c}"] == 1.0
    assert set(report["mean"]) == {"together", "alternatives"}
    assert report["mean"]["together"]["auc_plugin"] == 1.0
    assert report["mean"]["alternatives"]["rprec_text"] == 1.0
    metal = next(r for r in report["rows"] if r["query"] == "metal with guitar")
    labels = conjunctions.both(
        next(c for c in concepts.CONCEPTS if c.id == "rock/metal"),
        next(c for c in concepts.CONCEPTS if c.id == "guitar"),
        [recipe["clips"][i] for i in index],
    )
    assert metal["n_pos"] == int((labels == 1).sum())
    assert metal["n_neg"] == int((labels == 0).sum())
    piano, flute = (
        next(c for c in concepts.CONCEPTS if c.id == i) for i in ("piano", "flute")
    )
    labels = conjunctions.either(piano, flute, [recipe["clips"][i] for i in index])
    alt = next(r for r in report["rows"] if r["query"] == "piano or flute")
    assert alt["kind"] == "alternatives"
    assert alt["n_pos"] == int((labels == 1).sum())
    assert alt["n_neg"] == int((labels == 0).sum())
