"""The frozen-backbone feature cache: same training signal, computed once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.config import Config
from trainer.data import read_split
from trainer.features import build_features, cache_key
from trainer.models import build_model
from trainer.train import RunError, train


def _quiet(_: str) -> None:
    pass


def _frozen(cfg: Config, tmp_path: Path) -> Config:
    cfg.model.audio.freeze_backbone = "full"
    cfg.train.cache_features = True
    cfg.train.cache_crops = 3
    cfg.train.cache_dir = str(tmp_path / "cache")
    return cfg


def test_cached_features_equal_the_backbone_on_the_same_crops(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    cfg = _frozen(tiny_cfg, tmp_path)
    clips, _ = read_split(fixture_data, "valid")
    model = build_model(cfg.model).eval()
    features = build_features(model.audio, clips, cfg, 3, tmp_path, log=_quiet)
    assert features.shape[:2] == (len(clips), 3)
    assert np.isfinite(features).all()
    # Projecting a cached crop gives the embedding of that crop's waveform.
    from trainer.features import _clip_windows

    windows = _clip_windows(clips[0], 16000, cfg.model.audio.window_seconds, 3)
    with torch.no_grad():
        direct = model.encode_audio(torch.from_numpy(windows))
        model.audio.takes_features = True
        cached = model.encode_audio(torch.from_numpy(features[0]))
    torch.testing.assert_close(direct, cached, atol=1e-5, rtol=1e-4)
    # A second call reads the file instead of recomputing.
    path = tmp_path / f"audio-features-{cache_key(cfg, clips, 3)}.npy"
    stamp = path.stat().st_mtime_ns
    again = build_features(model.audio, clips, cfg, 3, tmp_path, log=_quiet)
    assert path.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again, features)


def test_cache_key_changes_with_the_audio_model(
    fixture_data: Path, tiny_cfg: Config
) -> None:
    clips, _ = read_split(fixture_data, "valid")
    before = cache_key(tiny_cfg, clips, 3)
    tiny_cfg.model.audio.channels += 1
    assert cache_key(tiny_cfg, clips, 3) != before
    assert cache_key(tiny_cfg, clips, 4) != cache_key(tiny_cfg, clips, 3)


def test_training_on_cached_features_learns_and_exports(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    cfg = _frozen(tiny_cfg, tmp_path)
    run = tmp_path / "run"
    result = train(cfg, fixture_data, run, log=_quiet)
    assert result["step"] == cfg.train.max_steps
    assert list((tmp_path / "cache").glob("audio-features-*.npy"))
    # Between two checkpoints the frozen backbone stays put and the head moves.
    first = torch.load(run / "checkpoints/step_0000002.pt", weights_only=False)
    last = torch.load(run / "checkpoints/latest.pt", weights_only=False)
    backbone = [k for k in last["model"] if k.startswith("audio.backbone")]
    head = [k for k in last["model"] if k.startswith("audio.projection")]
    assert backbone
    assert head
    for key in backbone:
        torch.testing.assert_close(first["model"][key], last["model"][key])
    assert any(not torch.equal(first["model"][k], last["model"][k]) for k in head)
    # An exported model takes waveforms again (the flag is not saved).
    from trainer.models import load_checkpoint

    model, _, _ = load_checkpoint(run)
    assert model.audio.takes_features is False


def test_cache_refuses_a_trainable_backbone(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    tiny_cfg.train.cache_features = True
    with pytest.raises(RunError, match="freeze_backbone: full"):
        train(tiny_cfg, fixture_data, tmp_path / "run", log=_quiet)


def test_pooled_crops_without_a_cache_is_refused(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    tiny_cfg.train.pooled_crops_prob = 0.5
    with pytest.raises(RunError, match=r"needs train\.cache_features: true"):
        train(tiny_cfg, fixture_data, tmp_path / "run", log=_quiet)
    assert not list((tmp_path / "run").rglob("*.pt"))


def test_pooled_crops_are_the_mean_of_the_cached_crops(
    fixture_data: Path, tiny_cfg: Config
) -> None:
    from trainer.features import CachedClipDataset

    clips, _ = read_split(fixture_data, "train")
    rng = np.random.default_rng(0)
    features = rng.standard_normal((len(clips), 3, 8)).astype(np.float32)

    def audio(prob: float) -> list[np.ndarray]:
        ds = CachedClipDataset(
            clips, features, tiny_cfg.data, train=True, pooled_prob=prob
        )
        return [ds[i]["audio"] for i in range(len(clips))]

    def is_crop(x: np.ndarray, i: int) -> bool:
        return any(np.array_equal(x, crop) for crop in features[i])

    assert all(is_crop(x, i) for i, x in enumerate(audio(0.0)))
    for i, x in enumerate(audio(1.0)):
        np.testing.assert_allclose(x, features[i].mean(axis=0), rtol=1e-6)
    half = audio(0.5)
    crops = sum(is_crop(x, i) for i, x in enumerate(half))
    assert 0 < crops < len(clips)
    with pytest.raises(ValueError, match="pooled_crops_prob must be in"):
        CachedClipDataset(clips, features, tiny_cfg.data, train=True, pooled_prob=2)


def _counting(model: torch.nn.Module) -> list[int]:
    """Windows the backbone computes from now on, one entry per batch."""
    seen: list[int] = []
    model.audio.backbone.register_forward_hook(
        lambda _m, args, _out: seen.append(int(args[0].shape[0]))
    )
    return seen


def test_a_cache_of_more_clips_computes_only_the_new_ones(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    cfg = _frozen(tiny_cfg, tmp_path)
    clips, _ = read_split(fixture_data, "train")
    assert len(clips) >= 4
    model = build_model(cfg.model).eval()
    cache = tmp_path / "cache"
    first = build_features(model.audio, clips[:-2], cfg, 3, cache, log=_quiet)
    seen = _counting(model)
    lines: list[str] = []
    grown = build_features(model.audio, clips, cfg, 3, cache, log=lines.append)
    # Only the two new clips ran through the backbone, 3 crops each.
    assert sum(seen) == 2 * 3
    # Rows of the readable clips are taken; an unreadable one is tried again.
    kept = int(np.isfinite(first).all(axis=(1, 2)).sum())
    assert 0 < kept < len(clips) - 2  # the fixture holds an unreadable clip
    want = f"{kept} of {len(clips)} clips from 1 earlier cache(s), computing "
    assert any(want + f"{len(clips) - kept}" in line for line in lines), lines
    np.testing.assert_array_equal(grown[:-2], first)
    # The new rows are what a cache built from scratch computes.
    fresh = build_features(model.audio, clips, cfg, 3, tmp_path / "fresh", log=_quiet)
    np.testing.assert_allclose(grown, fresh, atol=1e-5, rtol=1e-4)
    # Other settings share nothing: 2 crops recompute every clip.
    seen.clear()
    build_features(model.audio, clips, cfg, 2, cache, log=_quiet)
    assert sum(seen) == (len(clips) - 1) * 2  # every readable clip


def test_a_rewritten_clip_is_computed_again(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    import os
    import shutil

    cfg = _frozen(tiny_cfg, tmp_path)
    data = tmp_path / "data"
    shutil.copytree(fixture_data, data)
    clips, _ = read_split(data, "train")
    model = build_model(cfg.model).eval()
    cache = tmp_path / "cache"
    first = build_features(model.audio, clips[:-1], cfg, 3, cache, log=_quiet)
    readable = np.flatnonzero(np.isfinite(first).all(axis=(1, 2)))
    # Same bytes, new mtime: a rebuilt corpus may have changed the clip.
    rewritten = clips[int(readable[0])].audio
    stat = rewritten.stat()
    os.utime(rewritten, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    seen = _counting(model)
    build_features(model.audio, clips, cfg, 3, cache, log=_quiet)
    assert sum(seen) == 2 * 3  # the rewritten clip and the new one


def test_a_clip_rewritten_in_place_is_computed_again(
    fixture_data: Path, tiny_cfg: Config, tmp_path: Path
) -> None:
    """The same clip list, one file rewritten with new audio of the same size
    (a rebuilt real corpus: every clip a 10-s int16 .npy): only that clip is
    computed again, and its row is the new audio's."""
    import os
    import shutil

    cfg = _frozen(tiny_cfg, tmp_path)
    data = tmp_path / "data"
    shutil.copytree(fixture_data, data)
    clips, _ = read_split(data, "train")
    model = build_model(cfg.model).eval()
    cache = tmp_path / "cache"
    first = build_features(model.audio, clips, cfg, 3, cache, log=_quiet)
    row = next(
        n
        for n, clip in enumerate(clips)
        if clip.audio.suffix == ".npy" and np.isfinite(first[n]).all()
    )
    path = clips[row].audio
    old = np.load(path)
    size, stat = path.stat().st_size, path.stat()
    np.save(path, np.roll(old, len(old) // 2) * 0.5)
    assert path.stat().st_size == size
    # A rebuild later on the same clock tick must not look unchanged.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    seen = _counting(model)
    again = build_features(model.audio, clips, cfg, 3, cache, log=_quiet)
    assert sum(seen) == 3  # the rewritten clip, and no other
    assert not np.allclose(again[row], first[row])
    others = [n for n in range(len(clips)) if n != row]
    np.testing.assert_array_equal(again[others], first[others])
    fresh = build_features(model.audio, clips, cfg, 3, tmp_path / "fresh", log=_quiet)
    np.testing.assert_allclose(again, fresh, atol=1e-5, rtol=1e-4)


def test_a_cache_does_not_depend_on_how_the_data_path_is_named(
    fixture_data: Path,
    tiny_cfg: Config,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--data syn`, `--data $PWD/syn` and a symlink to it are one corpus: the
    cache built under one name serves the others without computing a clip."""
    import shutil

    cfg = _frozen(tiny_cfg, tmp_path)
    shutil.copytree(fixture_data, tmp_path / "syn")
    (tmp_path / "link").symlink_to(tmp_path / "syn")
    monkeypatch.chdir(tmp_path)
    model = build_model(cfg.model).eval()
    cache = tmp_path / "cache"
    relative, _ = read_split(Path("syn"), "train")
    first = build_features(model.audio, relative, cfg, 3, cache, log=_quiet)
    seen = _counting(model)
    for name in (tmp_path / "syn", Path("link"), Path("./syn/../syn")):
        clips, _ = read_split(name, "train")
        assert cache_key(cfg, clips, 3) == cache_key(cfg, relative, 3)
        again = build_features(model.audio, clips, cfg, 3, cache, log=_quiet)
        np.testing.assert_array_equal(again, first)
    assert seen == []
