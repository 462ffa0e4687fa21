"""docs/queries.md and the user guide tell the truth: their examples are what runs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from queries_helpers import ROOT

from beetsplug.clap.query import parse_query

if TYPE_CHECKING:
    from beetsplug.clap.scoring import TextQuery

DOC = ROOT / "docs" / "queries.md"
HEADER = "| Query | Affirmative part | Negated attributes |"
ROW = re.compile(r"^\| `(?P<query>.*)` \| (?P<affirmative>.*) \| (?P<negated>.*) \|$")


def _rows() -> list[tuple[str, str, str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2  # skip the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        m = ROW.match(line)
        assert m, f"malformed row: {line}"
        rows.append((m["query"], m["affirmative"], m["negated"]))
    return rows


def test_the_examples_table_is_long_enough() -> None:
    rows = _rows()
    assert len(rows) >= 40
    assert (
        sum(negated == "(none)" for _q, _a, negated in rows) >= 8
    )  # titles kept whole


@pytest.mark.parametrize(("query", "affirmative", "negated"), _rows())
def test_documented_parse(query: str, affirmative: str, negated: str) -> None:
    parsed = parse_query(query)
    shown = f"`{parsed.affirmative}`" if parsed.affirmative else "(empty)"
    assert shown == affirmative
    assert (", ".join(parsed.negated) or "(none)") == negated


def _default_model_query(text: str) -> TextQuery:
    """`text` as a TextQuery with the shipped default model's tags, their
    meanings as its manifest fixes them and the default weights; the text
    vectors are zeros, since `--explain` prints the query's structure, not
    its similarities."""
    import numpy as np

    from beetsplug.clap.model import Bundle
    from beetsplug.clap.scoring import TextQuery, negated_phrases
    from beetsplug.clap.search import (
        DEFAULT_AFFIRMED_TAG_WEIGHT,
        DEFAULT_TAG_WEIGHT,
    )

    bundle = Bundle.load(ROOT / "models" / "clap-default", threads=1, audio=False)
    parsed = parse_query(text)
    return TextQuery.build(
        parsed,
        np.zeros((1 + len(negated_phrases(parsed)), 1)),
        0.5,
        bundle.tag_names,
        DEFAULT_TAG_WEIGHT,
        DEFAULT_AFFIRMED_TAG_WEIGHT,
        bundle=bundle,
    )


def test_documented_explain_output() -> None:
    """The page shows what `--explain` prints on the shipped default model,
    whose tagger scores vocals and drums alongside text similarity."""
    text = DOC.read_text(encoding="utf-8")
    query = _default_model_query("calm piano, no vocals or drums")
    expected = query.explain()
    assert "penalty('vocals')" in expected
    assert "evidence('calm piano')" in expected
    block = "\n".join("    " + line for line in expected.splitlines())
    assert block in text


def test_documented_composed_explain_output() -> None:
    """The composed example in queries.md is what `--explain` prints for
    `beet clap "without vocals" --like 'title:So What' --unlike
    artist:Sinatra` with the shipped model's tags and the default weights."""
    import numpy as np

    from beetsplug.clap import compose

    text = _default_model_query("without vocals")
    one = np.ones(1, np.float32)
    query = compose.ComposedQuery(
        text,
        [compose.SeedSet("title:So What", 1, [1], one)],
        [compose.SeedSet("artist:Sinatra", 3, [2, 3, 4], one)],
    )
    names = {
        1: "Miles Davis - So What",
        2: "Frank Sinatra - My Way",
        3: "Frank Sinatra - Fly Me to the Moon",
        4: "Frank Sinatra - Summer Wind",
    }
    expected = query.explain(names.__getitem__)
    assert "composed:    description + 1.5 * sim(like seeds)" in expected
    block = "\n".join("    " + line for line in expected.splitlines())
    assert block in DOC.read_text(encoding="utf-8")


def test_documented_similar_explain_output() -> None:
    """The user guide's `clap-similar -e` example is what it prints."""
    from beetsplug.clap import compose

    expected = compose.explain_similar(
        "title:So What", 1, [1], {1: "Miles Davis - So What"}.__getitem__
    )
    assert "ranking:     sim(seeds)" in expected
    block = "\n".join("    " + line for line in expected.splitlines())
    guide = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    assert f'    $ beet clap-similar title:"So What" -e -n 1\n{block}\n' in guide
