"""The benchmark's figure: per split, pair accuracy, recall curves and negation bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainer import vocab


def _grouped_bars(
    ax,
    labels: list[str],
    values: dict[str, list[float]],
    colors: list[str],
    rotation: int,
    title: str,
) -> None:
    """One bar per model at each label, side by side, on a 0..1 axis."""
    width = 0.8 / max(1, len(values))
    for j, (name, vals) in enumerate(values.items()):
        ax.bar(
            np.arange(len(labels)) + j * width,
            vals,
            width,
            label=name,
            color=colors[j % 10],
        )
    ax.set_xticks(
        np.arange(len(labels)) + 0.4 - width / 2,
        labels,
        rotation=rotation,
        ha="right",
        fontsize=8,
    )
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)


def plot(result: dict, path: Path) -> None:
    """Per split: minimal-pair accuracy per attribute, recall curves, negation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = {"model": result["model"], **result.get("baselines", {})}
    splits = result["splits"]
    fig, axes = plt.subplots(
        len(splits), 3, figsize=(18, 4.8 * len(splits)), squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, split in enumerate(splits):
        ax_bar, ax_curve, ax_neg = axes[row]
        attrs = sorted(
            {
                a
                for m in models.values()
                for a in m["results"][split]["minimal_pairs"]["attributes"]
            },
            key=lambda a: (a not in vocab.PRESENCE, a),
        )
        accuracy = {}
        for name, model in models.items():
            pa = model["results"][split]["minimal_pairs"]["attributes"]
            accuracy[name] = [pa.get(a, {}).get("accuracy", np.nan) for a in attrs]
        _grouped_bars(
            ax_bar,
            attrs,
            accuracy,
            colors,
            rotation=60,
            title=f"{split}: with-X vs without-X accuracy (minimal pairs)",
        )
        ax_bar.axhline(0.5, color="grey", lw=0.8, ls=":")
        for j, (name, model) in enumerate(models.items()):
            curves = model["results"][split]["curves"]
            for key, style in (
                ("text_to_music", "-"),
                ("negation_half", "--"),
                ("negation_full", ":"),
            ):
                c = curves.get(key) or []
                if c:
                    ax_curve.plot(
                        range(1, len(c) + 1),
                        c,
                        style,
                        color=colors[j % 10],
                        label=f"{name}: {key.replace('negation_', '')}",
                    )
        ax_curve.set_xlabel("k")
        ax_curve.set_ylabel("recall@k (text -> music)")
        ax_curve.set_ylim(0, 1)
        ax_curve.set_title(
            f"{split}: retrieval curves (captions; half/fully negated tags)"
        )
        ax_curve.legend(fontsize=7)
        labels = [
            "orig>full",
            "orig>half",
            "half>full",
            "neg P@10",
            "neg viol.",
            "parsed P@10",
            "parsed viol.",
        ]
        negation = {}
        for name, model in models.items():
            res = model["results"][split]
            b = res["negation"].get("binary", {})
            nr = res["negated_retrieval"]
            vals = [
                b.get("original_vs_full"),
                b.get("original_vs_half"),
                b.get("half_vs_full"),
                nr["plain"]["precision_at_10"],
                nr["plain"]["violation_rate"],
                nr["parsed"]["precision_at_10"],
                nr["parsed"]["violation_rate"],
            ]
            negation[name] = [np.nan if v is None else v for v in vals]
        _grouped_bars(
            ax_neg,
            labels,
            negation,
            colors,
            rotation=30,
            title=f"{split}: negation protocols and negated retrieval",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
