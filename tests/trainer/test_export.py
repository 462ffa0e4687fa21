"""Export: a trained run becomes a bundle the plugin loads, with honest parity."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest_models import (
    WINDOW,
    calibration_windows,
    drum_loop,
    export_tagger,
    plucked_chords,
    sine_tone,
)

from beetsplug.clap.model import Bundle
from trainer.config import AudioModelConfig, Config, ModelConfig, TextModelConfig
from trainer.export import (
    DEFAULT_CALIBRATION_TEXTS,
    ExportError,
    ParityThresholds,
    bundle_max_tokens,
    export_bundle,
    export_model_bundle,
    last_eval_metrics,
)
from trainer.models import build_model
from trainer.models.musicnn import MTT_LABELS
from trainer.models.text import build_tokenizer, tokenize

TEXTS = ["jazz without vocals", "calm piano, no drums", "drums", "a sad cello"]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny training run: checkpoint, latest.pt, metrics.jsonl."""
    torch.manual_seed(0)
    cfg = Config(
        name="tiny",
        model=ModelConfig(
            embedding_dim=8,
            audio=AudioModelConfig(backbone="cnn", channels=4),
            text=TextModelConfig(encoder="tiny", max_tokens=16),
        ),
    )
    model = build_model(cfg.model).eval()
    run_dir = tmp_path_factory.mktemp("run")
    (run_dir / "checkpoints").mkdir()
    ckpt = run_dir / "checkpoints" / "step_0000020.pt"
    state = {"model": model.state_dict(), "step": 20, "config": cfg.to_dict()}
    torch.save({**state, "data_dir": "/data/synth", "loss": {}}, ckpt)
    shutil.copyfile(ckpt, run_dir / "checkpoints" / "latest.pt")
    lines = [
        {"step": 10, "split": "train", "loss": 2.0},
        {"step": 10, "split": "valid", "val_loss": 1.9, "t2a_R@10": 30.0},
        {"step": 20, "split": "train", "loss": 1.5},
        {"step": 20, "split": "valid", "val_loss": 1.4, "t2a_R@10": 45.0},
    ]
    text = "\n".join(json.dumps(r) for r in lines) + "\n"
    (run_dir / "metrics.jsonl").write_text(text)
    return run_dir, model


def _export_tiny(run, tmp_path_factory, folder: str, **options) -> Path:
    """The tiny run exported as clap-tiny 0.0.1 into a fresh `folder`."""
    out = tmp_path_factory.mktemp("bundles") / folder
    export_bundle(
        run[0],
        out,
        name="clap-tiny",
        version="0.0.1",
        calibration_audio=calibration_windows(),
        **options,
    )
    return out


@pytest.fixture(scope="module")
def fp32_bundle(run, tmp_path_factory):
    return _export_tiny(run, tmp_path_factory, "fp32", quantize=False)


@pytest.fixture(scope="module")
def int8_bundle(run, tmp_path_factory):
    return _export_tiny(run, tmp_path_factory, "int8", max_windows=4)


def _tiny_config(window_seconds: float = 3.0, **audio) -> Config:
    return Config(
        name="tiny",
        model=ModelConfig(
            embedding_dim=8,
            audio=AudioModelConfig(
                backbone="cnn", channels=4, window_seconds=window_seconds, **audio
            ),
            text=TextModelConfig(encoder="tiny", max_tokens=16),
        ),
    )


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    """A tiny run of 1-second windows: checkpoints at steps 5, 10 and 20,
    validations at steps 8 and 20, and a run-folder config.yaml that
    disagrees with what the checkpoints record (another name and window)."""
    torch.manual_seed(1)
    cfg = _tiny_config(window_seconds=1.0)
    model = build_model(cfg.model).eval()
    run_dir = tmp_path_factory.mktemp("short_run")
    (run_dir / "checkpoints").mkdir()
    for step in (5, 10, 20):
        state = {"model": model.state_dict(), "step": step, "config": cfg.to_dict()}
        torch.save(state, run_dir / "checkpoints" / f"step_{step:07d}.pt")
    stale = _tiny_config(window_seconds=3.0)
    stale.name = "stale"
    stale.dump(run_dir / "config.yaml")
    lines = [
        {"step": 8, "split": "train", "loss": 2.0},
        {"step": 8, "split": "valid", "val_loss": 1.9, "t2a_R@10": 30.0},
        {"step": 20, "split": "valid", "val_loss": 1.4, "t2a_R@10": 45.0},
    ]
    text = "\n".join(json.dumps(r) for r in lines) + "\n"
    (run_dir / "metrics.jsonl").write_text(text)
    return run_dir


