"""Log-mel front end as a plain torch module, so it exports into audio.onnx.

The STFT is a strided conv1d with fixed windowed-DFT kernels rather than
`torch.stft`: ONNX's STFT op has patchy runtime support and cannot be
quantized, while Conv + MatMul + Log export everywhere. Defaults reproduce
musicnn's features: `librosa.feature.melspectrogram(y, sr=16000, n_fft=512,
hop_length=256, n_mels=96)` followed by `log10(10000 x + 1)`, computed in
float32 (musicnn's own extractor does the `10000 x` in float16 and overflows).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class LogMelFrontend(nn.Module):
    """Waveform [B, S] -> log-mel [B, 1, n_mels, frames].

    `center=True` pads n_fft // 2 samples on both sides like librosa;
    `pad_mode` is librosa's: "constant" (zeros, librosa >= 0.10's default)
    or "reflect" (older librosa, which musicnn was trained with: only the
    first and last frame differ). frames = 1 + S // hop_length when centred.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        hop_length: int = 256,
        n_mels: int = 96,
        *,
        center: bool = True,
        pad_mode: str = "constant",
        log_scale: float = 10000.0,
    ) -> None:
        super().__init__()
        if pad_mode not in {"constant", "reflect"}:
            raise ValueError(
                f"pad_mode must be 'constant' or 'reflect', not {pad_mode!r}"
            )
        import librosa  # build time only: the mel matrix becomes a buffer

        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = (
            sample_rate,
            n_fft,
            hop_length,
            n_mels,
        )
        self.center, self.pad_mode, self.log_scale = center, pad_mode, log_scale
        n_bins = n_fft // 2 + 1
        # Periodic Hann, as scipy.signal.get_window("hann", n_fft, fftbins=True).
        n = np.arange(n_fft)
        window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
        k = np.arange(n_bins)[:, None]
        angle = 2 * np.pi * k * n[None, :] / n_fft
        # Real and imaginary DFT rows stacked: one conv gives both halves.
        kernels = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window])
        self.register_buffer(
            "dft_kernels", torch.from_numpy(kernels[:, None, :].astype(np.float32))
        )
        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
        self.register_buffer("mel_matrix", torch.from_numpy(mel.astype(np.float32)))

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` samples (librosa's count)."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return 1 + (num_samples - self.n_fft) // self.hop_length

    def power_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram [B, n_mels, frames] (before the log)."""
        x = waveform.float().unsqueeze(1)
        if self.center:
            pad = self.n_fft // 2
            x = F.pad(x, (pad, pad), mode=self.pad_mode)
        spec = F.conv1d(x, self.dft_kernels, stride=self.hop_length)
        n_bins = self.n_fft // 2 + 1
        power = spec[:, :n_bins] ** 2 + spec[:, n_bins:] ** 2
        return torch.matmul(self.mel_matrix, power)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        # Always float32, even under fp16/bf16 autocast: squared STFT
        # magnitudes times 10000 overflow float16 (the musicnn trap of
        # design.md), and the backbone expects musicnn's float32 features.
        with torch.autocast(waveform.device.type, enabled=False):
            mel = self.power_mel(waveform)
            # log10(scale * x + 1) via the natural log: ONNX has Log, not Log10.
            logmel = torch.log(mel * self.log_scale + 1.0) * (1.0 / math.log(10.0))
        return logmel.unsqueeze(1)
