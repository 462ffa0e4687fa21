"""Model bundles: manifest validation, ONNX sessions and the tokenizer."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import meanings

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from .taglinks import TagMeaning

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# Windows fed to audio.onnx per session.run; bounds peak memory on long
# batches without costing throughput (the graphs are tiny per window).
AUDIO_BATCH = 32
# Attribute embeddings a bundle keeps (`embed_attributes`): the parser's
# vocabulary with its modifiers is a few thousand phrases at most, 1 KB each.
MAX_REMEMBERED_ATTRIBUTES = 4096
_MIN_SAMPLE_RATE = 4000
_MAX_SAMPLE_RATE = 192000
_MAX_WINDOW_SECONDS = 60.0
# Ceilings past which a value can only be a hand-edit's slip (and would fail
# late: SQLite's 64-bit integers, the tokenizer's own limit); clap.max_windows
# has the same one (settings.INT_MAXIMUMS).
MAX_WINDOWS = 1000
_MAX_TOKENS = 4096
_MAX_NEGATION_WEIGHT = 10.0
# What `load` tells a user whose bundle folder is missing; other front ends
# (the trainer's --bundle) name their own option instead.
FOLDER_HINT = "set clap.model to a bundle folder"


class BundleError(Exception):
    """A model bundle that cannot be used; the message is one line."""


def models_roots() -> list[Path]:
    """Folders that may hold shipped bundles, in order of preference.

    An installed wheel carries the default bundle as package data
    (`beetsplug/clap/models`, copied there by the build from `models/`); a
    source checkout keeps it in `<repo>/models`; installs of older wheels
    put it under `<prefix>/share/beets-clap/models`.
    """
    here = Path(__file__).resolve().parent
    return [
        here / "models",
        here.parents[1] / "models",
        Path(sys.prefix) / "share" / "beets-clap" / "models",
    ]


def default_bundle_path() -> Path:
    """The shipped default bundle named by `models/DEFAULT`."""
    for root in models_roots():
        pointer = root / "DEFAULT"
        if pointer.is_file():
            name = pointer.read_text(encoding="utf-8").strip()
            if not name:
                raise BundleError(f"{pointer} is empty: it should name a bundle folder")
            return root / name
    raise BundleError(
        "no model bundle found: set clap.model to a bundle folder "
        "in your beets config, or see README.md (models/DEFAULT is missing)"
    )


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero instead of NaN."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, eps)).astype(np.float32, copy=False)


def iter_batch(n: int, size: int) -> Iterator[slice]:
    """Slices covering range(n) in chunks of at most `size`."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def tokenize(
    tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int
) -> dict[str, np.ndarray]:
    """input_ids and attention_mask int64 [B, T]: each text cut at `max_tokens`
    by the tokenizer's own truncation (its special tokens survive), zeros after
    it up to the batch's longest text.

    The one tokenization of the project: the plugin's queries, the trainer's
    batches and the export's parity inputs all come from here, so a model is
    trained on the tokens it is later queried with. Padded positions are
    masked, so the zero pad id never reaches an embedding.
    """
    import numpy as np

    # Padding baked into tokenizer.json (MiniLM pads to 128) would waste compute.
    if tokenizer.padding is not None:
        tokenizer.no_padding()
    truncation = tokenizer.truncation
    if not truncation or truncation.get("max_length") != max_tokens:
        tokenizer.enable_truncation(max_length=max_tokens)
    encodings = tokenizer.encode_batch(list(texts))
    length = max(1, *(len(e.ids) for e in encodings)) if encodings else 1
    ids = np.zeros((len(encodings), length), np.int64)
    mask = np.zeros((len(encodings), length), np.int64)
    for row, enc in enumerate(encodings):
        n = min(len(enc.ids), length)
        ids[row, :n] = enc.ids[:n]
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (bundles hold 100 MB graphs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require(cond: bool, where: Path, what: str) -> None:
    if not cond:
        raise BundleError(f"model bundle {where}: {what}")


def _positive_int(value: Any, maximum: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value > 0
        and (maximum is None or value <= maximum)
    )


def validate_manifest(path: Path, manifest: Any) -> None:
    """Check the manifest's structure and values (Contract 1) before any
    file is opened, so a hand-edited or truncated manifest fails in one line.
    """
    _require(isinstance(manifest, dict), path, "manifest.json is not a JSON object")
    _require(
        manifest.get("format") == FORMAT_VERSION,
        path,
        f"unsupported manifest format {manifest.get('format')!r} "
        f"(this plugin reads format {FORMAT_VERSION})",
    )
    _require(
        _positive_int(manifest.get("embedding_dim")),
        path,
        "embedding_dim must be a positive integer",
    )
    files = manifest.get("files")
    _require(
        isinstance(files, dict) and files,
        path,
        "manifest has no 'files' table of sha256 digests",
    )
    audio, text = manifest.get("audio"), manifest.get("text")
    _require(isinstance(audio, dict), path, "manifest has no 'audio' section")
    _require(isinstance(text, dict), path, "manifest has no 'text' section")
    for section, key in (("audio", "file"), ("text", "file"), ("text", "tokenizer")):
        name = manifest[section].get(key)
        _require(
            isinstance(name, str) and name in files,
            path,
            f"{section}.{key} {name!r} is not listed in 'files'",
        )
    sr = audio.get("sample_rate")
    _require(
        _positive_int(sr) and _MIN_SAMPLE_RATE <= sr <= _MAX_SAMPLE_RATE,
        path,
        f"audio.sample_rate {sr!r} is not an integer in "
        f"{_MIN_SAMPLE_RATE}..{_MAX_SAMPLE_RATE}",
    )
    win = audio.get("window_seconds")
    _require(
        isinstance(win, int | float)
        and not isinstance(win, bool)
        and math.isfinite(win)
        and 0 < win <= _MAX_WINDOW_SECONDS,
        path,
        f"audio.window_seconds {win!r} is not a number in (0, {_MAX_WINDOW_SECONDS:g}]",
    )
    _require(
        _positive_int(audio.get("max_windows"), MAX_WINDOWS),
        path,
        f"audio.max_windows must be an integer in 1..{MAX_WINDOWS}",
    )
    tags = audio.get("tags", [])
    _require(
        isinstance(tags, list) and all(isinstance(t, str) for t in tags),
        path,
        "audio.tags must be a list of strings",
    )
    wrong = meanings.problem(audio.get("tag_meanings"), len(tags))
    _require(wrong is None, path, str(wrong))
    _require(
        _positive_int(text.get("max_tokens"), _MAX_TOKENS),
        path,
        f"text.max_tokens must be an integer in 1..{_MAX_TOKENS}",
    )
    query = manifest.get("query")
    _require(
        query is None or isinstance(query, dict),
        path,
        "query must be an object (the calibrated weights)",
    )
    weight = (query or {}).get("negation_weight")
    _require(
        weight is None
        or (
            isinstance(weight, int | float)
            and not isinstance(weight, bool)
            and math.isfinite(weight)
            and 0 <= weight <= _MAX_NEGATION_WEIGHT
        ),
        path,
        f"query.negation_weight {weight!r} is not a number in "
        f"0..{_MAX_NEGATION_WEIGHT:g}",
    )


def session_options(threads: int | None) -> ort.SessionOptions:
    """The onnxruntime options every session of the project is built with:
    full graph optimisation, `threads` intra-op threads (0 or None: one per
    physical core), sequential execution, idle threads asleep, quiet."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(0, int(threads or 0))
    opts.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: a query is a few ms of work,
    # and spinning threads starve the search that follows on a busy machine
    # (docs/benchmarks.md).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Quiet: onnxruntime's own warnings would bypass beets' logging.
    opts.log_severity_level = 3
    return opts


def _open_session(
    path: Path, bundle: Path, opts: ort.SessionOptions
) -> ort.InferenceSession:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own unrelated types
        detail = (
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        raise BundleError(
            f"model bundle {bundle}: cannot load {path.name}: {detail}"
        ) from exc


def _text_list(texts: Sequence[str], method: str) -> Sequence[str]:
    """`texts`, refused if it is one str: a str is a sequence of
    one-character strs, and each would be embedded as a text of its own."""
    if isinstance(texts, str):
        raise TypeError(
            f"Bundle.{method} takes a list of texts, not a str: pass [{texts!r}]"
        )
    return texts


def _static_last_dim(shape: Sequence[Any]) -> int | None:
    """The last dimension of an ONNX shape if it is a fixed number."""
    if len(shape) != 2:
        return None
    last = shape[-1]
    return last if isinstance(last, int) else None


class Bundle:
    """A validated model bundle with its ONNX sessions, built once.

    `load` checks everything a later search or index would trip over
    (files, digests, dimensions, graph inputs and outputs), so those fail
    before any audio is decoded.
    """

    path: Path
    manifest: dict[str, Any]
    identity: str
    embedding_dim: int
    sample_rate: int
    window_seconds: float
    max_windows: int
    max_tokens: int
    tag_names: list[str]

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        identity: str,
        text_session: ort.InferenceSession,
        tokenizer: Any,
        session_options: ort.SessionOptions,
        audio_session: ort.InferenceSession | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.identity = identity
        self.embedding_dim = int(manifest["embedding_dim"])
        audio = manifest["audio"]
        self.sample_rate = int(audio["sample_rate"])
        self.window_seconds = float(audio["window_seconds"])
        self.max_windows = int(audio["max_windows"])
        self.tag_names = list(audio.get("tags", []))
        self.max_tokens = int(manifest["text"]["max_tokens"])
        self._text = text_session
        self._tokenizer = tokenizer
        self._text_inputs = {i.name for i in text_session.get_inputs()}
        self._session_options = session_options
        self._audio_outputs = ["embedding"] + (["tags"] if self.has_tags else [])
        self._audio = audio_session
        self._attributes: dict[str, np.ndarray] = {}

    def open_audio(self) -> None:
        """Open and check audio.onnx if `load` left it closed (searches only
        need the text tower, and opening audio.onnx is a visible part of
        `beet clap`'s start-up: docs/benchmarks.md, "Storage and cold start")."""
        if self._audio is None:
            self._audio = self._open_audio(
                self.path, self.manifest, self._session_options
            )

    @classmethod
    def _open_audio(
        cls, bundle: Path, manifest: dict[str, Any], opts: ort.SessionOptions
    ) -> ort.InferenceSession:
        """audio.onnx opened and checked: eagerly by `load`, lazily by
        `open_audio`, the same checks either way."""
        session = _open_session(bundle / manifest["audio"]["file"], bundle, opts)
        cls._check_audio_graph(bundle, manifest, session)
        return session

    @property
    def threads(self) -> int:
        """Intra-op threads of its sessions; 0 lets onnxruntime choose."""
        return int(self._session_options.intra_op_num_threads)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "?"))

    @property
    def label(self) -> str:
        """How messages name this bundle: name, version and short identity."""
        return f"{self.name} {self.version} ({self.identity[:12]})"

    @property
    def window_samples(self) -> int:
        return round(self.window_seconds * self.sample_rate)

    @property
    def negation_weight(self) -> float | None:
        """The weight calibrated on the benchmark at export, if any."""
        value = (self.manifest.get("query") or {}).get("negation_weight")
        return float(value) if isinstance(value, int | float) else None

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        threads: int | None = None,
        *,
        audio: bool = True,
        folder_hint: str = FOLDER_HINT,
    ) -> Bundle:
        """Validate the bundle at `path` (default: the shipped one) and open it.

        With `audio=False` audio.onnx is checked only against its digest and
        opened on first use (`open_audio`, or the first `embed_audio`).
        `folder_hint` is what the message for a missing folder tells the
        user to do.
        """
        bundle = Path(path).expanduser() if path else default_bundle_path()
        _require(bundle.is_dir(), bundle, f"not a folder ({folder_hint})")
        manifest_path = bundle / MANIFEST
        _require(manifest_path.is_file(), bundle, f"{MANIFEST} is missing")
        raw = manifest_path.read_bytes()
        try:
            manifest = json.loads(raw)
        except ValueError as exc:
            raise BundleError(
                f"model bundle {bundle}: {MANIFEST} is not valid JSON ({exc})"
            ) from exc
        validate_manifest(bundle, manifest)
        for name, digest in manifest["files"].items():
            file = bundle / name
            _require(file.is_file(), bundle, f"{name} is missing")
            _require(
                sha256_file(file) == str(digest).lower(),
                bundle,
                f"{name} sha256 mismatch (file changed or corrupt)",
            )

        opts = session_options(threads)
        audio_session = cls._open_audio(bundle, manifest, opts) if audio else None
        text_session = _open_session(bundle / manifest["text"]["file"], bundle, opts)
        cls._check_text_graph(bundle, manifest, text_session)

        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(bundle / manifest["text"]["tokenizer"]))
        except Exception as exc:  # tokenizers raises a bare Exception
            raise BundleError(
                f"model bundle {bundle}: "
                f"cannot read {manifest['text']['tokenizer']}: {exc}"
            ) from exc
        # Padding baked into tokenizer.json (MiniLM pads to 128) would waste
        # compute; truncation is set to the manifest's limit so that special
        # tokens survive long queries.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=int(manifest["text"]["max_tokens"]))
        identity = hashlib.sha256(raw).hexdigest()
        return cls(
            bundle, manifest, identity, text_session, tokenizer, opts, audio_session
        )

    @staticmethod
    def _check_audio_graph(
        bundle: Path, manifest: dict[str, Any], audio: ort.InferenceSession
    ) -> None:
        """audio.onnx's inputs/outputs against the contract and the manifest."""
        dim = int(manifest["embedding_dim"])
        audio_in = audio.get_inputs()
        _require(
            len(audio_in) == 1 and len(audio_in[0].shape) == 2,
            bundle,
            "audio.onnx must take one input [batch, samples]",
        )
        outs = {o.name: o for o in audio.get_outputs()}
        _require("embedding" in outs, bundle, "audio.onnx has no 'embedding' output")
        got = _static_last_dim(outs["embedding"].shape)
        _require(
            got in (None, dim),
            bundle,
            f"audio.onnx embedding dimension {got} != manifest embedding_dim {dim}",
        )
        tags = manifest["audio"].get("tags", [])
        if "tags" in outs:
            got_tags = _static_last_dim(outs["tags"].shape)
            _require(
                got_tags in (None, len(tags)),
                bundle,
                f"audio.onnx has {got_tags} tag outputs "
                f"but manifest lists {len(tags)} tags",
            )
        else:
            _require(
                not tags,
                bundle,
                f"manifest lists {len(tags)} tags but audio.onnx has no 'tags' output",
            )

    @staticmethod
    def _check_text_graph(
        bundle: Path, manifest: dict[str, Any], text: ort.InferenceSession
    ) -> None:
        """text.onnx's inputs/outputs against the contract and the manifest."""
        dim = int(manifest["embedding_dim"])
        text_in = {i.name for i in text.get_inputs()}
        missing = {"input_ids", "attention_mask"} - text_in
        _require(
            not missing,
            bundle,
            f"text.onnx lacks input(s) {', '.join(sorted(missing))}",
        )
        text_outs = {o.name: o for o in text.get_outputs()}
        _require(
            "embedding" in text_outs, bundle, "text.onnx has no 'embedding' output"
        )
        got = _static_last_dim(text_outs["embedding"].shape)
        _require(
            got in (None, dim),
            bundle,
            f"text.onnx embedding dimension {got} != manifest embedding_dim {dim}",
        )

    def embed_audio(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Embed mono windows [B, S]; returns unit vectors [B, D] and tags [B, T]."""
        import numpy as np

        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim != 2:
            raise ValueError(
                f"windows must be [batch, samples], got shape {windows.shape}"
            )
        self.open_audio()
        assert self._audio is not None
        input_name = self._audio.get_inputs()[0].name
        embs: list[np.ndarray] = []
        tags: list[np.ndarray] = []
        for part in iter_batch(len(windows), AUDIO_BATCH):
            out = self._audio.run(self._audio_outputs, {input_name: windows[part]})
            embs.append(out[0])
            if len(out) > 1:
                tags.append(out[1])
        if not embs:
            empty = np.zeros((0, self.embedding_dim), np.float32)
            return empty, (
                np.zeros((0, len(self.tag_names)), np.float32)
                if self.has_tags
                else None
            )
        emb = l2_normalize(np.concatenate(embs))
        return emb, (np.concatenate(tags).astype(np.float32) if tags else None)

    @functools.cached_property
    def tag_meanings(self) -> tuple[TagMeaning, ...]:
        """What each tag means, aligned with `tag_names`: as fixed at export
        (manifest audio.tag_meanings), else read from the names once."""
        audio = self.manifest["audio"]
        return meanings.from_manifest(audio.get("tag_meanings"), self.tag_names)

    @property
    def has_tags(self) -> bool:
        """The audio graph has a `tags` output (checked against the manifest
        when audio.onnx is opened)."""
        return bool(self.tag_names)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Token ids and mask padded to the batch's longest text (<= max_tokens)."""
        import numpy as np

        texts = _text_list(texts, "tokenize")
        feed = tokenize(self._tokenizer, texts, self.max_tokens)
        if "token_type_ids" in self._text_inputs:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        return feed

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Unit text embeddings [B, D], one text per session run.

        The int8 text graph quantizes its activations dynamically, with one
        scale per tensor: run in a batch, a text's embedding would move with
        whatever it is batched with (docs/benchmarks.md, "Text
        quantization"). One text per run
        keeps every embedding a function of its text alone, as the export
        parity check measures it; a query is a few short texts, so batching
        them would save little.
        """
        import numpy as np

        texts = _text_list(texts, "embed_text")
        out = [self._text.run(["embedding"], self.tokenize([t]))[0] for t in texts]
        if not out:
            return np.zeros((0, self.embedding_dim), np.float32)
        return l2_normalize(np.concatenate(out))

    def embed_attributes(self, attributes: Sequence[str]) -> np.ndarray:
        """`embed_text` of attribute phrases ("vocals", "female vocals"),
        remembered for the life of the bundle.

        What a query negates comes from the parser's closed vocabulary, and
        an embedding is a function of its text alone, so a process that
        searches more than once (playlists, a long-lived beets) embeds each
        attribute once: a negated query then costs one text run, not one
        per attribute. Whole descriptions are not remembered unless they are
        a concept's name alone (search._whole_embeddings).
        """
        import numpy as np

        attributes = _text_list(attributes, "embed_attributes")
        if not attributes:
            return np.zeros((0, self.embedding_dim), np.float32)
        # Looked up into a local dict: another thread clearing the memory
        # between the lookup and the stack cannot lose a vector.
        found = {a: self._attributes.get(a) for a in attributes}
        missing = [a for a, vector in found.items() if vector is None]
        if missing:
            new = dict(zip(missing, self.embed_text(missing), strict=True))
            if len(self._attributes) + len(new) > MAX_REMEMBERED_ATTRIBUTES:
                self._attributes.clear()
            self._attributes.update(new)
            found.update(new)
        return np.stack([found[a] for a in attributes])

    def forget_attributes(self) -> None:
        """Drop the remembered attribute embeddings (benchmarks time the
        first use of an attribute with it)."""
        self._attributes.clear()
