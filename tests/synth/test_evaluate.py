"""The benchmark: metric functions on hand-made similarities, and one real run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from bundle_factory import build_tiny_bundle

from beetsplug.clap.model import Bundle
from trainer import evaluate, vocab
from trainer.__main__ import main as trainer_main
from trainer.evaluate import Clip, TextEmbedder
from trainer.synth.labels import present_terms


def test_target_ranks_count_ties_against_the_target() -> None:
    sim = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.5, 0.5, 0.1]])
    assert evaluate.target_ranks(sim, [0, 2, 1]).tolist() == [1, 1, 2]
    constant = np.zeros((4, 4))
    assert evaluate.target_ranks(constant, [0, 1, 2, 3]).tolist() == [4, 4, 4, 4]


def test_non_finite_similarities_rank_last() -> None:
    # A diverged model's NaN/inf scores are no evidence: a query whose
    # target scores NaN gets the worst rank, not rank 0, and an item
    # scoring NaN or inf ranks below every finite one.
    nan, inf = float("nan"), float("inf")
    sim = np.array(
        [[nan, nan, nan], [0.1, inf, 0.2], [nan, 0.3, 0.5], [0.2, 0.1, -inf]]
    )
    assert evaluate.target_ranks(sim, [0, 2, 2, 2]).tolist() == [3, 1, 1, 3]
    # Every target last of 4: mAP@10 is 1/4 (finite; it was inf at rank 0).
    metrics = evaluate.retrieval_metrics(np.full((4, 4), nan), range(4))
    assert (metrics["R@1"], metrics["mAP@10"], metrics["median_rank"]) == (
        0.0,
        0.25,
        4.0,
    )
    assert evaluate.recall_curve(np.full((4, 4), nan), range(4)) == [0, 0, 0, 1]
    scores = np.array([nan, inf, 0.5, 0.9, -inf])
    relevant = np.array([False, False, True, True, True])
    violating = np.array([False, True, False, False, False])
    # Top 3: 0.9 and 0.5, then the first non-finite in item order (not inf first).
    assert evaluate.topk_precision_violation(scores, relevant, violating) == (
        2 / 3,
        0.0,
    )


def test_recall_map_and_median_rank() -> None:
    ranks = np.array([1, 3, 12, 5])
    assert evaluate.recall_at(ranks, 1) == 0.25
    assert evaluate.recall_at(ranks, 5) == 0.75
    assert evaluate.recall_at(ranks, 10) == 0.75
    assert evaluate.map_at(ranks, 10) == pytest.approx((1 + 1 / 3 + 0 + 1 / 5) / 4)
    perfect = evaluate.retrieval_metrics(np.eye(5), range(5))
    assert perfect == {
        "R@1": 1.0,
        "R@5": 1.0,
        "R@10": 1.0,
        "mAP@10": 1.0,
        "median_rank": 1.0,
        "queries": 5,
    }
    # Each query's target is second best: R@1 0, R@5 1, mAP 1/2, median rank 2.
    sim = np.eye(4) * 0.5 + np.roll(np.eye(4), 1, axis=1)
    second = evaluate.retrieval_metrics(sim, range(4))
    assert (second["R@1"], second["R@5"], second["mAP@10"], second["median_rank"]) == (
        0.0,
        1.0,
        0.5,
        2.0,
    )
    assert evaluate.recall_curve(sim, range(4)) == [0.0, 1.0, 1.0, 1.0]


def test_binary_accuracy_counts_strict_wins() -> None:
    assert evaluate.binary_accuracy(
        np.array([1, 2, 3]), np.array([0, 2, 4])
    ) == pytest.approx(1 / 3)


def test_topk_precision_and_violation() -> None:
    scores = np.arange(12, 0, -1, dtype=float)  # item 0 ranks first
    relevant = np.zeros(12, bool)
    relevant[[0, 2, 4, 6, 8, 10, 11]] = True
    violating = np.zeros(12, bool)
    violating[[1, 3]] = True
    # Top 7 (k capped at 7 relevant items): items 0..6 -> 4 relevant, 2 violating.
    assert evaluate.topk_precision_violation(scores, relevant, violating) == (
        4 / 7,
        2 / 7,
    )
    assert evaluate.topk_precision_violation(scores, relevant, violating, k=2) == (
        0.5,
        0.5,
    )
    none = evaluate.topk_precision_violation(scores, np.zeros(12, bool), violating)
    assert np.isnan(none[0])
    assert np.isnan(none[1])


def _clip(
    i: int,
    tags: list[str],
    style: str,
    pair: str | None = None,
    attr: str | None = None,
) -> Clip:
    present = present_terms(tags) | {style}
    return Clip(
        f"c{i}",
        Path(f"/x/c{i}.flac"),
        tags,
        {},
        {"style": style},
        None,
        pair,
        attr,
        f"b{i}",
        present,
    )


def _five_clips() -> list[Clip]:
    """Jazz with piano (one with vocals), jazz with saxophone, rock with
    violin (one with vocals)."""
    return [
        _clip(0, ["jazz", "piano", "vocals"], "jazz"),
        _clip(1, ["jazz", "piano"], "jazz"),
        _clip(2, ["jazz", "saxophone"], "jazz"),
        _clip(3, ["rock", "violin", "vocals"], "rock"),
        _clip(4, ["rock", "violin"], "rock"),
    ]


def test_negated_queries_relevance_and_implications() -> None:
    clips = _five_clips()
    queries = {q.text: q for q in evaluate.negated_queries(clips, min_relevant=1)}
    q = queries["jazz without vocals"]
    assert q.relevant.tolist() == [False, True, True, False, False]
    assert q.violating.tolist() == [True, False, False, True, False]
    assert "jazz, no vocals" in queries
    # A violin implies strings: "violin without strings" can never be satisfied.
    assert not any(t.startswith("violin without strings") for t in queries)
    # No clip has both rock and piano: "rock without piano" would not discriminate.
    assert "rock without piano" not in queries
    assert "jazz without vocals" not in {
        q.text for q in evaluate.negated_queries(clips, min_relevant=3)
    }


def test_conjunctive_queries_want_both() -> None:
    clips = _five_clips()
    queries = {q.text: q for q in evaluate.conjunctive_queries(clips, min_relevant=1)}
    q = queries["jazz with piano"]
    assert q.relevant.tolist() == [True, True, False, False, False]
    assert q.partial.tolist() == [False, False, True, False, False]
    assert "jazz and piano" in queries
    # A violin implies strings: "violin with strings" asks for one thing.
    assert not any(t.startswith("violin with strings") for t in queries)
    # No clip has rock and piano: nothing to find.
    assert "rock with piano" not in queries
    # A clip with one of the two only is partial, whichever it has.
    assert queries["jazz with vocals"].partial.tolist() == [
        False, True, True, True, False
    ]  # fmt: skip
    assert "jazz with piano" not in {
        q.text for q in evaluate.conjunctive_queries(clips, min_relevant=3)
    }


def test_conjunctive_retrieval_wants_each_attribute() -> None:
    # The text cannot tell the clips apart; the tagger can. Clip 2 has some
    # piano and some drums, clips 0 and 1 only one of them, strongly: the
    # plugin's ranking (geometric mean) puts clip 2 first, the averaged
    # evidence a one-attribute clip, the text alone clip 0 (a tie).
    clips = [  # no style: "piano with drums" is the only pair
        _clip(0, ["piano"], ""),
        _clip(1, ["drums"], ""),
        _clip(2, ["piano", "drums"], ""),
        _clip(3, [], ""),
    ]
    tags = np.array([[1.0, 0.0], [0.0, 1.0], [0.4, 0.4], [0.0, 0.0]], np.float32)
    audio = np.array([[1.0, 0.0]] * 4, np.float32)

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([[1.0, 0.0]] * len(texts), np.float32)

    got = evaluate.conjunctive_retrieval(
        audio, clips, embed, 0.5, 1, tags, ["piano", "drums"], 1.0, 0.2
    )
    assert got["plugin"]["queries"] == 2  # "piano with drums", "piano and drums"
    assert set(got["plugin"]["by_form"]) == set(evaluate.CONJUNCTIVE_FORMS)
    assert got["plugin"]["precision_at_10"] == 1.0
    assert got["plugin"]["partial_rate"] == 0.0
    assert got["mean"]["precision_at_10"] == 0.0
    assert got["mean"]["partial_rate"] == 1.0
    assert got["text"]["precision_at_10"] == 0.0
    empty = evaluate.conjunctive_retrieval(audio, clips[:1], embed, 0.5, 1)
    assert empty["plugin"] == {
        "queries": 0, "precision_at_10": None, "partial_rate": None
    }  # fmt: skip


class _Table:
    """A text encoder written out by hand: each text has a fixed vector."""

    embedding_dim = 2

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def embed_text(self, texts):
        return np.array([self.table[t] for t in texts], dtype=np.float32)


def _pair_prompts(term: str, style: str) -> tuple[list[str], list[str]]:
    pos = [t.format(x=term, style=style) for t in evaluate.PAIR_POSITIVE]
    neg = [t.format(x=term, style=style) for t in evaluate.PAIR_NEGATIVE]
    return pos, neg + list(evaluate.PAIR_NEGATIVE_EXTRA.get(term, ()))


def test_minimal_pair_accuracy_both_directions() -> None:
    clips = [
        _clip(0, ["rock", "piano", "drums"], "rock", "p:drums", "drums"),
        _clip(1, ["rock", "piano"], "rock", "p:drums", "drums"),
        _clip(2, ["pop", "piano"], "pop", "q:vocals", "vocals"),
        _clip(3, ["pop", "piano", "choir", "vocals"], "pop", "q:vocals", "vocals"),
    ]
    pairs = evaluate.minimal_pairs(clips)
    assert sorted(pairs) == sorted(
        [("drums", 0, 1, "rock"), ("vocals", 3, 2, "pop"), ("choir", 3, 2, "pop")]
    )
    audio = np.array([[1, 0], [0, 1], [0, 1], [1, 0]], dtype=np.float32)
    aware, blind = {}, {}
    for term, style in (("drums", "rock"), ("vocals", "pop"), ("choir", "pop")):
        pos, neg = _pair_prompts(term, style)
        aware |= {t: [1.0, 0.0] for t in pos} | {t: [0.0, 1.0] for t in neg}
        blind |= {t: [1.0, 0.0] for t in pos + neg}  # "no X" read as "X"
    good = evaluate.pair_accuracy(audio, clips, TextEmbedder(_Table(aware)))
    assert good["drums"] == 1.0
    assert good["vocals"] == 1.0
    assert good["attributes"]["choir"] == {
        "pairs": 1,
        "with": 1.0,
        "without": 1.0,
        "accuracy": 1.0,
    }
    assert good["instruments_mean"] == 1.0
    assert good["pairs"] == 2
    bad = evaluate.pair_accuracy(audio, clips, TextEmbedder(_Table(blind)))
    assert bad["attributes"]["drums"] == {
        "pairs": 1,
        "with": 1.0,
        "without": 0.0,
        "accuracy": 0.5,
    }


def test_negation_protocols_on_known_similarities() -> None:
    clips = [
        _clip(0, ["jazz", "piano", "slow tempo"], "jazz"),
        _clip(1, ["rock", "drums", "fast tempo"], "rock"),
    ]
    audio = np.array([[1, 0], [0, 1]], dtype=np.float32)
    table = {}
    import random
    import zlib

    for i, clip in enumerate(clips):
        rng = random.Random(zlib.crc32(clip.track_id.encode()))
        original, half, full = vocab.negated_variants(clip.tags, rng)
        own, other = (
            [1.0, 0.0] if i == 0 else [0.0, 1.0],
            [0.0, 1.0] if i == 0 else [1.0, 0.0],
        )
        table |= {original: own, half: [0.7, 0.7], full: other}
    res = evaluate.negation_protocols(audio, clips, TextEmbedder(_Table(table)))
    assert res["binary"] == {
        "original_vs_full": 1.0,
        "original_vs_half": 1.0,
        "half_vs_full": 1.0,
    }
    assert res["retrieval"]["original"]["R@1"] == 1.0
    assert res["retrieval"]["full"]["R@1"] == 0.0
    assert res["clips"] == 2


def test_npy_clips_are_windowed_like_files(corpus: Path, tmp_path: Path) -> None:
    import soundfile as sf

    bundle = Bundle.load(
        build_tiny_bundle(tmp_path / "b", window_seconds=1.0, max_windows=3)
    )
    flac = next((corpus / "audio" / "test").glob("*.flac"))
    audio, _rate = sf.read(flac, dtype="float32")
    npy = tmp_path / "clip.npy"
    np.save(npy, audio)
    from_file = evaluate.clip_windows(bundle, flac)
    from_npy = evaluate.clip_windows(bundle, npy)
    assert from_file.shape == from_npy.shape == (3, 16000)
    np.testing.assert_allclose(from_npy, from_file, atol=1e-6)


def test_evaluate_end_to_end(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # The model has a tagger whose outputs the parser can match ("drums"),
    # the baseline has none: both kinds of layer 2 run.
    model = build_tiny_bundle(
        tmp_path / "models" / "tiny",
        window_seconds=1.0,
        max_windows=3,
        with_tags=True,
        tag_names=["drums", "vocals", "noise"],
    )
    other = build_tiny_bundle(
        tmp_path / "models" / "rnd",
        window_seconds=1.0,
        max_windows=3,
        seed=5,
        name="random-tiny",
    )
    out = tmp_path / "eval"
    argv = [
        "--bundle",
        str(model),
        "--data",
        str(corpus),
        "--baseline",
        f"random={other}",
        "--out",
        str(out),
        "--min-relevant",
        "1",
        "--negation-weight",
        "0.7",
        "--tag-weight",
        "0.4",
        "--affirmed-tag-weight",
        "0.25",
        "--quiet",
    ]
    assert trainer_main(["evaluate", *argv]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["splits"] == ["test", "test_shift"]
    assert set(result["baselines"]) == {"random"}
    assert result["negation_weight"] == 0.7
    assert result["affirmed_tag_weight"] == 0.25
    assert json.loads(Path(result["outputs"]["json"]).read_text()) == result
    assert Path(result["outputs"]["png"]).stat().st_size > 10_000
    for model_result in (result["model"], result["baselines"]["random"]):
        for split in ("test", "test_shift"):
            r = model_result["results"][split]
            assert r["clips"] > 0
            assert r["skipped"] == {}
            assert set(r["text_to_music"]) == {
                "R@1",
                "R@5",
                "R@10",
                "mAP@10",
                "median_rank",
                "queries",
            }
            assert set(r["negation"]["binary"]) == {
                "original_vs_full",
                "original_vs_half",
                "half_vs_full",
            }
            assert set(r["negation"]["retrieval"]) == {"original", "half", "full"}
            assert r["minimal_pairs"]["pairs"] >= 1
            conj = r["conjunctions"]
            assert set(conj) == {"plugin", "mean", "text"}
            assert conj["plugin"]["queries"] == conj["text"]["queries"]
            nr = r["negated_retrieval"]
            assert set(nr) == {
                "plain",
                "parsed",
                "a_minus_b",
                "parsed_sweep",
                "tag_sweep",
                "affirmed_sweep",
            }
            assert nr["plain"]["queries"] > 0
            assert 0 <= nr["plain"]["precision_at_10"] <= 1
            assert nr["parsed"]["weight"] == 0.7
            tagged = model_result is result["model"]
            assert nr["parsed"]["tag_weight"] == (0.4 if tagged else 0.0)
            assert [s["tag_weight"] for s in nr["tag_sweep"]] == (
                sorted({*evaluate.TAG_WEIGHT_SWEEP, 0.4}) if tagged else []
            )
            assert nr["parsed"]["affirmed_tag_weight"] == (0.25 if tagged else 0.0)
            assert [s["affirmed_tag_weight"] for s in nr["affirmed_sweep"]] == (
                sorted({*evaluate.AFFIRMED_TAG_WEIGHT_SWEEP, 0.25}) if tagged else []
            )
            assert [s["weight"] for s in nr["parsed_sweep"]] == sorted(
                {*evaluate.WEIGHT_SWEEP, 0.7}
            )
    # Two bundles, two sets of numbers; embeddings were cached per bundle and split.
    random_result = result["baselines"]["random"]
    assert result["model"]["identity"] != random_result["identity"]
    assert result["model"]["results"] != random_result["results"]
    caches = sorted((out / "cache").glob("*.npz"))
    assert len(caches) == 4  # 2 bundles x 2 splits
    mtimes = [p.stat().st_mtime_ns for p in caches]
    assert trainer_main(["evaluate", *argv]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [p.stat().st_mtime_ns for p in caches] == mtimes
    assert again["model"]["results"] == result["model"]["results"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--baseline", "random"],
            "evaluate: error: --baseline 'random': expected NAME=DIR",
        ),
        (
            ["--split", "nope"],
            "evaluate: error: {data}/captions/nope.parquet not found "
            "(is {data} a data directory with a nope split?)",
        ),
        (
            ["--tag-weight", "11"],
            "evaluate: error: --tag-weight must be a number in 0..10",
        ),
        (
            ["--affirmed-tag-weight", "-1"],
            "evaluate: error: --affirmed-tag-weight must be a number in 0..10",
        ),
        (
            ["--negation-weight", "nan"],
            "evaluate: error: --negation-weight must be a number in 0..10",
        ),
        (
            ["--negation-weight", "-0.5"],
            "evaluate: error: --negation-weight must be a number in 0..10",
        ),
    ],
)
def test_bad_input_is_one_line(
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    extra: list[str],
    message: str,
) -> None:
    model = build_tiny_bundle(tmp_path / "tiny", window_seconds=1.0)
    argv = ["--bundle", str(model), "--data", str(corpus), "--quiet", *extra]
    assert trainer_main(["evaluate", *argv]) == 2
    assert capsys.readouterr().err.strip() == message.format(data=corpus)


def test_a_missing_bundle_names_the_trainer_option(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The trainer's message names its own option, not the plugin's
    clap.model setting; a bad baseline is found before any evaluation."""
    nope = tmp_path / "nope"
    argv = ["evaluate", "--data", str(corpus), "--quiet", "--out", str(tmp_path)]
    assert trainer_main([*argv, "--bundle", str(nope)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"evaluate: error: --bundle: model bundle {nope}: not a folder "
        "(give a bundle folder)"
    )
    model = build_tiny_bundle(tmp_path / "tiny", window_seconds=1.0)
    argv += ["--bundle", str(model), "--baseline", f"random={nope}"]
    assert trainer_main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"evaluate: error: --baseline random: model bundle {nope}: not a folder "
        "(give a bundle folder)"
    )
    assert not (tmp_path / "cache").exists()  # the model was not embedded first


