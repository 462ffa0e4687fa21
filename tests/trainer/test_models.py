"""The CLAP model's parts: log-mel front end, backbones, text tower, checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from conftest_models import WINDOW, drum_loop, hash_noise, plucked_chords, sine_tone

from trainer.config import (
    AudioModelConfig,
    Config,
    ModelConfig,
    TextModelConfig,
    from_dict,
)
from trainer.models import (
    build_model,
    find_checkpoint,
    load_checkpoint,
    pad_to_window,
)
from trainer.models.backbones import (
    CnnBackbone,
    MusicnnBackbone,
    ResNetBackbone,
    build_backbone,
)
from trainer.models.frontend import LogMelFrontend
from trainer.models.musicnn import MSD_LABELS, MTT_LABELS
from trainer.models.text import (
    TextTower,
    build_tokenizer,
    save_bundle_tokenizer,
    tokenize,
)


def tiny_config(**audio: object) -> ModelConfig:
    """Tiny towers: 4-channel CNN, ~0.5M-parameter BERT, 8-d embedding."""
    audio_cfg = AudioModelConfig(**{"backbone": "cnn", "channels": 4, **audio})
    return ModelConfig(
        embedding_dim=8,
        audio=audio_cfg,
        text=TextModelConfig(encoder="tiny", max_tokens=16),
    )


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(tiny_config()).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(TextModelConfig(encoder="tiny"))


# --------------------------------------------------------------------------- front end


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_frontend_matches_librosa(pad_mode):
    clips = [drum_loop(), plucked_chords(), sine_tone(2.0, 1000.0)]
    frontend = LogMelFrontend(pad_mode=pad_mode)
    for y in clips:
        mel = librosa.feature.melspectrogram(
            y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96, pad_mode=pad_mode
        )
        expected = np.log10(10000 * mel + 1)
        with torch.no_grad():
            got = frontend(torch.from_numpy(y)[None])
        assert got.shape == (1, 1, 96, expected.shape[1])
        assert expected.shape[1] == frontend.num_frames(len(y))
        assert np.abs(got[0, 0].numpy() - expected).max() < 1e-4


def test_frontend_stays_finite_at_full_scale():
    # musicnn's own extractor overflows float16 here (design.md): we must not.
    loud = torch.from_numpy(np.sign(hash_noise(WINDOW, 3)))[None]  # +-1 square noise
    with torch.no_grad():
        out = LogMelFrontend()(loud)
    assert torch.isfinite(out).all()
    assert out.max() > 4  # really loud: log10(1e4 * power) territory


def test_frontend_computes_in_float32_under_fp16_autocast():
    # fp16 training must not overflow the STFT power (it gave NaN losses).
    loud = torch.from_numpy(np.sign(hash_noise(WINDOW, 3)))[None]
    frontend = LogMelFrontend()
    with torch.no_grad():
        reference = frontend(loud)
        with torch.autocast("cpu", dtype=torch.float16):
            out = frontend(loud)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert torch.allclose(out, reference)


def test_frontend_batches_independently():
    frontend = LogMelFrontend()
    a, b = torch.from_numpy(drum_loop()), torch.from_numpy(sine_tone())
    with torch.no_grad():
        both = frontend(torch.stack([a, b]))
        alone = frontend(b[None])
    assert torch.allclose(both[1:], alone, atol=1e-5)


def test_frontend_rejects_unknown_padding():
    with pytest.raises(ValueError, match=r"pad_mode must be 'constant' or 'reflect'"):
        LogMelFrontend(pad_mode="edge")


# --------------------------------------------------------------------------- backbones


@pytest.mark.parametrize("kind", ["cnn", "resnet"])
def test_small_backbones_pool_any_length(kind):
    net = build_backbone(kind, channels=4).eval()
    for frames in (94, 188, 313):
        with torch.no_grad():
            out = net(torch.randn(3, 1, 96, frames))
        assert out["features"].shape == (3, net.feature_dim)
        assert "tags" not in out
    assert net.tag_names == []


@pytest.mark.parametrize("cls", [CnnBackbone, ResNetBackbone])
def test_partial_freeze_keeps_early_layers_and_their_statistics(cls):
    net = cls(4)
    net.freeze("partial")
    frozen = [p for p in net.parameters() if not p.requires_grad]
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert frozen
    assert trainable
    assert not net.input_bn.weight.requires_grad
    net.train()
    assert not net.input_bn.training  # BN statistics of frozen layers stay fixed
    before = net.input_bn.running_mean.clone()
    net(torch.randn(2, 1, 96, 64) * 5 + 3)
    assert torch.equal(net.input_bn.running_mean, before)


def test_musicnn_backbone_two_nets_features_and_tags():
    net = MusicnnBackbone(
        "MTT_musicnn+MSD_musicnn", features="penultimate+tags", emit_tags=True
    ).eval()
    assert net.feature_dim == 2 * (200 + 50)
    # Both taggers' tags, MTT's first; the MSD names that MTT also uses
    # ("rock", "guitar" ...) stay apart by their prefix.
    assert net.tag_names == [*MTT_LABELS, *(f"msd:{t}" for t in MSD_LABELS)]
    assert len(set(net.tag_names)) == 100
    logmel = LogMelFrontend()(torch.from_numpy(drum_loop())[None])
    with torch.no_grad():
        out = net(logmel)
    assert out["features"].shape == (1, 500)
    assert out["tags"].shape == (1, 100)
    assert ((out["tags"] >= 0) & (out["tags"] <= 1)).all()
    # The tags are each net's probabilities, also fed to the projection.
    assert torch.allclose(out["features"][:, 200:250], out["tags"][:, :50])
    assert torch.allclose(out["features"][:, 450:500], out["tags"][:, 50:])
    msd_only = MusicnnBackbone("MSD_musicnn", features="pooled", emit_tags=True)
    assert msd_only.feature_dim == 1506
    assert msd_only.tag_names == MSD_LABELS


def test_musicnn_freeze_levels():
    partial = build_backbone("musicnn", pretrained="MTT_musicnn", freeze="partial")
    net = partial.nets["MTT_musicnn"]
    assert not any(p.requires_grad for p in net.timbral.parameters())
    assert not any(p.requires_grad for p in net.temporal.parameters())
    assert all(p.requires_grad for p in net.midend.parameters())
    assert all(p.requires_grad for p in net.dense.parameters())
    partial.train()
    assert not net.timbral.training
    assert net.midend.training
    full = build_backbone("musicnn", pretrained="MTT_musicnn", freeze="full")
    assert not any(p.requires_grad for p in full.parameters())
    full.train()
    assert not any(m.training for m in full.modules())


@pytest.mark.parametrize(
    ("features", "emit_tags"),
    [
        ("penultimate", False),
        ("pooled", True),
        ("pooled_bn", True),
        ("penultimate+tags", True),
    ],
)
def test_every_trainable_parameter_gets_a_gradient(features, emit_tags, tokenizer):
    """No parameter is left without a gradient (DDP's unused-parameter error),
    and a tag head the loss never reads keeps its pretrained statistics."""
    cfg = tiny_config(
        backbone="musicnn",
        pretrained="MTT_musicnn",
        features=features,
        emit_tags=emit_tags,
    )
    model = build_model(cfg).train()
    head = model.audio.backbone.nets["MTT_musicnn"]
    wave = torch.from_numpy(np.stack([drum_loop(), plucked_chords()]))
    audio = model.encode_audio(wave)  # batch of 2: BatchNorm1d trains on > 1
    text = model.encode_text(**tokenize(tokenizer, ["drums", "piano"], 16))
    (audio * text).sum().backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable
    assert [n for n, p in trainable.items() if p.grad is None] == []
    assert head.output.weight.requires_grad == ("tags" in features)
    assert head.dense.weight.requires_grad == ("penultimate" in features)
    assert head.dense_bn.training == ("penultimate" in features)
    assert head.pool_bn.weight.requires_grad == (features != "pooled")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone": "vgg"}, r"unknown audio backbone 'vgg': choose cnn, resnet"),
        ({"backbone": "cnn", "pretrained": "MTT_musicnn"}, r"needs backbone: musicnn"),
        ({"backbone": "cnn", "emit_tags": True}, r"emit_tags needs a pretrained"),
        ({"backbone": "musicnn", "pretrained": "MTT"}, r"pretrained 'MTT': use"),
        ({"backbone": "musicnn", "emit_tags": True}, r"emit_tags needs pretrained"),
        (
            {"backbone": "musicnn", "pretrained": "MTT_musicnn", "features": "logits"},
            r"musicnn features 'logits': join one or more of",
        ),
        ({"backbone": "cnn", "freeze": "half"}, r"freeze_backbone must be one of"),
    ],
)
def test_bad_backbone_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_backbone(**kwargs)


def test_pretrained_musicnn_refuses_other_front_ends():
    cfg = tiny_config(backbone="musicnn", pretrained="MTT_musicnn", n_mels=64)
    with pytest.raises(ValueError, match=r"pretrained musicnn needs front end"):
        build_model(cfg)


# --------------------------------------------------------------------------- model


def test_encode_audio_unit_vectors_for_any_length(tiny_model):
    for samples in (WINDOW, WINDOW + 1000, 3 * WINDOW):
        with torch.no_grad():
            emb = tiny_model.encode_audio(torch.randn(2, samples) * 0.1)
        assert emb.shape == (2, 8)
        assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    assert tiny_model.audio_tags(torch.zeros(1, WINDOW)) is None


def test_long_audio_averages_its_windows(tiny_model):
    a, b = torch.from_numpy(drum_loop()), torch.from_numpy(plucked_chords())
    tower = tiny_model.audio
    with torch.no_grad():
        feats = tower.backbone(tower.frontend(torch.stack([a, b])))["features"]
        expected = torch.nn.functional.normalize(tower.projection(feats.mean(0)), dim=0)
        got = tiny_model.encode_audio(torch.cat([a, b])[None])[0]
    assert torch.allclose(got, expected, atol=1e-5)


def test_short_clip_is_repeated_to_a_window(tiny_model):
    clip = torch.from_numpy(drum_loop(1.0))[None]
    padded = pad_to_window(clip, WINDOW)
    assert padded.shape == (1, WINDOW)
    assert torch.equal(padded[0, 16000:32000], clip[0])
    with torch.no_grad():
        assert torch.allclose(
            tiny_model.encode_audio(clip), tiny_model.encode_audio(padded), atol=1e-6
        )
    with pytest.raises(ValueError, match="empty waveform"):
        pad_to_window(torch.zeros(1, 0), WINDOW)


def test_musicnn_model_emits_mtt_tags():
    cfg = tiny_config(
        backbone="musicnn", pretrained="MTT_musicnn", emit_tags=True, features="tags"
    )
    model = build_model(cfg).eval()
    assert model.tag_names == MTT_LABELS
    wave = torch.from_numpy(np.stack([drum_loop(), sine_tone()]))
    with torch.no_grad():
        emb, tags = model.encode_audio_with_tags(wave)
    assert emb.shape == (2, 8)
    assert tags.shape == (2, 50)
    drums = MTT_LABELS.index("drums")
    assert tags[0, drums] > 5 * tags[1, drums]
    assert torch.equal(model.audio_tags(wave), tags)


def test_text_embedding_ignores_padding(tiny_model, tokenizer):
    texts = ["jazz without vocals", "a very long description of calm piano music"]
    batch = tokenize(tokenizer, texts, 16)
    alone = tokenize(tokenizer, texts[:1], 16)
    assert batch["input_ids"].shape[1] > alone["input_ids"].shape[1]
    with torch.no_grad():
        both = tiny_model.encode_text(**batch)
        one = tiny_model.encode_text(**alone)
    assert torch.allclose(both[0], one[0], atol=1e-5)
    assert torch.allclose(both.norm(dim=1), torch.ones(2), atol=1e-5)


def test_tokenize_truncates_keeping_special_tokens(tokenizer):
    ids = tokenize(tokenizer, ["word " * 100], 16)["input_ids"][0]
    assert len(ids) == 16
    assert ids[0].item() == tokenizer.token_to_id("[CLS]")
    assert ids[-1].item() == tokenizer.token_to_id("[SEP]")


def test_bundle_tokenizer_has_no_padding_or_truncation(tmp_path, tokenizer):
    path = save_bundle_tokenizer(TextModelConfig(encoder="tiny"), tmp_path / "t.json")
    spec = json.loads(path.read_text())
    assert spec["padding"] is None
    assert spec["truncation"] is None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    assert len(tok.encode("calm piano").ids) == 4  # [CLS] calm piano [SEP], no pad
    assert tok.encode("calm piano").ids == tokenizer.encode("calm piano").ids


def test_trainer_tokenizes_as_the_plugin_does_with_the_shipped_bundle():
    """The trainer's batches carry the token ids the plugin feeds the shipped
    model: same vocabulary, special tokens, truncation and zero padding."""
    from beetsplug.clap.model import Bundle, default_bundle_path

    bundle = Bundle.load(default_bundle_path(), threads=1, audio=False)
    tok = build_tokenizer(TextModelConfig(encoder="minilm"))
    texts = [
        "jazz without vocals",
        "Calm PIANO, no drums!",
        "café música sin voz",
        "hip-hop / R&B, 1990s",
        "",
        "a very long caption " * 100,
    ]
    ours = tokenize(tok, texts, bundle.max_tokens)
    plugin = bundle.tokenize(texts)
    assert ours["input_ids"].shape == (len(texts), bundle.max_tokens)
    assert ours["input_ids"].numpy().tolist() == plugin["input_ids"].tolist()
    assert ours["attention_mask"].numpy().tolist() == plugin["attention_mask"].tolist()
    for text in texts:  # one text per run, as the plugin embeds queries
        alone = tokenize(tok, [text], bundle.max_tokens)["input_ids"].numpy()
        assert alone.tolist() == bundle.tokenize([text])["input_ids"].tolist()
    # The same tokenizer object cut at another length, then back again.
    assert tokenize(tok, texts, 16)["input_ids"].shape == (len(texts), 16)
    again = tokenize(tok, texts, bundle.max_tokens)["input_ids"].numpy()
    assert again.tolist() == plugin["input_ids"].tolist()


def test_text_tower_freezes_layers_and_pools_cls():
    cfg = TextModelConfig(encoder="tiny", freeze_layers=1, pooling="cls")
    tower = TextTower(cfg, 8, "linear")
    assert not any(p.requires_grad for p in tower.encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in tower.encoder.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in tower.encoder.encoder.layer[1].parameters())
    tower.train()
    assert not tower.encoder.embeddings.training
    assert tower.encoder.encoder.layer[1].training
    with pytest.raises(ValueError, match=r"freeze_layers 5: the encoder has only 2"):
        TextTower(TextModelConfig(encoder="tiny", freeze_layers=5), 8)
    with pytest.raises(ValueError, match=r"text pooling must be mean or cls"):
        TextTower(TextModelConfig(encoder="tiny", pooling="max"), 8)


def test_minilm_loads_offline_and_ranks_related_text_higher(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = TextModelConfig(encoder="minilm")
    tower = TextTower(cfg, 8).eval()
    tok = build_tokenizer(cfg)
    batch = tokenize(tok, ["calm piano music", "soft piano", "heavy metal drums"], 64)
    with torch.no_grad():
        states = tower.encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1)
    pooled = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=1)
    sims = pooled @ pooled.T
    assert sims[0, 1] > sims[0, 2] + 0.1
    assert sum(p.numel() for p in tower.encoder.parameters()) > 20_000_000
    assert tower.encoder.pooler is None  # unused by mean pooling: not built


# ------------------------------------------------------------------- checkpoints


def _write_run(tmp_path: Path, model, cfg: Config, latest: str) -> Path:
    """A run folder laid out as trainer-core writes it."""
    run = tmp_path / f"run-{latest}"
    folder = run / "checkpoints"
    folder.mkdir(parents=True)
    state = {
        "model": model.state_dict(),
        "loss": {"logit_scale": torch.tensor(2.0)},
        "optimizer": {},
        "step": 10,
        "config": cfg.to_dict(),
        "data_dir": "/data/synth",
        "rng": {"per_rank": [np.random.get_state()]},
    }
    torch.save(state, folder / "step_0000010.pt")
    if latest == "link":
        os.link(folder / "step_0000010.pt", folder / "latest.pt")
    elif latest == "symlink":
        (folder / "latest.pt").symlink_to("step_0000010.pt")
    elif latest == "pointer":
        (folder / "latest.pt").write_text("step_0000010.pt\n")
    return run


@pytest.mark.parametrize("latest", ["link", "symlink", "pointer", "none"])
def test_load_checkpoint_rebuilds_the_model(tmp_path, tiny_model, latest):
    cfg = Config(name="tiny-test", model=tiny_config())
    run = _write_run(tmp_path, tiny_model, cfg, latest)
    model, loaded_cfg, ckpt = load_checkpoint(run)
    assert loaded_cfg == from_dict(cfg.to_dict())
    assert ckpt["step"] == 10
    assert not model.training
    wave = torch.from_numpy(drum_loop())[None]
    with torch.no_grad():
        assert torch.allclose(model.encode_audio(wave), tiny_model.encode_audio(wave))


def test_load_checkpoint_strips_ddp_prefixes(tmp_path, tiny_model):
    cfg = Config(model=tiny_config())
    state = {f"module.{k}": v for k, v in tiny_model.state_dict().items()}
    path = tmp_path / "ddp.pt"
    torch.save({"model": state, "config": cfg.to_dict(), "step": 3}, path)
    model, _, _ = load_checkpoint(path)
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint in .* \(expected"):
        find_checkpoint(tmp_path)
    bogus = tmp_path / "bogus.pt"
    torch.save({"weights": {}}, bogus)
    with pytest.raises(ValueError, match=r"is not a trainer checkpoint"):
        load_checkpoint(bogus)
