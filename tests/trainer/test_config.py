"""Config loading: every field's type and range, config files and `--set`
overrides, each mistake refused in one line naming the key or the file."""

from __future__ import annotations

import copy
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from trainer.config import (
    BOUNDS,
    UNBOUNDED,
    Config,
    ConfigError,
    check_config,
    from_dict,
    load_config,
)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # ranges: each of these used to train (or crash deep in the loop)
        ("train.grad_accum=0", "train.grad_accum must be at least 1, not 0"),
        ("model.embedding_dim=0", "model.embedding_dim must be at least 1, not 0"),
        (
            "augment.negation_prob=2",
            "augment.negation_prob must be between 0 and 1, not 2",
        ),
        ("data.eval_crops=0", "data.eval_crops must be at least 1, not 0"),
        ("train.warmup_steps=-5", "train.warmup_steps must be at least 0, not -5"),
        ("train.log_every=0", "train.log_every must be at least 1, not 0"),
        ("train.eval_every=0", "train.eval_every must be at least 1, not 0"),
        (
            "train.checkpoint_every=0",
            "train.checkpoint_every must be at least 1, not 0",
        ),
        ("data.crop_seconds=-1", "data.crop_seconds must be greater than 0, not -1"),
        ("train.lr=0", "train.lr must be greater than 0, not 0"),
        ("data.max_items=0", "data.max_items must be at least 1, not 0"),
        (
            "model.audio.sample_rate=8000",
            "model.audio.sample_rate (8000) must equal data.sample_rate (16000), "
            "the rate clips are read at",
        ),
        # types
        ("train.max_steps=3.5", "train.max_steps must be an integer, not 3.5"),
        ("train.lr=abc", "train.lr must be a finite number, not 'abc'"),
        ("train.lr=.nan", "train.lr must be a finite number, not nan"),
        ("train.lr=true", "train.lr must be a finite number, not True"),
        (
            "data.max_items=many",
            "data.max_items must be an integer or null, not 'many'",
        ),
        ("train.cache_features=1", "train.cache_features must be true or false, not 1"),
        ("model.projection=2", "model.projection must be a string, not 2"),
        (
            "data.caption_columns=caption_nope",
            "data.caption_columns must be a list (e.g. [a, b]), not 'caption_nope'",
        ),
        ("data.caption_columns=[1]", "data.caption_columns[0] must be a string, not 1"),
        # sections
        ("train=1", "train must be a section of keys (a mapping), not 1"),
        ("model.audio=3", "model.audio must be a section of keys (a mapping), not 3"),
        ("train.bogus=1", "unknown config key(s) in train: ['bogus']"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("tiny", [override])
    assert str(caught.value) == message


def test_set_mistakes_are_refused_naming_the_override() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("tiny", ["train=1", "train.lr=2"])
    assert str(caught.value) == "--set train.lr=2: train is 1, not a section"
    with pytest.raises(ConfigError) as caught:
        load_config("tiny", ["train.lr=[1,"])
    assert str(caught.value) == (
        "--set train.lr=[1,: cannot read the value (expected the node content, "
        "but found '<stream end>' (line 1, column 4))"
    )


def test_a_config_file_that_is_no_mapping_of_sections_is_refused(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("train:\n  lr: [1,\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(broken))
    assert str(caught.value) == (
        f"config {broken} is not valid YAML: expected the node content, "
        "but found '<stream end>' (line 3, column 1)"
    )
    listed = tmp_path / "listed.yaml"
    listed.write_text("- train\n- model\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(listed))
    assert str(caught.value) == (
        f"config {listed} must be a mapping of sections "
        "(data, augment, model, loss, train), not a list"
    )


def test_numbers_are_read_as_their_fields_want_them(tmp_path: Path) -> None:
    """PyYAML reads `1e-4` (no dot) as a string, an int in a float field is a
    float, and a nullable field takes null."""
    path = tmp_path / "exp.yaml"
    path.write_text(
        "train:\n  lr: 1e-4\n  grad_clip: 2\n  max_steps: 1e4\n"
        "data:\n  max_items: null\n"
    )
    cfg = load_config(str(path), ["augment.negation_prob=1", "train.eval_every=2e2"])
    assert (cfg.train.lr, cfg.train.grad_clip) == (1e-4, 2.0)
    # and a whole number spelt with an exponent is the integer it spells
    assert (cfg.train.max_steps, cfg.train.eval_every) == (10000, 200)
    assert isinstance(cfg.train.max_steps, int)
    assert isinstance(cfg.train.grad_clip, float)
    assert cfg.augment.negation_prob == 1.0
    assert cfg.data.max_items is None
    assert load_config(
        "tiny", ["data.source_weights=[1, 0.5]"]
    ).data.source_weights == [
        1.0,
        0.5,
    ]


def test_a_config_changed_in_code_is_checked_too(
    tiny_cfg: Config, tmp_path: Path
) -> None:
    cfg = copy.deepcopy(tiny_cfg)
    cfg.train.grad_accum = 0
    with pytest.raises(ConfigError, match=r"^train\.grad_accum must be at least 1"):
        check_config(cfg)
    # The trainer checks before it reads or writes anything.
    from trainer.train import train

    with pytest.raises(ConfigError, match=r"^train\.grad_accum must be at least 1"):
        train(cfg, tmp_path / "no-data", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _numeric(hint: Any) -> bool:
    """int or float, or a list or optional of them (bool is no number here)."""
    return hint in (int, float) or any(_numeric(a) for a in get_args(hint))


def _numeric_keys(cls: type, where: str = "") -> list[str]:
    """Dotted keys of the numeric fields (or lists of numbers) of `cls`."""
    keys: list[str] = []
    hints = get_type_hints(cls)
    for f in fields(cls):
        key, hint = f"{where}.{f.name}" if where else f.name, hints[f.name]
        if is_dataclass(hint):
            keys += _numeric_keys(hint, key)
        elif _numeric(hint):
            keys.append(key)
    return keys


def test_every_numeric_field_has_a_range_or_is_declared_unbounded() -> None:
    """A new field must be given its range (or stated to need none)."""
    numeric = set(_numeric_keys(Config))
    assert numeric == set(BOUNDS) | UNBOUNDED
    assert not set(BOUNDS) & UNBOUNDED


def test_every_field_refuses_a_value_of_another_type() -> None:
    """The checker covers every field: a dict is no field's type."""

    def walk(cls: type, where: str = "") -> list[str]:
        hints = get_type_hints(cls)
        out: list[str] = []
        for f in fields(cls):
            key = f"{where}.{f.name}" if where else f.name
            out += walk(hints[f.name], key) if is_dataclass(hints[f.name]) else [key]
        return out

    for key in walk(Config):
        values: dict[str, Any] = {}
        node = values
        *sections, name = key.split(".")
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = {"x": 1}
        with pytest.raises(ConfigError) as caught:
            from_dict(values)
        assert str(caught.value).startswith(f"{key} must be "), key


def test_shipped_configs_pass_the_checks() -> None:
    for name in ("tiny", "clap_default", "msd_negation"):
        assert check_config(load_config(name)).name == name
