"""A small real corpus rendered once per test session (FluidSynth, espeak-ng, FLAC)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ holds bundle_factory, shared with other test folders.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.synth.corpus import CorpusConfig, build_corpus

# Every piece is a minimal pair, so 16 clips give the pair kinds in turn
# (drums, vocals, instrument, instrument) and all four splits; 4-second clips
# keep the render to a few seconds on one worker.
SMALL = {"clips": 16, "seed": 7, "pair_share": 1.0, "duration": 4.0, "workers": 1}


@pytest.fixture(scope="session")
def small_config(tmp_path_factory: pytest.TempPathFactory) -> CorpusConfig:
    return CorpusConfig(out=tmp_path_factory.mktemp("corpus") / "data", **SMALL)


@pytest.fixture(scope="session")
def corpus(small_config: CorpusConfig) -> Path:
    build_corpus(small_config)
    return small_config.out
