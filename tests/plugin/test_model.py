"""Bundle validation and inference on tiny ONNX bundles."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bundle_factory import build_tiny_bundle, write_manifest
from clap_helpers import signal_for

from beetsplug.clap import meanings, model
from beetsplug.clap.model import Bundle, BundleError


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(bundle, dst)
    return dst


def _edit_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            manifest[section][key] = value
        else:
            manifest[section] = value
    path.write_text(json.dumps(manifest))


def test_load_reads_manifest_and_identity(tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle, threads=1)
    raw = (tiny_bundle / "manifest.json").read_bytes()
    assert bundle.identity == hashlib.sha256(raw).hexdigest()
    assert (bundle.embedding_dim, bundle.sample_rate, bundle.window_seconds) == (
        8,
        16000,
        1.0,
    )
    assert bundle.max_windows == 4
    assert bundle.window_samples == 16000
    assert bundle.tag_names == []
    assert not bundle.has_tags
    assert bundle.label.startswith("clap-tiny 0.1.0 (")


def test_audio_and_text_embeddings_are_unit_and_aligned(tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle)
    windows = np.stack([signal_for(k, 1.0, 16000) for k in ("low", "high", "noise")])
    emb, tags = bundle.embed_audio(windows)
    assert tags is None
    assert emb.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    text = bundle.embed_text(["low", "high", "noise"])
    sims = text @ emb.T
    # Each word is closest to its own sound: the diagonal wins every row.
    assert list(sims.argmax(axis=1)) == [0, 1, 2]


def test_attribute_embeddings_are_text_embeddings_remembered(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = Bundle.load(tiny_bundle)
    words = ["noise", "high", "noise"]
    got = bundle.embed_attributes(words)
    np.testing.assert_array_equal(got, bundle.embed_text(words))
    assert bundle.embed_attributes([]).shape == (0, 8)
    # Remembered: a second call runs no text, in any order.
    bundle._text = None  # type: ignore[assignment]  # any graph run would fail
    np.testing.assert_array_equal(
        bundle.embed_attributes(["high", "noise"]), got[1::-1]
    )
    with pytest.raises(AttributeError):
        bundle.embed_attributes(["low"])
    # Bounded: past the limit, what was remembered is dropped, not grown.
    fresh = Bundle.load(tiny_bundle)
    monkeypatch.setattr(model, "MAX_REMEMBERED_ATTRIBUTES", 2)
    fresh.embed_attributes(["low", "high"])
    fresh.embed_attributes(["noise"])
    assert set(fresh._attributes) == {"noise"}
    fresh.forget_attributes()
    assert not fresh._attributes


def test_embed_audio_batches_beyond_one_session_run(tiny_bundle: Path) -> None:
    bundle = Bundle.load(tiny_bundle)
    windows = np.stack([signal_for("low", 1.0, 16000)] * (model.AUDIO_BATCH + 3))
    emb, _ = bundle.embed_audio(windows)
    assert emb.shape == (model.AUDIO_BATCH + 3, 8)
    np.testing.assert_allclose(emb[0], emb[-1], atol=1e-6)


def test_tokenizer_padding_from_json_is_disabled_and_long_text_truncated(
    tiny_bundle: Path,
) -> None:
    bundle = Bundle.load(tiny_bundle)
    # tokenizer.json pads to 32; the plugin pads to the longest text only.
    feed = bundle.tokenize(["low", "low high noise"])
    assert feed["input_ids"].shape == (2, 3)
    assert feed["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    long = bundle.tokenize(["low " * 10_000])
    assert long["input_ids"].shape == (1, bundle.max_tokens)
    assert bundle.embed_text(["low " * 10_000]).shape == (1, 8)


def test_token_type_ids_fed_when_the_graph_declares_them(tmp_path: Path) -> None:
    path = build_tiny_bundle(tmp_path / "b", with_token_type_ids=True)
    bundle = Bundle.load(path)
    assert "token_type_ids" in bundle.tokenize(["low"])
    plain = Bundle.load(build_tiny_bundle(tmp_path / "c"))
    np.testing.assert_allclose(
        bundle.embed_text(["low"]), plain.embed_text(["low"]), atol=1e-6
    )


def test_tags_output_is_read(tagged_bundle: Path) -> None:
    bundle = Bundle.load(tagged_bundle)
    assert bundle.tag_names == ["low", "high", "noise"]
    _, tags = bundle.embed_audio(np.stack([signal_for("low", 1.0, 16000)]))
    assert tags is not None
    assert tags.shape == (1, 3)
    assert tags[0, 0] > 0.9 > tags[0, 1]


def test_missing_folder(tmp_path: Path) -> None:
    # The plugin's hint names its own setting (the trainer passes its option).
    with pytest.raises(BundleError) as caught:
        Bundle.load(tmp_path / "nope")
    assert str(caught.value) == (
        f"model bundle {tmp_path / 'nope'}: not a folder "
        "(set clap.model to a bundle folder)"
    )


@pytest.mark.parametrize("method", ["embed_text", "embed_attributes", "tokenize"])
def test_a_bare_string_is_refused_not_read_as_characters(
    tiny_bundle: Path, method: str
) -> None:
    # A str is a sequence of one-character strings: taken as texts, it gave
    # one embedding per character and no error.
    bundle = Bundle.load(tiny_bundle)
    with pytest.raises(TypeError) as caught:
        getattr(bundle, method)("jazz without drums")
    assert str(caught.value) == (
        f"Bundle.{method} takes a list of texts, not a str: pass ['jazz without drums']"
    )
    # A list of one text is one text.
    one = getattr(bundle, method)(["jazz without drums"])
    assert len(one["input_ids"] if method == "tokenize" else one) == 1


def test_missing_manifest(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "manifest.json").unlink()
    with pytest.raises(
        BundleError, match=r"^model bundle .*: manifest.json is missing$"
    ):
        Bundle.load(bundle)


def test_manifest_not_json(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest.json is not valid JSON"):
        Bundle.load(bundle)


def test_missing_file(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "audio.onnx").unlink()
    with pytest.raises(BundleError, match=r"^model bundle .*: audio.onnx is missing$"):
        Bundle.load(bundle)


def test_sha256_mismatch(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    with open(bundle / "text.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(
        BundleError,
        match=r"^model bundle .*: "
        r"text.onnx sha256 mismatch \(file changed or corrupt\)$",
    ):
        Bundle.load(bundle)


def test_dimension_mismatch_with_graph(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    _edit_manifest(bundle, embedding_dim=16)
    with pytest.raises(
        BundleError,
        match=r"audio.onnx embedding dimension 8 != manifest embedding_dim 16",
    ):
        Bundle.load(bundle)


def test_tag_count_mismatch(tagged_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tagged_bundle, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["audio"]["tags"] = ["low", "high"]
    write_manifest(bundle, manifest)
    with pytest.raises(
        BundleError, match=r"has 3 tag outputs but manifest lists 2 tags"
    ):
        Bundle.load(bundle)


def test_manifest_tags_without_a_tags_output(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["audio"]["tags"] = ["vocals"]
    write_manifest(bundle, manifest)
    message = r"manifest lists 1 tags but audio.onnx has no 'tags' output$"
    with pytest.raises(BundleError, match=message):
        Bundle.load(bundle)
    # A search needs only the text tower: audio.onnx is opened (and checked)
    # when audio is first embedded, and fails the same way then.
    lazy = Bundle.load(bundle, audio=False)
    assert lazy.embed_text(["low"]).shape == (1, 8)
    with pytest.raises(BundleError, match=message):
        lazy.embed_audio(np.zeros((1, lazy.window_samples), np.float32))


def test_audio_opens_on_first_use(tagged_bundle: Path) -> None:
    eager = Bundle.load(tagged_bundle)
    lazy = Bundle.load(tagged_bundle, audio=False)
    assert lazy.has_tags
    assert lazy.tag_names == eager.tag_names
    windows = np.random.default_rng(0).normal(size=(3, lazy.window_samples))
    got, want = lazy.embed_audio(windows), eager.embed_audio(windows)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": 2}, r"unsupported manifest format 2"),
        ({"audio__sample_rate": 0}, r"audio.sample_rate 0 is not an integer"),
        ({"audio__window_seconds": -1}, r"audio.window_seconds -1 is not a number"),
        ({"audio__max_windows": 0}, r"audio.max_windows must be an integer in 1..1000"),
        # (a SQLite overflow after the whole run's decoding, before)
        ({"audio__max_windows": 10**20}, r"audio.max_windows must be an integer in"),
        ({"text__max_tokens": "64"}, r"text.max_tokens must be an integer in 1..4096"),
        ({"text__max_tokens": 10**20}, r"text.max_tokens must be an integer in"),
        (
            {"query": {"negation_weight": float("nan")}},
            r"query.negation_weight nan is not a number in 0..10",
        ),
        (
            {"query": {"negation_weight": 1e308}},
            r"query.negation_weight 1e\+308 is not a number in 0..10",
        ),
        (
            {"query": {"negation_weight": "x"}},
            r"query.negation_weight 'x' is not a number in 0..10",
        ),
        (
            {"query": {"negation_weight": -5}},
            r"query.negation_weight -5 is not a number in 0..10",
        ),
        ({"query": [1]}, r"query must be an object"),
        (
            {"audio__file": "other.onnx"},
            r"audio.file 'other.onnx' is not listed in 'files'",
        ),
        ({"embedding_dim": True}, r"embedding_dim must be a positive integer"),
    ],
)
def test_manifest_values_are_checked(
    tiny_bundle: Path, tmp_path: Path, change: dict, message: str
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    _edit_manifest(bundle, **change)
    with pytest.raises(BundleError, match=message):
        Bundle.load(bundle)


def test_default_bundle_from_models_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, installed = tmp_path / "repo-models", tmp_path / "share-models"
    source.mkdir()
    installed.mkdir()
    monkeypatch.setattr(model, "models_roots", lambda: [source, installed])
    with pytest.raises(BundleError, match=r"^no model bundle found: set clap.model"):
        model.default_bundle_path()
    (installed / "DEFAULT").write_text("clap-installed\n")
    assert model.default_bundle_path() == installed / "clap-installed"
    (source / "DEFAULT").write_text("clap-source\n")
    assert model.default_bundle_path() == source / "clap-source"


def test_default_bundle_loads_when_clap_model_is_empty(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(tiny_bundle, tmp_path / "clap-tiny")
    (tmp_path / "DEFAULT").write_text("clap-tiny")
    monkeypatch.setattr(model, "models_roots", lambda: [tmp_path])
    assert Bundle.load(None).path == tmp_path / "clap-tiny"


def test_l2_normalize_keeps_zero_rows_zero() -> None:
    out = model.l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert not np.isnan(out).any()


# --------------------------------------------------------------------------
# Tag meanings
# --------------------------------------------------------------------------


def test_tag_meanings_fixed_in_the_manifest_are_read(
    tagged_bundle: Path, tmp_path: Path
) -> None:
    """The manifest's meanings win over what the names would read as: they
    were fixed when the bundle was made."""
    bundle = _copy(tagged_bundle, tmp_path)
    _edit_manifest(
        bundle,
        audio__tag_meanings=[
            {"concept": "bass", "absent": []},
            {"concept": None, "absent": ["vocals"]},
            {"concept": None, "absent": []},
        ],
    )
    loaded = Bundle.load(bundle, audio=False)
    assert loaded.tag_names == ["low", "high", "noise"]
    assert loaded.tag_meanings == (("bass", ()), (None, ("vocals",)), (None, ()))


def test_tag_meanings_are_read_from_names_without_the_field(
    tmp_path: Path,
) -> None:
    """Bundles made before export fixed the meanings: read from the names
    once, a tagger's prefix left out."""
    path = build_tiny_bundle(
        tmp_path / "b",
        with_tags=True,
        tag_names=["no vocals", "msd:female vocalists", "msd:weird"],
    )
    loaded = Bundle.load(path, audio=False)
    assert "tag_meanings" not in loaded.manifest["audio"]
    assert loaded.tag_meanings == (
        (None, ("vocals",)),
        ("female vocals", ()),
        (None, ()),
    )
    assert meanings.tag_label("msd:80s") == "80s"
    assert meanings.tag_label("r&b: live") == "r&b: live"


@pytest.mark.parametrize(
    ("meanings", "message"),
    [
        ("vocals", r"audio.tag_meanings must list one meaning for each of the 3 tags"),
        (
            [{"concept": None, "absent": []}],
            r"audio.tag_meanings must list one meaning for each of the 3 tags",
        ),
        (
            [{"concept": "bass", "absent": []}] * 2 + [{"concept": "bass"}],
            r"audio.tag_meanings\[2\] must be \{\"concept\": a word or null",
        ),
        (
            [{"concept": 3, "absent": []}] * 3,
            r"audio.tag_meanings\[0\] must be",
        ),
        (
            [{"concept": None, "absent": "vocals"}] * 3,
            r"audio.tag_meanings\[0\] must be",
        ),
    ],
)
def test_malformed_tag_meanings_are_refused_in_one_line(
    tagged_bundle: Path, tmp_path: Path, meanings: object, message: str
) -> None:
    bundle = _copy(tagged_bundle, tmp_path)
    _edit_manifest(bundle, audio__tag_meanings=meanings)
    with pytest.raises(BundleError, match=r"^model bundle .*: " + message) as err:
        Bundle.load(bundle)
    assert "\n" not in str(err.value)
