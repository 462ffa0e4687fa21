"""The run folder: its config, checkpoints, resuming, the metrics log, RNG states.

A run folder holds config.yaml (the resolved config), metrics.jsonl (one JSON
record per log/validation step) and checkpoints/step_NNNNNNN.pt + latest.pt.
A checkpoint carries everything needed to continue identically: model, loss
(temperature, SLAP predictors and target), optimizer, scheduler, grad scaler,
step, config, every rank's RNG states and the position in the data.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.config import (
    Config,
    apply_overrides,
    from_dict,
    load_config,
    read_config_file,
)

CHECKPOINTS = "checkpoints"
LATEST = "latest.pt"
# The stateful parts of a run a checkpoint saves, by their names in it.
RESUMED_PARTS = ("model", "loss", "optimizer", "scheduler", "scaler")


class RunError(Exception):
    """A run that cannot start or continue; the message is one line."""


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:07d}.pt"


def resolve_resume(run_dir: Path, resume: str) -> Path:
    """`latest` -> RUN/checkpoints/latest.pt; anything else is a checkpoint path."""
    if resume == "latest":
        path = Path(run_dir) / CHECKPOINTS / LATEST
        if not path.is_file():
            raise RunError(
                f"--resume latest: no checkpoint in {run_dir} "
                f"(no {CHECKPOINTS}/{LATEST})"
            )
        return path
    path = Path(resume)
    if not path.is_file():
        raise RunError(f"--resume {resume}: no checkpoint at {path}")
    return path


def resolve_config(
    config: str | None, overrides: list[str], run_dir: Path, resume: str | None
) -> Config:
    """The config a run trains with.

    A resumed run continues with its own RUN/config.yaml (so a changed file in
    trainer/configs/ cannot silently alter it); `--set` overrides still apply.
    A `--config` given with the resume must resolve to the same values, so
    that none of its own is silently left out.
    """
    if resume:
        # A missing checkpoint is the mistake to report, not the config it lacks.
        resolve_resume(run_dir, resume)
    saved = Path(run_dir) / "config.yaml"
    if resume and saved.is_file():
        cfg = from_dict(apply_overrides(read_config_file(saved), overrides))
        if config:
            _check_same_config(config, load_config(config, overrides), cfg, saved)
        return cfg
    if not config:
        raise RunError(
            "--config is required (a name in trainer/configs/ or a YAML file)"
        )
    return load_config(config, overrides)


def _check_same_config(name: str, given: Config, run: Config, saved: Path) -> None:
    """Refuse a `--config` whose values (`--set` applied to both) differ
    from the run's own, naming the first that does."""
    # The recipe's name last: a copied file differs in it and in the value
    # it was copied to change.
    differences = sorted(
        _differences(given.to_dict(), run.to_dict()), key=lambda d: d[0] == "name"
    )
    if not differences:
        return
    key, ours, theirs = differences[0]
    more = f", and {len(differences) - 1} more" if len(differences) > 1 else ""
    raise RunError(
        f"--config {name} differs from {saved} ({key} {json.dumps(ours)}, not "
        f"{json.dumps(theirs)}{more}): a resume continues {saved}; leave out "
        f"--config, and change values with --set (--set {key}={json.dumps(ours)})"
    )


def _differences(a: Any, b: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) wherever two nested dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in [*a, *(k for k in b if k not in a)]:
            dotted = f"{where}.{key}" if where else str(key)
            found += _differences(a.get(key), b.get(key), dotted)
        return found
    return [] if a == b else [(where, a, b)]