def _torch_embeddings(model, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tok = build_tokenizer(model.config.text)
    with torch.no_grad():
        audio = model.encode_audio(torch.from_numpy(windows)).numpy()
        text = model.encode_text(**tokenize(tok, TEXTS, 16)).numpy()
    return audio, text


def test_fp32_bundle_loads_in_plugin_and_matches_torch(run, fp32_bundle):
    bundle = Bundle.load(fp32_bundle, threads=1)
    windows = calibration_windows()
    audio, text = _torch_embeddings(run[1], windows)
    got_audio, tags = bundle.embed_audio(windows)
    assert tags is None
    assert _cos(audio, got_audio).min() > 0.9999
    assert _cos(text, bundle.embed_text(TEXTS)).min() > 0.9999
    parity = bundle.manifest["parity"]
    assert parity["shipped"] == "onnx_fp32"
    assert parity["audio_cosine_min"] > 0.9999
    assert "onnx_int8" not in parity["audio"]


def test_int8_bundle_loads_and_records_its_parity(run, int8_bundle):
    bundle = Bundle.load(int8_bundle, threads=1)
    windows = calibration_windows()
    audio, text = _torch_embeddings(run[1], windows)
    audio_cos = _cos(audio, bundle.embed_audio(windows)[0])
    text_cos = _cos(text, bundle.embed_text(TEXTS))
    assert audio_cos.min() > 0.98
    assert text_cos.min() > 0.96
    parity = bundle.manifest["parity"]
    assert parity["shipped"] == "onnx_int8"
    # The manifest's figure is what the plugin really gets on those windows.
    assert parity["audio_cosine_min"] == pytest.approx(audio_cos.min(), abs=1e-4)
    assert parity["audio"]["onnx_fp32"]["min"] > 0.9999
    assert parity["text"]["onnx_int8"]["min"] >= 0.96
    assert parity["calibration"] == {"audio": "given", "windows": 8, "texts": 13}
    # So is the text figure: the plugin's embeddings of the export's texts.
    tok = build_tokenizer(run[1].config.text)
    with torch.no_grad():
        ref = run[1].encode_text(
            **tokenize(tok, DEFAULT_CALIBRATION_TEXTS, bundle.max_tokens)
        )
    got = _cos(ref.numpy(), bundle.embed_text(DEFAULT_CALIBRATION_TEXTS))
    assert parity["text_cosine_min"] == pytest.approx(got.min(), abs=1e-4)
    assert parity["text_cosine_mean"] == pytest.approx(got.mean(), abs=1e-4)


def test_int8_text_embedding_is_a_function_of_its_text_alone(int8_bundle):
    # Dynamic int8 picks one activation scale per tensor; run as a batch, the
    # graph gives a text another embedding beside other texts.
    bundle = Bundle.load(int8_bundle, threads=1)
    feed = bundle.tokenize(TEXTS)
    batched = bundle._text.run(["embedding"], feed)[0]
    alone = np.stack([bundle.embed_text([t])[0] for t in TEXTS])
    batched /= np.linalg.norm(batched, axis=1, keepdims=True)
    assert np.abs(batched - alone).max() > 1e-4
    np.testing.assert_allclose(bundle.embed_text(TEXTS), alone, atol=1e-6)
    np.testing.assert_allclose(
        bundle.embed_text([TEXTS[0], "drums " * 40])[0], alone[0], atol=1e-6
    )


def _weight_kinds(path: Path) -> dict[str, str]:
    """For each Conv/Gemm/MatMul node: "int8" if its weight comes dequantized
    from an int8 initialiser, "float" if straight from a float one."""
    graph = onnx.load(str(path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    dtype = {i.name: i.data_type for i in graph.initializer}
    kinds = {}
    for node in graph.node:
        if node.op_type not in {"Conv", "Gemm", "MatMul"}:
            continue
        for name in node.input[:2]:
            source = producer.get(name)
            if dtype.get(name) == onnx.TensorProto.FLOAT:
                kinds[node.name] = "float"  # a float weight read directly
            elif (
                source is not None
                and source.op_type == "DequantizeLinear"
                and dtype.get(source.input[0]) == onnx.TensorProto.UINT8
            ):
                # 8-bit weights, stored as uint8 (quantize.uint8_weights)
                kinds[node.name] = "int8"
    return kinds


def test_int8_graphs_are_static_qdq_audio_and_dynamic_text(int8_bundle):
    audio = onnx.load(str(int8_bundle / "audio.onnx")).graph
    ops = {n.op_type for n in audio.node}
    assert "QuantizeLinear" in ops
    assert "ConvInteger" not in ops  # dynamic conv quantization: slower than float
    kinds = _weight_kinds(int8_bundle / "audio.onnx")
    frontend = {k: v for k, v in kinds.items() if "/frontend/" in k}
    backbone = {k: v for k, v in kinds.items() if "/backbone/" in k}
    assert len(frontend) == 2  # STFT conv and mel matmul stay float
    assert set(frontend.values()) == {"float"}
    assert len(backbone) == 4  # the four conv blocks, quantized
    assert set(backbone.values()) == {"int8"}
    text = onnx.load(str(int8_bundle / "text.onnx")).graph
    dense = {
        n.name.rsplit("/", 2)[0]: n.op_type
        for n in text.node
        if "/dense/" in n.name and n.op_type in ("MatMul", "MatMulInteger")
    }
    # Every dense layer is int8 but the feed-forward outputs of layers 0-1.
    float_dense = sorted(k for k, op in dense.items() if op == "MatMul")
    assert [k.split("/encoder/encoder/")[1] for k in float_dense] == [
        "layer.0/output",
        "layer.1/output",
    ]
    assert len(dense) > len(float_dense) > 0


def test_8_bit_weights_are_stored_as_uint8(int8_bundle):
    """No int8 initialiser is left for onnxruntime's saturating u8 x s8
    kernels of CPUs without VNNI (quantize.uint8_weights)."""
    for name in ("audio.onnx", "text.onnx"):
        graph = onnx.load(str(int8_bundle / name)).graph
        kinds = {i.data_type for i in graph.initializer}
        assert onnx.TensorProto.INT8 not in kinds, name
        assert onnx.TensorProto.UINT8 in kinds, name


def test_uint8_weights_compute_the_exact_integer_product(tmp_path):
    """A MatMulInteger whose products overflow a 16-bit pair sum (uint8
    activations near 255, int8 weights near 127): after uint8_weights the
    graph gives the exact integer product, as numpy computes it."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from trainer.export.quantize import uint8_weights

    rng = np.random.default_rng(0)
    weights = rng.integers(100, 128, (64, 16)).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "a_zp", "w_zp"], ["y"])],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, 64])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [4, 16])],
        [
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array(0, np.uint8), "a_zp"),
            numpy_helper.from_array(np.array(0, np.int8), "w_zp"),
        ],
    )
    path = tmp_path / "m.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what this onnxruntime reads
    onnx.save(model, path)
    uint8_weights(path)
    assert {i.data_type for i in onnx.load(str(path)).graph.initializer} == {
        TensorProto.UINT8
    }
    a = rng.integers(240, 256, (4, 64)).astype(np.uint8)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"a": a})
    np.testing.assert_array_equal(got, a.astype(np.int64) @ weights.astype(np.int64))


def _with_int8_weights(bundle_dir: Path, out: Path) -> Path:
    """A copy of a bundle as exports wrote it before uint8_weights: every
    uint8 weight (and zero point) of MatMulInteger / DequantizeLinear minus
    128, stored as int8, the manifest's hashes updated."""
    from onnx import numpy_helper

    from trainer.export.quantize import weight_initializers

    shutil.copytree(bundle_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    for name in ("audio.onnx", "text.onnx"):
        model = onnx.load(str(out / name))
        inits = {i.name: i for i in model.graph.initializer}
        for n in weight_initializers(model, onnx.TensorProto.UINT8):
            old = numpy_helper.to_array(inits[n]).astype(np.int16) - 128
            inits[n].CopyFrom(numpy_helper.from_array(old.astype(np.int8), n))
        onnx.save(model, str(out / name))
        manifest["files"][name] = hashlib.sha256((out / name).read_bytes()).hexdigest()
        manifest["sizes"][name] = (out / name).stat().st_size
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def test_an_older_bundle_is_rewritten_with_uint8_weights(int8_bundle, tmp_path):
    from trainer.__main__ import main
    from trainer.export.rewrite import int8_initializers

    old = _with_int8_weights(int8_bundle, tmp_path / "old")
    assert int8_initializers(old / "text.onnx") > 0
    assert main(
        ["uint8-weights", "--bundle", str(old), "--out", str(tmp_path / "new"),
         "--version", "0.0.2"]
    ) == 0  # fmt: skip
    new = tmp_path / "new"
    for name in ("audio.onnx", "text.onnx"):
        assert int8_initializers(new / name) == 0
    rewritten = Bundle.load(new, threads=1)
    assert rewritten.manifest["version"] == "0.0.2"
    assert rewritten.identity != Bundle.load(old, threads=1).identity
    # The same integers as the export's own uint8 graphs: the same vectors.
    reference = Bundle.load(int8_bundle, threads=1)
    windows = calibration_windows()[:4]
    np.testing.assert_array_equal(
        rewritten.embed_audio(windows)[0], reference.embed_audio(windows)[0]
    )
    np.testing.assert_array_equal(
        rewritten.embed_text(TEXTS), reference.embed_text(TEXTS)
    )


def test_a_bundle_without_int8_weights_is_refused_in_one_line(
    int8_bundle, tmp_path, capsys
):
    from trainer.__main__ import main

    out = tmp_path / "new"
    args = ["uint8-weights", "--bundle", str(int8_bundle), "--out", str(out)]
    assert main([*args, "--version", "0.0.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert "nothing to rewrite" in err
    assert "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("command", ["uint8-weights", "retag"])
def test_a_missing_bundle_names_the_trainer_option(tmp_path, capsys, command):
    from trainer.__main__ import main

    nope, out = tmp_path / "nope", tmp_path / "new"
    args = [command, "--bundle", str(nope), "--out", str(out), "--version", "1"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"error: model bundle {nope}: not a folder "
        "(--bundle must name a bundle folder)\n"
    )
    assert not out.exists()


def test_manifest_follows_the_bundle_contract(int8_bundle):
    manifest = json.loads((int8_bundle / "manifest.json").read_text())
    assert manifest["format"] == 1
    assert manifest["name"] == "clap-tiny"
    assert manifest["version"] == "0.0.1"
    assert manifest["embedding_dim"] == 8
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((int8_bundle / name).read_bytes()).hexdigest() == digest
        assert manifest["sizes"][name] == (int8_bundle / name).stat().st_size
    assert set(manifest["files"]) == {"audio.onnx", "text.onnx", "tokenizer.json"}
    audio = manifest["audio"]
    assert audio["file"] == "audio.onnx"
    assert audio["sample_rate"] == 16000
    assert audio["window_seconds"] == 3.0
    assert audio["max_windows"] == 4
    assert "tags" not in audio  # a CNN from scratch tags nothing
    assert manifest["text"] == {
        "file": "text.onnx",
        "tokenizer": "tokenizer.json",
        "max_tokens": 128,  # BUNDLE_MAX_TOKENS, within the tiny encoder's 128 positions
        "quantization": (
            "dynamic int8, per-channel; float: feed-forward output of layers 0-1"
        ),
    }
    training = manifest["training"]
    assert training["metrics"] == {"step": 20, "val_loss": 1.4, "t2a_R@10": 45.0}
    assert training["metrics_source"] == "validation at step 20"
    assert training["step"] == 20
    assert training["data"] == "/data/synth"
    assert training["recipe"] == "tiny"
    assert training["config"]["model"]["embedding_dim"] == 8
    tokenizer = json.loads((int8_bundle / "tokenizer.json").read_text())
    assert tokenizer["padding"] is None
    assert tokenizer["truncation"] is None


def test_bundle_reads_texts_past_the_training_length(run, fp32_bundle):
    """Trained on 16 tokens, the bundle still embeds a whole long caption
    (what `beet clap` gets when someone pastes one), as torch does at 128."""
    long = " ".join(["a slow sad cello melody over soft piano chords"] * 6)
    bundle = Bundle.load(fp32_bundle, threads=1)
    assert bundle.max_tokens == 128
    assert len(bundle.tokenize([long])["input_ids"][0]) == 56
    tok = build_tokenizer(run[1].config.text)
    with torch.no_grad():
        full = run[1].encode_text(**tokenize(tok, [long], 128)).numpy()
        cut = run[1].encode_text(**tokenize(tok, [long], 16)).numpy()
    got = bundle.embed_text([long])
    assert _cos(full, got).min() > 0.9999
    assert _cos(cut, got).min() < 0.999


def test_bundle_max_tokens_stays_within_the_encoder(run):
    model = run[1]
    assert bundle_max_tokens(model) == 128
    assert bundle_max_tokens(model, 48) == 48
    with pytest.raises(ExportError, match="more than the text encoder's 128 positions"):
        bundle_max_tokens(model, 512)
    with pytest.raises(ExportError, match="at least 2, not 0"):
        bundle_max_tokens(model, 0)


def test_audio_graph_takes_any_batch_and_length(run, fp32_bundle):
    sess = ort.InferenceSession(
        str(fp32_bundle / "audio.onnx"), providers=["CPUExecutionProvider"]
    )
    long = np.stack(
        [
            np.concatenate([drum_loop(), plucked_chords(), sine_tone(0.5)]),
            np.concatenate([sine_tone(), drum_loop(), drum_loop(0.5)]),
        ]
    )
    (got,) = sess.run(["embedding"], {"waveform": long})
    with torch.no_grad():
        expected = run[1].encode_audio(torch.from_numpy(long)).numpy()
    assert got.shape == (2, 8)
    assert _cos(expected, got).min() > 0.9999


def test_failed_parity_leaves_the_previous_bundle_alone(run, fp32_bundle, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(fp32_bundle, out)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(
        ExportError, match=r"audio ONNX fp32 cosine 1\.0000 < required 1\.5"
    ):
        export_bundle(
            run[0],
            out,
            name="clap-tiny",
            version="0.0.2",
            calibration_audio=calibration_windows()[:2],
            quantize=False,
            thresholds=ParityThresholds(audio_fp32=1.5),
        )
    assert (out / "manifest.json").read_bytes() == before
    Bundle.load(out)  # still valid


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros((2, 1000), np.float32), r"must be \[N, 48000\] windows or 1-D"),
        (np.zeros(100, np.float32), r"shorter than one window"),
        (np.full((1, WINDOW), np.nan, np.float32), r"contains NaN or inf"),
    ],
)
def test_bad_calibration_audio_is_refused_up_front(run, tmp_path, audio, message):
    with pytest.raises(ExportError, match=message):
        export_model_bundle(
            run[1],
            Config(model=run[1].config),
            tmp_path / "never",
            name="x",
            version="0",
            calibration_audio=audio,
        )
    assert not (tmp_path / "never").exists()


def test_last_eval_metrics_reads_the_last_validation(tmp_path):
    assert last_eval_metrics(tmp_path) == {}
    lines = [
        '{"step": 5, "split": "valid", "t2a_R@1": 1.0, "note": "x"}',
        "not json",
        '{"step": 6, "split": "train", "loss": 3.0}',
        '{"step": 7, "kind": "eval", "t2a_R@1": 2.5, "nan": NaN}',
        '{"step": 12, "split": "valid", "t2a_R@1": 4.0}',
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines))
    assert last_eval_metrics(tmp_path) == {"step": 12, "t2a_R@1": 4.0}
    # A checkpoint's metrics: its own step's validation, else the last before it.
    assert last_eval_metrics(tmp_path, step=7) == {"step": 7, "t2a_R@1": 2.5}
    assert last_eval_metrics(tmp_path, step=11) == {"step": 7, "t2a_R@1": 2.5}
    assert last_eval_metrics(tmp_path, step=6) == {"step": 5, "t2a_R@1": 1.0}
    assert last_eval_metrics(tmp_path, step=4) == {}


def test_a_checkpoint_file_exports_with_the_config_it_records(
    short_run, fixture_data, tmp_path, capsys
):
    """`--run-dir RUN/checkpoints/step_N.pt`: the checkpoint's own config
    (1-second windows, named tiny) sets the calibration windows and the
    name, not the file name or a run-folder config.yaml that disagrees; the
    metrics are the validation of that step, not the run's last."""
    from trainer.__main__ import main

    out = tmp_path / "bundle"
    ckpt = short_run / "checkpoints" / "step_0000010.pt"
    args = ["export", "--run-dir", str(ckpt), "--out", str(out)]
    assert main([*args, "--calibration-data", str(fixture_data), "--no-quantize"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    bundle = Bundle.load(out, threads=1)
    assert bundle.name == "clap-tiny"
    assert bundle.window_seconds == 1.0
    manifest = bundle.manifest
    assert manifest["parity"]["calibration"]["audio"] == "given"
    assert manifest["parity"]["calibration"]["windows"] > 0
    training = manifest["training"]
    assert training["checkpoint"] == "step_0000010.pt"
    assert training["step"] == 10
    assert training["metrics"] == {"step": 8, "val_loss": 1.9, "t2a_R@10": 30.0}
    assert training["metrics_source"] == (
        "validation at step 8, the last one before step 10"
    )


def test_a_checkpoint_before_any_validation_borrows_no_metrics(short_run, tmp_path):
    out = export_bundle(
        short_run / "checkpoints" / "step_0000005.pt",
        tmp_path / "bundle",
        version="0.0.1",
        quantize=False,
    )
    manifest = Bundle.load(out, threads=1).manifest
    assert manifest["name"] == "clap-tiny"  # the library's default name too
    assert manifest["training"]["step"] == 5
    assert manifest["training"]["metrics"] == {}
    assert manifest["training"]["metrics_source"] == (
        "none: the run logged no validation at or before step 5"
    )


@pytest.mark.parametrize(
    ("config_name", "untrained", "expected"),
    [
        ("clap_default", False, "clap-default"),
        ("clap_default", True, "clap-default-untrained"),
        ("msd_negation", False, "clap-msd-negation"),
        ("tiny", False, "clap-tiny"),
        ("clap-blind", False, "clap-blind"),
    ],
)
def test_default_bundle_names_follow_the_shipped_one(config_name, untrained, expected):
    from trainer.export import default_bundle_name

    assert default_bundle_name(config_name, untrained=untrained) == expected


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-windows", "0"], "max_windows must be a positive integer, not 0"),
        (["--max-windows", "-2"], "max_windows must be a positive integer, not -2"),
        (["--name", ""], "the bundle name must not be empty"),
        (["--version", " "], "the bundle version must not be empty"),
        (
            ["--name", "team/clap"],
            "the bundle name must not hold a path separator, not 'team/clap'",
        ),
        (
            ["--version", ".."],
            "the bundle version must not hold a path separator, not '..'",
        ),
    ],
)
def test_bad_export_options_are_refused_before_anything_is_written(
    run, tmp_path, capsys, option, message
):
    from trainer.__main__ import main

    out = tmp_path / "bundle"
    args = ["export", "--run-dir", str(run[0]), "--out", str(out), *option]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {message}\n"
    assert captured.out == ""
    assert not out.exists()


def test_a_bundle_the_plugin_would_refuse_is_never_published(tmp_path):
    """The export loads its staged folder as the plugin would before it
    publishes: a 2 kHz model exports fine, but the plugin reads 4-192 kHz."""
    cfg = _tiny_config(
        window_seconds=1.0, sample_rate=2000, n_fft=256, hop_length=128, n_mels=16
    )
    torch.manual_seed(0)
    out = tmp_path / "bundle"
    with pytest.raises(
        ExportError,
        match=r"^the plugin would refuse this bundle: audio\.sample_rate 2000 is "
        r"not an integer in 4000\.\.192000$",
    ):
        export_model_bundle(
            build_model(cfg.model), cfg, out, name="x", version="0", quantize=False
        )
    assert not out.exists()


def test_musicnn_export_carries_mtt_tags(tmp_path):
    """Pretrained tagger in the bundle: `tags` output, names in the manifest."""
    windows = calibration_windows()
    model, out = export_tagger(tmp_path / "b", "MTT_musicnn", "tags", windows)
    bundle = Bundle.load(out, threads=1)
    assert bundle.tag_names == MTT_LABELS
    _, tags = bundle.embed_audio(windows[:3])
    with torch.no_grad():
        ref = model.audio_tags(torch.from_numpy(windows[:3])).numpy()
    assert tags.shape == (3, 50)
    assert np.abs(tags - ref).max() < 0.05
    drums = MTT_LABELS.index("drums")
    assert tags[0, drums] > 3 * tags[2, drums]  # drum loop vs chords
    quant = bundle.manifest["audio"]["quantization"]
    assert quant.endswith("float: log-mel front end, midend, temporal")
    # The mid-end and the temporal convolutions stay float, the timbral ones
    # and the dense layers are int8.
    kinds = _weight_kinds(out / "audio.onnx")
    groups: dict[str, set[str]] = {}
    for name, kind in kinds.items():
        for part in ("midend", "temporal", "timbral", "dense", "frontend"):
            if f"/{part}" in name:
                groups.setdefault(part, set()).add(kind)
    assert groups == {
        "midend": {"float"},
        "temporal": {"float"},
        "frontend": {"float"},
        "timbral": {"int8"},
        "dense": {"int8"},
    }


def test_both_taggers_tags_carry_their_meanings(tmp_path):
    """MTT's and MSD's tags exported with each one's meaning fixed in the
    manifest, aligned with the names: concept and what it says is absent."""
    _model, out = export_tagger(
        tmp_path / "b",
        "MTT_musicnn+MSD_musicnn",
        "penultimate",
        calibration_windows()[:4],
    )
    audio = json.loads((out / "manifest.json").read_text())["audio"]
    names, meanings = audio["tags"], audio["tag_meanings"]
    assert len(names) == len(meanings) == 100
    meaning = dict(zip(names, meanings, strict=True))
    expected = {
        "no vocals": {"concept": None, "absent": ["vocals"]},
        "drums": {"concept": "drums", "absent": []},
        "beat": {"concept": "drums", "absent": []},
        "weird": {"concept": None, "absent": []},
        "msd:female vocalists": {"concept": "female vocals", "absent": []},
        "msd:instrumental": {"concept": "instrumental", "absent": ["vocals"]},
        "msd:80s": {"concept": "80s", "absent": []},
        "msd:Hip-Hop": {"concept": "hip hop", "absent": []},
        "msd:electronica": {"concept": "electronica", "absent": []},
        "msd:House": {"concept": "house", "absent": []},
        "msd:Mellow": {"concept": "mellow", "absent": []},
    }
    assert {name: meaning[name] for name in expected} == expected
    bundle = Bundle.load(out, threads=1)
    assert bundle.tag_names == names
    assert bundle.tag_meanings[names.index("msd:80s")] == ("80s", ())


def test_calibration_windows_come_from_a_data_directory(tmp_path):
    from trainer.data import write_fixture
    from trainer.export import calibration_from_data

    data = write_fixture(tmp_path / "data", n=8, seconds=(1.5, 4.0))
    windows, texts = calibration_from_data(data, split="valid", n_windows=8)
    assert windows.dtype == np.float32
    assert windows.shape == (len(texts), WINDOW)
    assert len(texts) >= 1
    assert all(isinstance(t, str) and t for t in texts)
    assert (np.abs(windows).max(axis=1) > 0.1).all()  # music, not padding
    few, _ = calibration_from_data(data, split="train", n_windows=1)
    assert few.shape == (1, WINDOW)
