"""Tiny, deterministic model bundles (Contract 1) built with onnx.helper.

The audio graph measures log band energies of the waveform (a Hann-windowed
DFT written as two MatMuls, then a band-membership MatMul), centres them so
loudness does not matter, appends a constant "flatness" feature and projects
to the embedding size. The text graph averages word vectors that live in the
same feature space, so "low" points where a low tone's audio does, "high"
where a high tone's does and "noise" where white noise's does. That makes
ranking tests exact without any training or torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
# Band edges in Hz; with a 16 kHz bundle a 150 Hz tone lands in band 0 and a
# 3 kHz tone in band 4.
BAND_EDGES_HZ = (40.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
N_BANDS = len(BAND_EDGES_HZ) - 1
N_FEATURES = N_BANDS + 1  # centred log band energies + constant flatness axis
FLATNESS = 2.0
TAG_NAMES = ["low", "high", "noise"]


def _feature(**weights: float) -> np.ndarray:
    """A feature-space direction from band weights b0..b5 and `flat`."""
    vec = np.zeros(N_FEATURES, np.float32)
    for key, value in weights.items():
        vec[N_BANDS if key == "flat" else int(key[1:])] = value
    return vec


# Words and where they point in feature space. Words without acoustic meaning
# here get fixed pseudo-random directions so that queries still produce unit
# vectors; function words get zero vectors and drop out of the mean.
_ACOUSTIC = {
    "low": _feature(b0=1.0, b1=0.4, b3=-0.3, b4=-0.5, b5=-0.5),
    "bass": _feature(b0=1.0, b1=0.6, b4=-0.5, b5=-0.5),
    "deep": _feature(b0=1.0, b1=0.3, b4=-0.4, b5=-0.4),
    "high": _feature(b0=-0.5, b1=-0.5, b2=-0.3, b4=1.0, b5=0.4),
    "bright": _feature(b0=-0.5, b1=-0.4, b4=0.8, b5=0.8),
    "treble": _feature(b0=-0.6, b1=-0.4, b4=1.0, b5=0.5),
    "mid": _feature(b0=-0.4, b2=0.6, b3=1.0, b5=-0.4),
    "noise": _feature(flat=1.0),
    "hiss": _feature(flat=1.0, b5=0.2),
    "static": _feature(flat=1.0, b4=0.1),
}
_SEMANTIC = [
    "drums",
    "vocals",
    "jazz",
    "piano",
    "guitar",
    "ambient",
    "calm",
    "rock",
    "strings",
    "violin",
    "cello",
]
_FUNCTION = ["no", "not", "without", "with", "and", "a", "the", "music", "of", "some"]


def vocabulary() -> list[str]:
    """Token strings in id order: [PAD], [UNK], then the words."""
    return ["[PAD]", "[UNK]", *_ACOUSTIC, *_SEMANTIC, *_FUNCTION]


def _word_features(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    table = np.zeros((len(vocabulary()), N_FEATURES), np.float32)
    for row, word in enumerate(vocabulary()):
        if word in _ACOUSTIC:
            table[row] = _ACOUSTIC[word]
        elif word in _SEMANTIC:
            table[row] = rng.standard_normal(N_FEATURES).astype(np.float32)
    return table


def _projection(dim: int, seed: int) -> np.ndarray:
    """[N_FEATURES, dim] with orthonormal rows, so cosines survive projection."""
    if dim < N_FEATURES:
        raise ValueError(f"dim must be >= {N_FEATURES}")
    if dim == N_FEATURES + 1 and seed == 0:
        proj = np.zeros((N_FEATURES, dim), np.float32)
        proj[:, :N_FEATURES] = np.eye(N_FEATURES)
        return proj
    rng = np.random.default_rng(1000 + seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, N_FEATURES)))
    return q.T.astype(np.float32)


def _frame_length(samples: int) -> int:
    """Largest divisor of the window length not above 512 (Reshape framing)."""
    for length in range(min(512, samples), 0, -1):
        if samples % length == 0 and length >= 64:
            return length
    raise ValueError(f"window of {samples} samples has no frame length in 64..512")


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _l2norm_nodes(src: str, dst: str, prefix: str) -> list[onnx.NodeProto]:
    return [
        helper.make_node("ReduceL2", [src], [f"{prefix}_norm"], axes=[1], keepdims=1),
        helper.make_node("Max", [f"{prefix}_norm", "eps_norm"], [f"{prefix}_safe"]),
        helper.make_node("Div", [src, f"{prefix}_safe"], [dst]),
    ]


def audio_model(
    sample_rate: int, window_samples: int, dim: int, seed: int, with_tags: bool
) -> onnx.ModelProto:
    """waveform [B, S] -> embedding [B, dim] (+ tags [B, 3])."""
    frame = _frame_length(window_samples)
    n_bins = frame // 2 + 1
    t = np.arange(frame)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * t / frame)
    k = np.arange(n_bins)
    angle = 2 * np.pi * np.outer(t, k) / frame
    cos_m = (hann[:, None] * np.cos(angle)).astype(np.float32)
    sin_m = (hann[:, None] * np.sin(angle)).astype(np.float32)
    freqs = k * sample_rate / frame
    bands = np.zeros((n_bins, N_BANDS), np.float32)
    for b in range(N_BANDS):
        inside = (freqs >= BAND_EDGES_HZ[b]) & (freqs < BAND_EDGES_HZ[b + 1])
        if inside.any():
            bands[inside, b] = 1.0 / inside.sum()  # mean power per band
    proj = _projection(dim, seed)

    inits = [
        _const("frame_shape", np.array([0, -1, frame], np.int64)),
        _const("cos_m", cos_m),
        _const("sin_m", sin_m),
        _const("bands", bands),
        _const("eps_log", np.array(1e-3, np.float32)),
        _const("eps_norm", np.array(1e-12, np.float32)),
        _const("flat", np.full((1, 1), FLATNESS, np.float32)),
        _const("batch_axis", np.array([0], np.int64)),
        _const("proj", proj),
    ]
    nodes = [
        helper.make_node("Reshape", ["waveform", "frame_shape"], ["frames"]),
        helper.make_node("MatMul", ["frames", "cos_m"], ["re"]),
        helper.make_node("MatMul", ["frames", "sin_m"], ["im"]),
        helper.make_node("Mul", ["re", "re"], ["re2"]),
        helper.make_node("Mul", ["im", "im"], ["im2"]),
        helper.make_node("Add", ["re2", "im2"], ["power"]),
        helper.make_node("MatMul", ["power", "bands"], ["band_power"]),
        helper.make_node(
            "ReduceMean", ["band_power"], ["mean_power"], axes=[1], keepdims=0
        ),
        helper.make_node("Add", ["mean_power", "eps_log"], ["power_eps"]),
        helper.make_node("Log", ["power_eps"], ["log_power"]),
        helper.make_node("ReduceMean", ["log_power"], ["level"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["log_power", "level"], ["shape_feat"]),
        # Broadcast the constant flatness column to the batch size.
        helper.make_node("Shape", ["waveform"], ["wave_shape"]),
        helper.make_node("Gather", ["wave_shape", "batch_axis"], ["batch"], axis=0),
        helper.make_node("Concat", ["batch", "one"], ["flat_shape"], axis=0),
        helper.make_node("Expand", ["flat", "flat_shape"], ["flat_col"]),
        helper.make_node("Concat", ["shape_feat", "flat_col"], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "proj"], ["raw"]),
        *_l2norm_nodes("raw", "embedding", "a"),
    ]
    inits.append(_const("one", np.array([1], np.int64)))
    outputs = [
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])
    ]
    if with_tags:
        # Tag probabilities from the same features: low band, high band, flatness.
        tag_w = np.zeros((N_FEATURES, len(TAG_NAMES)), np.float32)
        tag_w[0, 0] = 1.0
        tag_w[4, 1] = 1.0
        tag_w[N_BANDS, 2] = 1.0
        inits.append(_const("tag_w", tag_w))
        inits.append(_const("tag_bias", np.array([-2.0, -2.0, -1.0], np.float32)))
        nodes += [
            helper.make_node("MatMul", ["features", "tag_w"], ["tag_logit0"]),
            helper.make_node("Add", ["tag_logit0", "tag_bias"], ["tag_logit"]),
            helper.make_node("Sigmoid", ["tag_logit"], ["tags"]),
        ]
        outputs.append(
            helper.make_tensor_value_info(
                "tags", TensorProto.FLOAT, ["batch", len(TAG_NAMES)]
            )
        )
    graph = helper.make_graph(
        nodes,
        "tiny_audio",
        [
            helper.make_tensor_value_info(
                "waveform", TensorProto.FLOAT, ["batch", "samples"]
            )
        ],
        outputs,
        initializer=inits,
    )
    return _model(graph)


def text_model(
    dim: int, seed: int, with_token_type_ids: bool = False
) -> onnx.ModelProto:
    """(input_ids, attention_mask) [B, T] -> masked mean of word vectors [B, dim]."""
    table = _word_features(seed) @ _projection(dim, seed)
    inits = [
        _const("table", table.astype(np.float32)),
        _const("eps_norm", np.array(1e-12, np.float32)),
        _const("eps_count", np.array(1e-6, np.float32)),
        _const("axis2", np.array([2], np.int64)),
        _const("axis1", np.array([1], np.int64)),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["vectors"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["vectors", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask_f", "axis1"], ["count"], keepdims=1),
        helper.make_node("Max", ["count", "eps_count"], ["count_safe"]),
        helper.make_node("Div", ["summed", "count_safe"], ["mean"]),
        *_l2norm_nodes("mean", "embedding", "t"),
    ]
    inputs = [
        helper.make_tensor_value_info(
            "input_ids", TensorProto.INT64, ["batch", "tokens"]
        ),
        helper.make_tensor_value_info(
            "attention_mask", TensorProto.INT64, ["batch", "tokens"]
        ),
    ]
    if with_token_type_ids:
        # Declared but unused, like BERT graphs that ignore segment ids.
        inputs.append(
            helper.make_tensor_value_info(
                "token_type_ids", TensorProto.INT64, ["batch", "tokens"]
            )
        )
    graph = helper.make_graph(
        nodes,
        "tiny_text",
        inputs,
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        initializer=inits,
    )
    return _model(graph)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="beets-clap tests",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def write_tokenizer(path: Path) -> None:
    """A WordLevel tokenizer; its baked-in padding mimics MiniLM's tokenizer.json."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {word: i for i, word in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.enable_padding(length=32, pad_id=0, pad_token="[PAD]")
    tok.save(str(path))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(out: Path, manifest: dict) -> Path:
    """Refresh the digests of the listed files and write manifest.json."""
    manifest["files"] = {name: _sha256(out / name) for name in manifest["files"]}
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return path


