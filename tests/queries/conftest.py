"""Fixtures for the query-understanding and playlist tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from queries_helpers import toy_embed_text


@pytest.fixture
def embed_text() -> Callable[[list[str]], np.ndarray]:
    """The toy negation-aware text encoder (see queries_helpers)."""
    return toy_embed_text


@pytest.fixture(autouse=True)
def _fresh_beets_class_caches() -> Iterator[None]:
    """Forget beets' per-class caches (named queries, field types) around each test.

    beets computes `Item._queries` (the `clap:` prefix among them) once per
    process, from the plugins loaded at that moment; a test that parses a
    query with no plugin loaded would otherwise hide `clap:` from every later
    test. beets' own test suite clears the same cache after each test.
    """
    from beets.util import cached_classproperty

    cached_classproperty.cache.clear()
    yield
    cached_classproperty.cache.clear()
