"""What fine-tuning the musicnn backbone would cost per step on this machine.

The default model trains its heads on cached musicnn features (the backbone
is frozen). This times one batch of 3-s crops through the audio tower of
`clap_default` for each `model.audio.freeze_backbone` level: forward only
when fully frozen (what the feature cache pays once per crop), forward and
backward otherwise (what every training step would pay). Random audio: the
cost does not depend on the content.

    python tests/benchmarks/finetune_cost.py [--threads N] [--batch 48]
"""

from __future__ import annotations

import argparse
import copy
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all)")
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import torch

    from trainer.config import load_config
    from trainer.models import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config("clap_default")
    samples = round(cfg.model.audio.window_seconds * cfg.model.audio.sample_rate)
    x = torch.randn(args.batch, samples)
    print(
        f"{args.batch} crops of {cfg.model.audio.window_seconds:g} s, "
        f"{torch.get_num_threads()} torch thread(s)"
    )
    for level in ("full", "partial", "none"):
        c = copy.deepcopy(cfg)
        c.model.audio.freeze_backbone = level
        model = build_model(c.model).train()
        trainable = sum(p.numel() for p in model.audio.parameters() if p.requires_grad)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            if level == "full":
                with torch.no_grad():
                    model.encode_audio(x)
            else:
                model.encode_audio(x).sum().backward()
            times.append(time.perf_counter() - start)
        what = "forward" if level == "full" else "forward + backward"
        print(
            f"freeze_backbone={level:8s} trainable audio parameters "
            f"{trainable:>10,}  {what}: {min(times):.1f} s"
        )


if __name__ == "__main__":
    main()
