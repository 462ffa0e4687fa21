"""Fixtures for the query-understanding and playlist tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from queries_helpers import toy_embed_text


@pytest.fixture
def embed_text() -> Callable[[list[str]], np.ndarray]:
    """The toy negation-aware text encoder (see queries_helpers)."""
    return toy_embed_text
