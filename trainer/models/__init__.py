"""The CLAP model: audio tower (log-mel + backbone + projection) and text tower.

`ClapModel` is what training optimises and export turns into audio.onnx and
text.onnx; `build_model` makes one from a `ModelConfig`, `load_checkpoint`
rebuilds one from a training checkpoint alone. The learnable temperature
belongs to the loss (trainer/losses.py), not to the model.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from trainer.config import (
    AudioModelConfig,
    Config,
    ConfigError,
    ModelConfig,
    from_dict,
)
from trainer.models.backbones import build_backbone
from trainer.models.frontend import LogMelFrontend
from trainer.models.musicnn import N_MELS
from trainer.models.text import TextTower, make_projection

if TYPE_CHECKING:
    from trainer.probes import AttributeProbes

__all__ = [
    "AudioTower",
    "ClapModel",
    "TextTower",
    "build_model",
    "find_checkpoint",
    "load_checkpoint",
    "pad_to_window",
    "read_checkpoint",
]

# musicnn's weights only make sense on the features they were trained on.
_MUSICNN_FRONTEND = {
    "sample_rate": 16000,
    "n_fft": 512,
    "hop_length": 256,
    "n_mels": N_MELS,
}


def pad_to_window(waveform: torch.Tensor, window_samples: int) -> torch.Tensor:
    """Repeat a clip shorter than one window until it fills it (musicnn's repeat-pad).

    Silence padding would tell the model "quiet ending"; repeating keeps the
    clip's own content, as musicnn's training did.
    """
    length = waveform.shape[-1]
    if length >= window_samples:
        return waveform
    if length == 0:
        raise ValueError("cannot embed an empty waveform")
    reps = -(-window_samples // length)
    return waveform.repeat(1, reps)[:, :window_samples]


class AudioTower(nn.Module):
    """Waveform [B, S >= window] -> projected embedding [B, D] (+ tags [B, T]).

    The waveform is cut into floor(S / window) consecutive windows (a tail
    shorter than a window is dropped); each window goes through the log-mel
    front end and the backbone, the windows' features (and tag probabilities)
    are averaged, then projected. With S == window this is one patch, which
    is what the plugin feeds.
    """

    def __init__(
        self,
        audio_cfg: AudioModelConfig,
        embedding_dim: int,
        projection: str = "mlp",
        *,
        load_weights: bool = True,
    ) -> None:
        super().__init__()
        if audio_cfg.pretrained_backbone:
            got = {k: getattr(audio_cfg, k) for k in _MUSICNN_FRONTEND}
            if got != _MUSICNN_FRONTEND:
                raise ValueError(
                    f"pretrained musicnn needs front end {_MUSICNN_FRONTEND}, got {got}"
                )
        self.sample_rate = audio_cfg.sample_rate
        self.window_samples = round(audio_cfg.window_seconds * audio_cfg.sample_rate)
        self.frontend = LogMelFrontend(
            audio_cfg.sample_rate,
            audio_cfg.n_fft,
            audio_cfg.hop_length,
            audio_cfg.n_mels,
        )
        self.backbone = build_backbone(
            audio_cfg.backbone,
            channels=audio_cfg.channels,
            pretrained=audio_cfg.pretrained,
            features=audio_cfg.features,
            emit_tags=audio_cfg.emit_tags,
            freeze=audio_cfg.freeze_backbone,
            load_weights=load_weights,
        )
        if not audio_cfg.pretrained_backbone:  # musicnn's front end is fixed
            self._check_window(audio_cfg)
        self.projection = make_projection(
            projection, self.backbone.feature_dim, embedding_dim
        )
        # Set by training on a frozen-backbone feature cache (trainer.features):
        # inputs are then backbone features [B, F], not waveforms.
        self.takes_features = False
        # Attached at export (trainer.probes): more tag columns, after the
        # backbone tagger's, read off the same window-averaged features.
        self.probes: AttributeProbes | None = None

    def _check_window(self, audio_cfg: AudioModelConfig) -> None:
        """ConfigError unless one window's log-mel frames pass the backbone:
        its pooling halves the frames, and a hop_length near the window (or
        a window of a few milliseconds) leaves too few of them."""
        frames = self.frontend.num_frames(self.window_samples)
        was_training = self.backbone.training
        self.backbone.eval()  # no batch-norm statistics move
        try:
            with torch.no_grad():
                self.backbone(self.frontend(torch.zeros(1, self.window_samples)))
        except RuntimeError as exc:
            raise ConfigError(
                f"model.audio: a {audio_cfg.window_seconds:g} s window at "
                f"{audio_cfg.sample_rate} Hz with hop_length {audio_cfg.hop_length} "
                f"gives {frames} frame(s), too few for the {audio_cfg.backbone} "
                "backbone: lower hop_length or lengthen window_seconds"
            ) from exc
        finally:
            self.backbone.train(was_training)

    @property
    def tag_names(self) -> list[str]:
        probes = self.probes.names if self.probes is not None else []
        return [*self.backbone.tag_names, *probes]

    def forward(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        batch, window = waveform.shape[0], self.window_samples
        n = waveform.shape[1] // window
        windows = waveform[:, : n * window].reshape(batch * n, window)
        out = self.backbone(self.frontend(windows))
        features = out["features"].reshape(batch, n, -1).mean(dim=1)
        result = {"embedding": self.projection(features)}
        tags = []
        if "tags" in out:
            tags.append(out["tags"].reshape(batch, n, -1).mean(dim=1))
        if self.probes is not None:
            tags.append(self.probes(features))
        if tags:
            result["tags"] = torch.cat(tags, dim=1)
        return result


class ClapModel(nn.Module):
    """Two towers mapping audio and text into one L2-normalised space."""

    def __init__(self, model_cfg: ModelConfig, *, load_weights: bool = True) -> None:
        super().__init__()
        self.config = model_cfg
        self.embedding_dim = model_cfg.embedding_dim
        self.audio = AudioTower(
            model_cfg.audio,
            model_cfg.embedding_dim,
            model_cfg.projection,
            load_weights=load_weights,
        )
        self.text = TextTower(
            model_cfg.text,
            model_cfg.embedding_dim,
            model_cfg.projection,
            load_weights=load_weights,
        )

    @property
    def tag_names(self) -> list[str]:
        """Names of `audio_tags` columns; empty when the audio tower has no tagger."""
        return self.audio.tag_names

    def encode_audio_with_tags(
        self, waveform: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Unit embeddings [B, D] and tag probabilities [B, T] (or None) in one pass."""
        if self.audio.takes_features:
            return F.normalize(self.audio.projection(waveform), dim=-1), None
        out = self.audio(pad_to_window(waveform, self.audio.window_samples))
        return F.normalize(out["embedding"], dim=-1), out.get("tags")

    def encode_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveform [B, S] at the tower's sample rate -> unit embeddings [B, D]."""
        return self.encode_audio_with_tags(waveform)[0]

    def audio_tags(self, waveform: torch.Tensor) -> torch.Tensor | None:
        """Tag probabilities [B, T] named by `tag_names`, or None without a tagger."""
        if not self.tag_names:
            return None
        return self.encode_audio_with_tags(waveform)[1]

    def encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Token ids and mask [B, T] -> unit embeddings [B, D]."""
        return F.normalize(self.text(input_ids, attention_mask), dim=-1)


def build_model(model_cfg: ModelConfig, *, load_weights: bool = True) -> ClapModel:
    """A ClapModel for `model_cfg`; pretrained parts load unless load_weights=False."""
    return ClapModel(model_cfg, load_weights=load_weights)


def find_checkpoint(path: Path | str) -> Path:
    """Resolve a run folder, its checkpoints/ folder or a .pt file to a checkpoint file.

    A run's newest checkpoint is `checkpoints/latest.pt`: a symlink, a copy,
    or a small text file naming the step file — all three are accepted.
    """
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "latest.pt", path / "latest.pt"):
            if candidate.exists():
                path = candidate
                break
        else:
            steps = sorted(path.glob("checkpoints/step_*.pt")) or sorted(
                path.glob("step_*.pt")
            )
            if not steps:
                raise FileNotFoundError(
                    f"no checkpoint in {path} (expected checkpoints/latest.pt)"
                )
            path = steps[-1]
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size < 1024:  # a pointer file naming the real checkpoint
        try:
            name = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            name = ""
        if name:
            return find_checkpoint(path.parent / name)
    return path


def _strip_wrappers(state: dict[str, Any]) -> dict[str, Any]:
    """Remove DDP's `module.` and torch.compile's `_orig_mod.` key prefixes."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def read_checkpoint(file: Path | str) -> dict[str, Any]:
    """The dict a training checkpoint file holds, with its model and config.

    Anything else (another file given by mistake, a copy cut short) raises
    ValueError in one line naming the file: training (`--resume`) and export
    read checkpoints here. Unpickled with `weights_only=False` (the file holds
    the config and RNG states): load only checkpoints you made.
    """
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, EOFError, OSError, RuntimeError) as exc:
        # torch's own reasons run to several lines; the first says it.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(
            f"{file} is not a readable trainer checkpoint (truncated, or another "
            f"kind of file): {reason or type(exc).__name__}"
        ) from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(
            f"{file} is not a trainer checkpoint (needs 'model' and 'config')"
        )
    return ckpt


def load_checkpoint(path: Path | str) -> tuple[ClapModel, Config, dict[str, Any]]:
    """Rebuild the model of a training checkpoint (eval mode) from the checkpoint alone.

    Returns (model, config, raw checkpoint dict). The file is unpickled with
    `weights_only=False` (it holds the config and RNG states): load only
    checkpoints you made.
    """
    file = find_checkpoint(path)
    ckpt = read_checkpoint(file)
    cfg = from_dict(ckpt["config"])
    model = build_model(cfg.model, load_weights=False)
    model.load_state_dict(_strip_wrappers(ckpt["model"]))
    return model.eval(), cfg, ckpt