def build_tiny_bundle(
    out_dir: Path | str,
    *,
    dim: int = 8,
    sample_rate: int = 16000,
    window_seconds: float = 1.0,
    max_windows: int = 4,
    name: str = "clap-tiny",
    with_tags: bool = False,
    seed: int = 0,
    with_token_type_ids: bool = False,
    max_tokens: int = 16,
    tag_names: list[str] | None = None,
) -> Path:
    """Write a valid bundle to `out_dir` and return its path.

    `tag_names` renames the three tag outputs (low band, high band,
    flatness), e.g. to words the query parser knows.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    window_samples = round(sample_rate * window_seconds)
    onnx.save(
        audio_model(sample_rate, window_samples, dim, seed, with_tags),
        str(out / "audio.onnx"),
    )
    onnx.save(text_model(dim, seed, with_token_type_ids), str(out / "text.onnx"))
    write_tokenizer(out / "tokenizer.json")
    audio: dict = {
        "file": "audio.onnx",
        "sample_rate": sample_rate,
        "window_seconds": window_seconds,
        "max_windows": max_windows,
    }
    if with_tags:
        audio["tags"] = list(tag_names or TAG_NAMES)
        assert len(audio["tags"]) == len(TAG_NAMES)
    manifest = {
        "format": 1,
        "name": name,
        "version": "0.1.0",
        "embedding_dim": dim,
        "files": {"audio.onnx": "", "text.onnx": "", "tokenizer.json": ""},
        "audio": audio,
        "text": {
            "file": "text.onnx",
            "tokenizer": "tokenizer.json",
            "max_tokens": max_tokens,
        },
        "training": {
            "data": "none (hand-built test bundle)",
            "recipe": "band energies",
            "metrics": {},
        },
        "parity": {"audio_cosine_min": 1.0, "text_cosine_min": 1.0},
    }
    write_manifest(out, manifest)
    return out


def build_other_bundle(out_dir: Path | str, *, dim: int = 12) -> Path:
    """A second valid bundle with another identity and dimension (stale tests)."""
    return build_tiny_bundle(out_dir, dim=dim, name="clap-tiny-other", seed=1)


def build_tagged_bundle(out_dir: Path | str) -> Path:
    """A bundle whose audio graph also outputs `tags` (low, high, noise)."""
    return build_tiny_bundle(out_dir, name="clap-tiny-tags", with_tags=True)