def test_a_folder_that_is_no_bundle_names_the_option(
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--baseline NAME=DIR and --bundle name the option at fault; a training
    run (its folder or one of its checkpoints) is told to be exported."""
    monkeypatch.chdir(tmp_path)
    empty, run = tmp_path / "dA", tmp_path / "run"
    empty.mkdir()
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"x")
    model = build_tiny_bundle(tmp_path / "tiny", window_seconds=1.0)
    argv = ["evaluate", "--data", str(corpus), "--quiet", "--out", str(tmp_path)]
    assert trainer_main([*argv, "--bundle", str(model), "--baseline", "x=dA"]) == 2
    assert capsys.readouterr().err == (
        "evaluate: error: --baseline x: model bundle dA: manifest.json is missing\n"
    )
    export = f"export it first, python -m trainer export --run-dir {run} --out BUNDLE"
    assert trainer_main([*argv, "--bundle", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"evaluate: error: --bundle: model bundle {run}: manifest.json is missing "
        f"({run} is a training run: {export})\n"
    )
    latest = run / "checkpoints" / "latest.pt"
    assert trainer_main([*argv, "--bundle", str(latest)]) == 2
    assert capsys.readouterr().err == (
        f"evaluate: error: --bundle: model bundle {latest}: not a folder "
        f"(give a bundle folder) ({run} is a training run: {export})\n"
    )


def test_a_report_on_another_data_folder_of_that_name_is_kept(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The report's name holds only the data folder's last part: a run on
    another folder of that name is refused rather than replacing the report;
    a re-run on the same folder replaces its own. A split named twice is
    evaluated once."""
    import shutil

    other = shutil.copytree(corpus, tmp_path / "other" / corpus.name)
    model = build_tiny_bundle(tmp_path / "tiny", window_seconds=1.0)
    out = tmp_path / "ev"
    argv = ["evaluate", "--bundle", str(model), "--out", str(out), "--quiet"]
    argv += ["--split", "test", "--split", "test", "--min-relevant", "1"]
    assert trainer_main([*argv, "--data", str(corpus)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["splits"] == ["test"]
    assert list(result["model"]["results"]) == ["test"]
    report = Path(result["outputs"]["json"])
    assert report.name.endswith(f"-{corpus.name}-test.json")
    assert result["data_resolved"] == str(corpus.resolve())
    written = report.read_text()
    assert trainer_main([*argv, "--data", str(other)]) == 2
    assert capsys.readouterr().err == (
        f"evaluate: error: {report} holds a report on {corpus.resolve()}; "
        "choose another --out\n"
    )
    assert report.read_text() == written
    assert trainer_main([*argv, "--data", str(corpus)]) == 0  # a re-run
    capsys.readouterr()


def test_an_out_that_cannot_be_a_folder_is_one_line(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """--out a file, or a path the filesystem refuses (here a name too long
    for it, a plain OSError as a read-only or full disk gives), is one line
    that starts as evaluate's other errors do."""
    model = build_tiny_bundle(tmp_path / "tiny", window_seconds=1.0)
    afile, refused = tmp_path / "afile", tmp_path / ("x" * 300) / "ev"
    afile.write_text("not a folder\n")
    argv = ["evaluate", "--bundle", str(model), "--data", str(corpus), "--quiet"]
    assert trainer_main([*argv, "--out", str(afile)]) == 2
    assert capsys.readouterr().err == (
        f"evaluate: error: --out {afile} is a file, not a folder\n"
    )
    assert trainer_main([*argv, "--out", str(refused)]) == 2
    assert capsys.readouterr().err == (
        f"evaluate: error: {refused}: File name too long\n"
    )


def test_reports_of_bundles_with_one_name_are_kept_apart(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Two runs exported under the same name, evaluated into one folder:
    each report is named by its bundle's version and identity too."""
    out = tmp_path / "eval"
    results = []
    for seed in (0, 5):
        model = build_tiny_bundle(
            tmp_path / f"run{seed}" / "bundle", window_seconds=1.0, seed=seed
        )
        argv = ["--bundle", str(model), "--data", str(corpus), "--out", str(out)]
        argv += ["--split", "test", "--min-relevant", "1", "--quiet"]
        assert trainer_main(["evaluate", *argv]) == 0
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    names = set()
    for result in results:
        assert result["model"]["name"] == "clap-tiny"
        identity = result["model"]["identity"][:12]
        stem = f"clap-tiny-0.1.0-{identity}-{corpus.name}-test"
        assert result["outputs"] == {
            "json": str(out / f"{stem}.json"),
            "png": str(out / f"{stem}.png"),
        }
        assert json.loads((out / f"{stem}.json").read_text()) == result
        names.add(stem)
    assert len(names) == 2
    assert {p.stem for p in out.glob("*.json")} == names
    # another split of the same bundle: a report beside the test one
    argv = ["--bundle", str(model), "--data", str(corpus), "--out", str(out)]
    argv += ["--split", "valid", "--min-relevant", "1", "--quiet"]
    assert trainer_main(["evaluate", *argv]) == 0
    assert {p.stem for p in out.glob("*.json")} == names | {
        f"clap-tiny-0.1.0-{identity}-{corpus.name}-valid"
    }


def _without_audio(corpus: Path, out: Path, split: str, keep: int) -> Path:
    """A copy of the corpus whose `split` has only its first `keep` clips'
    audio files left."""
    import shutil

    shutil.copytree(corpus, out)
    for clip in evaluate.load_split(out, split)[keep:]:
        clip.audio.unlink()
    return out


def test_a_split_with_no_readable_clip_is_an_error(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = _without_audio(corpus, tmp_path / "data", "test", keep=0)
    first = evaluate.load_split(data, "test")[0]
    model = build_tiny_bundle(tmp_path / "tiny", window_seconds=1.0)
    out = tmp_path / "eval"
    argv = ["--bundle", str(model), "--data", str(data), "--split", "test"]
    assert trainer_main(["evaluate", *argv, "--out", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    n = len(evaluate.load_split(data, "test"))
    assert captured.err == (
        f"evaluate: error: split test: none of its {n} clips could be read "
        f"({first.audio}: file not found)\n"
    )
    assert captured.out == ""
    assert not list(out.glob("*.json"))


def test_the_log_counts_the_clips_scored(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = _without_audio(corpus, tmp_path / "data", "test", keep=1)
    total = len(evaluate.load_split(data, "test"))
    assert total > 1
    model = build_tiny_bundle(tmp_path / "tiny", window_seconds=1.0)
    argv = ["--bundle", str(model), "--data", str(data), "--split", "test"]
    assert trainer_main(["evaluate", *argv, "--min-relevant", "1"]) == 0
    captured = capsys.readouterr()
    assert (
        f"evaluate: clap-tiny on test: 1 of {total} clips scored; "
        f"{total - 1} unreadable, skipped\n" in captured.err
    )
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["model"]["results"]["test"]["clips"] == 1


def test_a_sharded_split_is_read_whole(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # The published LP-MusicCaps-MSD layout: {split}-NNNNN-of-NNNNN.parquet.
    import pyarrow.parquet as pq

    table = pq.read_table(corpus / "captions" / "test.parquet")
    half = table.num_rows // 2
    assert 0 < half < table.num_rows
    sharded = tmp_path / "sharded"
    (sharded / "captions").mkdir(parents=True)
    (sharded / "audio").symlink_to(corpus / "audio")
    for i, part in enumerate((table.slice(0, half), table.slice(half))):
        pq.write_table(part, sharded / "captions" / f"test-0000{i}-of-00002.parquet")
    whole = evaluate.load_split(corpus, "test")
    shards = evaluate.load_split(sharded, "test")
    assert [c.track_id for c in shards] == [c.track_id for c in whole]
    assert [c.audio.relative_to(sharded) for c in shards] == [
        c.audio.relative_to(corpus) for c in whole
    ]
    assert [(c.pair_id, c.present) for c in shards] == [
        (c.pair_id, c.present) for c in whole
    ]
    model = build_tiny_bundle(tmp_path / "tiny", window_seconds=1.0)
    argv = ["--bundle", str(model), "--data", str(sharded), "--quiet"]
    assert trainer_main(["evaluate", *argv, "--min-relevant", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["splits"] == ["test"]
    assert result["model"]["results"]["test"]["clips"] == table.num_rows


def test_max_clips_keeps_pairs_whole(corpus: Path) -> None:
    every = evaluate.load_split(corpus, "train")
    capped = evaluate.load_split(corpus, "train", max_clips=3)
    assert len(every) > 3
    assert len(capped) == 2  # every piece is a pair here: a third clip would split one
    assert capped[0].pair_id == capped[1].pair_id
    assert {c.track_id for c in capped} <= {c.track_id for c in every}


# Three clips the text tower cannot tell apart: only the tagger ranks them.
ALIKE = np.array([[1.0, 0.0]] * 3, np.float32)


def _tower(vectors: dict[str, list[float]]) -> Callable[[list[str]], np.ndarray]:
    """A text tower that knows only these texts' embeddings."""

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([vectors[t] for t in texts], np.float32)

    return embed


def test_parsed_scores_add_the_taggers_evidence_like_the_plugin() -> None:
    # Only the tagger's "drums" probability differs, so only layer 2 with
    # tags can rank the clips.
    tags = np.array([[0.9, 0.0], [0.1, 0.0], [0.5, 0.0]], np.float32)
    # The whole text is read restated, as the plugin reads it.
    embed = _tower({"rock without drums": [1.0, 0.0], "drums": [0.0, 1.0]})
    parsed = evaluate.parsed_scores(
        "rock, no drums", ALIKE, embed, tags, ["drums", "guitar"], tag_weight=1.0
    )
    assert parsed.negated == ["drums"]
    # As the plugin does, each tag counts relative to its top among the
    # clips (its 99th percentile there).
    drums = tags[:, 0] / np.quantile(tags[:, 0], 0.99)
    drums = np.minimum(drums, 1.0)
    np.testing.assert_allclose(parsed.score(1.0), 1 - drums, atol=1e-6)
    np.testing.assert_allclose(parsed.score(1.0, 0.0), [1.0, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(parsed.score(0.5, 0.4), 1 - 0.5 * 0.4 * drums)
    plain = evaluate.parsed_scores("rock, no drums", ALIKE, embed)  # no tags
    np.testing.assert_allclose(plain.score(1.0), [1.0, 1.0, 1.0], atol=1e-6)


def test_parsed_scores_add_the_affirmed_bonus_like_the_plugin() -> None:
    # "guitar" is wanted: with an affirmed weight, the tagger's guitar
    # probability lifts the clips the text tower cannot tell apart.
    tags = np.array([[0.0, 0.2], [0.0, 0.9], [0.0, 0.5]], np.float32)
    embed = _tower({"guitar without drums": [1.0, 0.0], "drums": [0.0, 1.0]})
    parsed = evaluate.parsed_scores(
        "guitar, no drums", ALIKE, embed, tags, ["drums", "guitar"], 1.0, 0.5
    )
    # Tags count relative to their top among the clips (the 99th
    # percentile): the drums tag never fires, so it penalises nothing.
    guitar = np.minimum(tags[:, 1] / np.quantile(tags[:, 1], 0.99), 1.0)
    np.testing.assert_allclose(parsed.score(1.0), 1 + 0.5 * guitar, atol=1e-6)
    np.testing.assert_allclose(parsed.score(1.0, None, 0.0), [1.0] * 3, atol=1e-6)
    top = evaluate.topk_precision_violation(
        parsed.score(1.0), np.array([False, True, False]), np.zeros(3, bool), k=1
    )
    assert top == (1.0, 0.0)


def test_parsed_scores_link_tags_as_the_plugin_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a bundle, layer 2 links a word the lexicon does not know
    ("treble") by the bundle's text encoder, as `beet clap` does, and scores
    exactly as search.embed_query's TextQuery."""
    from beetsplug.clap import search, taglinks

    bundle = Bundle.load(build_tiny_bundle(tmp_path / "tagged", with_tags=True))
    # Among three tags none stands out by the default threshold (a real
    # tagger has dozens): as in the plugin's own test of this link.
    monkeypatch.setattr(taglinks, "TEXT_LINK_THRESHOLD", 1.0)
    taglinks.forget_links()
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((12, bundle.embedding_dim)).astype(np.float32)
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    tags = rng.uniform(0.0, 1.0, (12, len(bundle.tag_names))).astype(np.float32)
    embed = TextEmbedder(bundle)
    for text in ("treble", "treble, no high", "noise without treble"):
        parsed = evaluate.parsed_scores(
            text, audio, embed, tags, bundle.tag_names, 1.0, 0.5, 8.0
        )
        plugin = search.embed_query(bundle, text, 0.5, 1.0, 0.5, 8.0)
        assert [m.by for m in parsed.query.affirmed_matches] == [
            m.by for m in plugin.affirmed_matches
        ], text
        np.testing.assert_allclose(
            parsed.score(0.5), plugin.score(audio, tags), atol=1e-6, err_msg=text
        )
    wanted = evaluate.parsed_scores("treble", audio, embed, tags, bundle.tag_names)
    assert wanted.query.affirmed_matches[0].by == "text encoder"
    assert wanted.query.affirmed_matches[0].present
    taglinks.forget_links()


def test_parsed_scores_push_speech_down_like_the_plugin() -> None:
    # A plain description, and one that refuses an instrument: the clip
    # that sounds like "spoken word" (its vector) drops by the speech
    # penalty; one that refuses a voice is left to its penalty.
    audio = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]], np.float32)
    embed = _tower(
        {"calm": [1.0, 0.0], "spoken word": [0.0, 1.0],
         "calm without drums": [1.0, 0.0], "drums": [0.0, 0.0],
         "calm without vocals": [1.0, 0.0], "vocals": [0.0, 0.0],
         "choir": [0.0, 0.0], "a cappella": [0.0, 0.0]}
    )  # fmt: skip
    pushed = [1.0, 0.6 - 8 * (0.8 - 0.6), 0.8]
    plain = evaluate.parsed_scores("calm", audio, embed, speech_weight=8.0)
    np.testing.assert_allclose(plain.score(0.5), pushed, atol=1e-6)
    negating = evaluate.parsed_scores("calm, no drums", audio, embed, speech_weight=8.0)
    np.testing.assert_allclose(negating.score(0.5), pushed, atol=1e-6)
    voiceless = evaluate.parsed_scores(
        "calm, no vocals", audio, embed, speech_weight=8.0
    )
    np.testing.assert_allclose(voiceless.score(0.5), audio[:, 0], atol=1e-6)