def _atomic_save(obj: Any, path: Path) -> None:
    """Write `obj` to `path` through PATH.tmp, which a failed write removes."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        # Through a Python file: a write the OS refuses (a full disk) then
        # raises its OSError, which torch's own RuntimeError ("unexpected
        # pos") carries as its context, so the reason can be told.
        with tmp.open("wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        # A partial .tmp is no checkpoint and would keep a full disk full.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc` (itself, or what it was raised handling)."""
    while exc is not None and not isinstance(exc, OSError):
        exc = exc.__cause__ or exc.__context__
    return exc


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write step_NNNNNNN.pt and point latest.pt at it (hard link, else a copy).

    A write the filesystem refuses (no space, quota, read-only) is a
    RunError naming the file and the reason; it leaves no partial file, and
    latest.pt as it was.
    """
    folder = Path(run_dir) / CHECKPOINTS
    path = checkpoint_path(run_dir, step)
    tmp = folder / (LATEST + ".tmp")
    written = False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.pt.tmp"):  # what a killed write left
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        _atomic_save(state, path)
        written = True
        try:
            os.link(path, tmp)  # no second copy of a multi-GB file
        except OSError:
            shutil.copyfile(path, tmp)
        os.replace(tmp, folder / LATEST)
    except (OSError, RuntimeError) as exc:
        reason = _os_error(exc)
        if reason is None:
            raise
        with contextlib.suppress(OSError):  # a folder never made has none
            tmp.unlink()
            if written:  # no latest.pt names it, and it holds the space
                path.unlink()
        raise RunError(
            f"writing {path}: {reason.strerror or reason}; {LATEST} is left as it was"
        ) from exc
    # A run only moves forward: checkpoints past this step are what a resume
    # from an earlier one left behind (their metrics records were dropped
    # when it started), and would otherwise outlive the new ones.
    steps = sorted(
        (number, p)
        for p in folder.glob("step_*.pt")
        if (number := _step_of(p)) is not None
    )
    for number, old in steps:
        if number > step:
            old.unlink()
    kept = [p for number, p in steps if number <= step]
    if keep > 0:
        for old in kept[:-keep]:
            old.unlink()
    return path


def _step_of(path: Path) -> int | None:
    """The step of a step_NNNNNNN.pt file, None for another name."""
    try:
        return int(path.stem.removeprefix("step_"))
    except ValueError:
        return None


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records past `step` (a crash may have logged past its last checkpoint)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # empty, or cut short by a kill mid-write
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept))


def load_resume(run_dir: Path, resume: str | None) -> dict[str, Any] | None:
    """The checkpoint a run continues from, or None for a fresh run.

    A fresh run never writes into a folder that already has checkpoints.
    """
    if resume:
        from trainer.models import read_checkpoint

        path = resolve_resume(run_dir, resume)
        ckpt = read_checkpoint(path)
        missing = [k for k in (*RESUMED_PARTS, "step") if k not in ckpt]
        if missing:
            raise RunError(
                f"--resume {resume}: {path} holds no {', '.join(missing)} "
                "state to continue from"
            )
        return ckpt
    if any((Path(run_dir) / CHECKPOINTS).glob("*.pt")):
        raise RunError(
            f"run folder {run_dir} already has checkpoints: "
            "pass --resume latest to continue it, or choose another --run-dir"
        )
    return None


def prepare_run_dir(run_dir: Path, cfg: Config, step: int, resumed: bool) -> Path:
    """Create the folder, write the resolved config (a resumed run's at its
    first checkpoint, `save_checkpoint`'s caller: a resume that fails or is
    stopped before then leaves the run's config as it was) and drop metric
    records past `step`; returns the metrics file. Rank 0 only."""
    (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    if not resumed:
        cfg.dump(run_dir / "config.yaml")
    metrics = run_dir / "metrics.jsonl"
    truncate_metrics(metrics, step)
    return metrics


def state_dicts(parts: dict[str, Any]) -> dict[str, Any]:
    """{name: part.state_dict()} for the stateful parts of a run."""
    return {name: part.state_dict() for name, part in parts.items()}


def load_state_dicts(parts: dict[str, Any], ckpt: dict[str, Any], resume: str) -> None:
    """Load each part's state from the checkpoint entry of the same name
    (`resume`, the --resume argument, starts any error message).

    A part the run's config builds otherwise than the checkpoint's (another
    architecture, objective or set of trained parameters) raises RunError in
    one line; a module's differing tensors are named, as `--init-from` names
    a bundle's.
    """
    for name, part in parts.items():
        state = ckpt[name]
        if isinstance(part, nn.Module):
            differences = _state_differences(part.state_dict(), state)
            if differences:
                shown = ", ".join(differences[:4])
                more = len(differences) - 4
                raise RunError(
                    f"--resume {resume}: the checkpoint's {name} does not match "
                    f"this config: {shown}" + (f" and {more} more" if more > 0 else "")
                )
        try:
            part.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise RunError(
                f"--resume {resume}: the checkpoint's {name} state does not fit "
                f"this config: {reason or type(exc).__name__}"
            ) from exc


def _state_differences(
    have: dict[str, torch.Tensor], saved: dict[str, Any]
) -> list[str]:
    """What keeps `saved` from loading into a module whose state is `have`:
    tensors of another shape, then missing and unexpected names."""
    shapes = [
        f"{key} {tuple(saved[key].shape)} in the checkpoint, {tuple(value.shape)} here"
        for key, value in have.items()
        if key in saved
        and isinstance(saved[key], torch.Tensor)
        and saved[key].shape != value.shape
    ]
    missing = [f"{key} missing" for key in have if key not in saved]
    unexpected = [f"{key} unexpected" for key in saved if key not in have]
    return shapes + missing + unexpected


def check_resume_data(
    ckpt: dict[str, Any], data_dirs: Sequence[Path], resume: str
) -> None:
    """Refuse to continue a run on other data than it trained on.

    The checkpoint's position (epoch, batches into it) and its feature cache
    count the clips of its own data directories, in their order: applied to
    another corpus, the position would silently skip or repeat clips.
    """
    saved = (
        ckpt.get("data_dirs_resolved")
        or ckpt.get("data_dirs")
        or ([ckpt["data_dir"]] if ckpt.get("data_dir") else [])
    )
    if not saved:
        return  # a checkpoint that never recorded its data: nothing to compare
    if len(saved) == len(data_dirs) and all(
        _same_dir(Path(a), Path(b)) for a, b in zip(saved, data_dirs, strict=True)
    ):
        return
    recorded = " ".join(f"--data {d}" for d in saved)
    given = " ".join(f"--data {d}" for d in data_dirs)
    raise RunError(
        f"--resume {resume}: the run trained on {recorded}, not {given}: resume "
        "with its data, or train on other data as a new run (another --run-dir)"
    )


# What a resume may not change, and why: the checkpoint's position in the
# epoch (epoch, batches into it) counts the clips these settings choose and
# the order they shuffle into; its optimizer state holds the parameters the
# freezing settings leave trainable; and the rest only start a new run.
_EPOCH = (
    "the checkpoint's position in the epoch counts the clips and the order "
    "it chose, so another would silently skip or repeat clips"
)
_TRAINABLE = (
    "it decides which parameters train, and the checkpoint's optimizer state "
    "holds those that did"
)
RESUME_FIXED: dict[str, str] = {
    "data.train_split": _EPOCH,
    "data.max_items": _EPOCH,
    "data.caption_columns": _EPOCH,  # a row without any of them is dropped
    "data.group_pairs": _EPOCH,
    "data.source_weights": _EPOCH,
    "train.seed": _EPOCH,  # the epoch's shuffle
    "model.audio.freeze_backbone": _TRAINABLE,
    "model.text.freeze_layers": _TRAINABLE,
    "train.init_from": (
        "--init-from starts a new run from a bundle's weights; a resume "
        "continues the checkpoint's"
    ),
    "model.init_logit_scale": (
        "it only sets the temperature a new run starts at; a resume continues "
        "the checkpoint's"
    ),
}


def check_resume_config(ckpt: dict[str, Any], cfg: Config, resume: str) -> None:
    """Refuse a resume whose config changes a setting of RESUME_FIXED from
    the checkpoint's config, naming it; any other change applies."""
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        return  # a checkpoint without its config: nothing to compare
    now = cfg.to_dict()
    for key, why in RESUME_FIXED.items():
        before, after = _dotted(saved, key), _dotted(now, key)
        if before is _ABSENT or before == after:
            continue  # an older checkpoint without the setting, or unchanged
        was = json.dumps(before)
        raise RunError(
            f"--resume {resume}: the run trained with {key} {was}, not "
            f"{json.dumps(after)}: {why}; resume with {key}={was}, or train "
            "as a new run (another --run-dir)"
        )


_ABSENT = object()


def _dotted(values: dict[str, Any], key: str) -> Any:
    """The value at a dotted key of nested dicts, _ABSENT if there is none."""
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _same_dir(a: Path, b: Path) -> bool:
    """The same folder, however it is spelled (relative, through a link)."""
    try:
        return a.samefile(b)
    except OSError:  # one of them is gone: compare what the paths say
        return a.resolve() == b.resolve()


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) generator states."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
