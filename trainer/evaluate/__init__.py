"""The benchmark: retrieval and negation metrics of model bundles on held-out splits.

    python -m trainer evaluate --bundle DIR --data DIR [--split test]
        [--split test_shift] [--baseline random=DIR --baseline blind=DIR]
        [--out DIR] [--max-clips N]

`clips` reads a split and embeds it as the plugin embeds tracks, `metrics`
holds the pure metric functions (tested on hand-made matrices),
`protocols` the benchmark's protocols, `plot` the figure and `report` one
run (JSON and PNG). The command line is in trainer/__main__.py; the names
below are the package's public surface.
"""

from __future__ import annotations

from trainer.evaluate.clips import (
    EMBED_CHUNK,
    Clip,
    EvaluateError,
    TextEmbedder,
    clip_windows,
    embed_clips,
    has_split,
    load_split,
    windows_from_array,
)
from trainer.evaluate.metrics import (
    CURVE_MAX_K,
    RECALL_KS,
    TOP_K,
    binary_accuracy,
    map_at,
    recall_at,
    recall_curve,
    retrieval_metrics,
    target_ranks,
    topk_precision_violation,
)
from trainer.evaluate.protocols import (
    AFFIRMED_TAG_WEIGHT_SWEEP,
    CONJUNCTIVE_FORMS,
    NEGATED_FORMS,
    PAIR_NEGATIVE,
    PAIR_NEGATIVE_EXTRA,
    PAIR_POSITIVE,
    TAG_WEIGHT_SWEEP,
    WEIGHT_SWEEP,
    ConjunctiveQuery,
    NegatedQuery,
    ParsedScores,
    caption_retrieval,
    conjunctive_queries,
    conjunctive_retrieval,
    minimal_pairs,
    negated_queries,
    negated_retrieval,
    negation_protocols,
    pair_accuracy,
    parsed_scores,
)
from trainer.evaluate.report import FORMAT, evaluate_split, run, to_json
from trainer.splits import CAPTION_COLUMNS

__all__ = [
    "AFFIRMED_TAG_WEIGHT_SWEEP",
    "CAPTION_COLUMNS",
    "CONJUNCTIVE_FORMS",
    "CURVE_MAX_K",
    "EMBED_CHUNK",
    "FORMAT",
    "NEGATED_FORMS",
    "PAIR_NEGATIVE",
    "PAIR_NEGATIVE_EXTRA",
    "PAIR_POSITIVE",
    "RECALL_KS",
    "TAG_WEIGHT_SWEEP",
    "TOP_K",
    "WEIGHT_SWEEP",
    "Clip",
    "ConjunctiveQuery",
    "EvaluateError",
    "NegatedQuery",
    "ParsedScores",
    "TextEmbedder",
    "binary_accuracy",
    "caption_retrieval",
    "clip_windows",
    "conjunctive_queries",
    "conjunctive_retrieval",
    "embed_clips",
    "evaluate_split",
    "has_split",
    "load_split",
    "map_at",
    "minimal_pairs",
    "negated_queries",
    "negated_retrieval",
    "negation_protocols",
    "pair_accuracy",
    "parsed_scores",
    "recall_at",
    "recall_curve",
    "retrieval_metrics",
    "run",
    "target_ranks",
    "to_json",
    "topk_precision_violation",
    "windows_from_array",
]
