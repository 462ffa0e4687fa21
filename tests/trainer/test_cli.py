"""The real command line, end to end at toy size on CPU:

fixture data -> 2-rank DDP training under torchrun (4 steps) -> single-process
--resume latest to step 6 -> export -> the plugin loads the bundle -> evaluate
prints JSON. Error paths go through the same `main()` in process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.__main__ import main


def _trainer(
    args: list[str], env: dict[str, str], cwd: Path, ranks: int = 0
) -> subprocess.CompletedProcess:
    """`python -m trainer ARGS`; under torchrun with `ranks` processes if given."""
    launch = (
        ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
        if ranks
        else []
    )
    return subprocess.run(
        [sys.executable, *launch, "-m", "trainer", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _metrics(run: Path) -> list[dict]:
    return [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def test_train_ddp_resume_export_load_evaluate(
    fixture_data: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    data = str(fixture_data)

    # 1. torchrun, two CPU ranks (gloo), 4 per rank = the tiny config's 8 a step
    ddp = _trainer(
        [
            "train",
            "--config",
            "tiny",
            "--data",
            data,
            "--run-dir",
            str(run),
            "--max-steps",
            "4",
            "--set",
            "train.batch_size=4",
        ],
        cli_env,
        tmp_path,
        ranks=2,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "world size 2" in ddp.stdout
    assert ddp.stdout.count("checkpoint ") == 2  # steps 2 and 4, written by rank 0 only
    ckpt = torch.load(
        run / "checkpoints/latest.pt", map_location="cpu", weights_only=False
    )
    assert ckpt["step"] == 4
    assert ckpt["data_state"]["world_size"] == 2
    assert len(ckpt["rng"]["per_rank"]) == 2
    assert ckpt["config"]["train"]["batch_size"] == 4
    assert (run / "config.yaml").is_file()

    # 2. resume in one process to step 6 (the data position is re-split over 1 rank)
    resumed = _trainer(
        [
            "train",
            "--data",
            data,
            "--run-dir",
            str(run),
            "--max-steps",
            "6",
            "--resume",
            "latest",
        ],
        cli_env,
        tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from step 4" in resumed.stdout
    assert "world size 1" in resumed.stdout
    records = _metrics(run)
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    last = [r for r in records if r["split"] == "train"][-1]
    assert np.isfinite(last["loss"])
    assert last["samples_per_s"] > 0
    # the fixture's corrupt clip was drawn, replaced and counted, never fatal
    assert last["skipped_clips"] >= 1
    assert "skipped unreadable clip" in ddp.stdout + resumed.stdout
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == [
        "step_0000002.pt",
        "step_0000004.pt",
        "step_0000006.pt",
    ]

    # 3. export the run; the plugin loads the bundle and embeds with it
    exported = _trainer(
        [
            "export",
            "--run-dir",
            str(run),
            "--out",
            str(bundle),
            "--calibration-data",
            data,
        ],
        cli_env,
        tmp_path,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    from beetsplug.clap.model import Bundle

    loaded = Bundle.load(bundle, threads=1)
    assert loaded.embedding_dim == 16
    assert loaded.manifest["name"] == "clap-tiny"
    text = loaded.embed_text(["jazz with piano, no drums", "rock"])
    assert text.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-3)
    window = round(loaded.window_seconds * loaded.sample_rate)
    audio, _tags = loaded.embed_audio(np.zeros((1, window), np.float32) + 0.01)
    assert audio.shape == (1, 16)

    # 4. evaluate: the last stdout line is the JSON result
    evaluated = _trainer(
        ["evaluate", "--bundle", str(bundle), "--data", data], cli_env, tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert result["model"]["embedding_dim"] == 16
    assert "text_to_music" in result["model"]["results"]["test"]


def _train_error(
    capsys: pytest.CaptureFixture[str], config: str, data: Path, run: Path, *extra: str
) -> str:
    """What `train` prints on stderr when it refuses its arguments (exit 2)."""
    args = ["--config", config, "--data", str(data), "--run-dir", str(run), *extra]
    assert main(["train", *args]) == 2
    return capsys.readouterr().err


def test_cli_errors_are_one_line(
    fixture_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"x")
    assert _train_error(capsys, "tiny", fixture_data, run) == (
        f"error: run folder {run} already has checkpoints: pass --resume latest to "
        "continue it, or choose another --run-dir\n"
    )
    assert _train_error(capsys, "nope", Path("x"), tmp_path / "a").startswith(
        "error: no config 'nope': give a YAML file or one of "
    )
    assert _train_error(capsys, "tiny", tmp_path / "none", tmp_path / "b") == (
        f"error: data directory {tmp_path / 'none'}: no captions/train.parquet\n"
    )
    bogus = ("--set", "train.bogus=1")
    assert _train_error(capsys, "tiny", fixture_data, tmp_path / "c", *bogus) == (
        "error: unknown config key(s) in train: ['bogus']\n"
    )
    assert not (tmp_path / "c" / "checkpoints").exists()  # nothing written on bad input


@pytest.mark.parametrize(
    ("argv", "prefix"),
    [
        (["synth", "--help"], "synth: error:"),
        (["train", "--config", "tiny", "--data", "d", "--run-dir", "r"], "error:"),
    ],
)
def test_a_trainer_without_the_train_extra_says_so_in_one_line(
    argv: list[str], prefix: str, tmp_path: Path
) -> None:
    # torch made unimportable, as in an install of the plugin alone
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from trainer.__main__ import main\n"
        f"sys.exit(main({argv!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"{prefix} torch is not installed: the trainer needs the train extra "
        "(pip install -e '.[train]')\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # trained silently on nothing (loss nan, exit 0) before it was refused
        (("--set", "train.grad_accum=0"), "train.grad_accum must be at least 1, not 0"),
        (("--set", "train.lr=abc"), "train.lr must be a finite number, not 'abc'"),
        (("--set", "train=1"), "train must be a section of keys (a mapping), not 1"),
        (("--set", "train.log_every=0"), "train.log_every must be at least 1, not 0"),
        (
            ("--set", "data.crop_seconds=-1"),
            "data.crop_seconds must be greater than 0, not -1",
        ),
        (
            ("--device", "foo"),
            "--device foo: not a device (cpu, cuda, cuda:1, mps ...)",
        ),
        (("--device", "meta"), "--device meta: not on this machine (it has cpu"),
        (
            ("--set", "model.text.encoder=no-such-encoder"),
            "model.text.encoder 'no-such-encoder': not minilm, tiny, a model "
            "folder, or a model in the Hugging Face cache (nothing is downloaded)",
        ),
        (
            ("--set", "model.audio.hop_length=4000"),
            "model.audio: a 1 s window at 16000 Hz with hop_length 4000 gives "
            "5 frame(s), too few for the cnn backbone",
        ),
    ],
)
def test_config_mistakes_are_one_line_and_write_nothing(
    fixture_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    message: str,
) -> None:
    run = tmp_path / "run"
    err = _train_error(capsys, "tiny", fixture_data, run, *extra)
    assert err.startswith(f"error: {message}")
    assert err.count("\n") == 1
    assert not run.exists()


def test_config_file_mistakes_name_the_file(
    fixture_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken, listed = tmp_path / "broken.yaml", tmp_path / "listed.yaml"
    broken.write_text("train: {lr: 1\n")
    listed.write_text("- tiny\n")
    err = _train_error(capsys, str(broken), fixture_data, tmp_path / "a")
    assert err.startswith(f"error: config {broken} is not valid YAML: ")
    assert err.count("\n") == 1
    assert _train_error(capsys, str(listed), fixture_data, tmp_path / "b") == (
        f"error: config {listed} must be a mapping of sections "
        "(data, augment, model, loss, train), not a list\n"
    )


def test_an_unknown_caption_column_is_refused_with_the_columns_there(
    fixture_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to read as an empty column: every sentence caption dropped."""
    run = tmp_path / "run"
    err = _train_error(
        capsys,
        "tiny",
        fixture_data,
        run,
        "--set",
        "data.caption_columns=[caption_nope]",
    )
    assert err == (
        f"error: data directory {fixture_data}: train captions have no column "
        "'caption_nope' to take captions from (its columns: track_id, title, "
        "artist_name, release, year, tag, caption_writing, caption_summary, "
        "caption_paraphrase, caption_attribute_prediction, path, attributes, "
        "absent, pair_id, pair_attribute, base_piece, soundfont)\n"
    )
    assert not run.exists()


@pytest.fixture(scope="module")
def finished_run(fixture_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained to its end (2 steps), for the resume mistakes."""
    run = tmp_path_factory.mktemp("finished") / "run"
    args = ["--config", "tiny", "--data", str(fixture_data), "--run-dir", str(run)]
    assert main(["train", *args, "--max-steps", "2"]) == 0
    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _resume_error(
    capsys: pytest.CaptureFixture[str], data: Path, run: Path, *extra: str
) -> str:
    """What `train --resume` prints on stderr when it refuses (exit 2)."""
    capsys.readouterr()
    args = ["--data", str(data), "--run-dir", str(run), *extra]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_resume_mistakes_are_one_line_and_write_nothing(
    finished_run: Path,
    fixture_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run, before = finished_run, _snapshot(finished_run)
    latest = ("--resume", "latest", "--max-steps", "3")

    # another architecture: one line naming the first tensors, not 40 of them
    err = _resume_error(
        capsys, fixture_data, run, *latest, "--set", "model.audio.channels=16"
    )
    assert err.startswith(
        "error: --resume latest: the checkpoint's model does not match this "
        "config: audio.backbone.blocks.0.0.0.weight (8, 1, 3, 3) in the "
        "checkpoint, (16, 1, 3, 3) here, "
    )
    assert err.endswith(" more\n")

    # another objective: the loss's parameters differ
    err = _resume_error(
        capsys, fixture_data, run, *latest, "--set", "loss.objective=slap"
    )
    assert err.startswith(
        "error: --resume latest: the checkpoint's loss does not match this config: "
    )

    # a file that is no checkpoint, and a checkpoint cut short
    config = run / "config.yaml"
    err = _resume_error(capsys, fixture_data, run, "--resume", str(config))
    assert err.startswith(f"error: {config} is not a readable trainer checkpoint")
    whole = (run / "checkpoints" / "latest.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole[: len(whole) // 2])
    err = _resume_error(capsys, fixture_data, run, "--resume", str(cut))
    assert err.startswith(f"error: {cut} is not a readable trainer checkpoint")
    # export reads checkpoints with the same reader
    assert main(["export", "--run-dir", str(cut), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cut} is not a readable trainer checkpoint")
    assert err.count("\n") == 1
    assert not (tmp_path / "b").exists()

    # other data: the saved position would be applied to another corpus
    from trainer.data import write_fixture

    other = write_fixture(tmp_path / "other", 10, splits={"train": 1.0}, seed=3)
    assert _resume_error(capsys, other, run, *latest) == (
        f"error: --resume latest: the run trained on --data {fixture_data}, not "
        f"--data {other}: resume with its data, or train on other data as a new "
        "run (another --run-dir)\n"
    )

    # a run folder that is not there: no checkpoint, not a missing --config
    none = tmp_path / "none"
    assert _resume_error(capsys, fixture_data, none, "--resume", "latest") == (
        f"error: --resume latest: no checkpoint in {none} (no checkpoints/latest.pt)\n"
    )
    assert not none.exists()
    assert _snapshot(run) == before


def test_a_run_on_relative_data_resumes_from_another_folder(
    fixture_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--data fixture` typed in the data's parent, resumed elsewhere with the
    folder's full path: the same data, so the resume goes on."""
    run = tmp_path / "run"
    monkeypatch.chdir(fixture_data.parent)
    args = ["--config", "tiny", "--run-dir", str(run), "--max-steps", "1"]
    assert main(["train", "--data", fixture_data.name, *args]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    resume = ["--data", str(fixture_data), "--run-dir", str(run), "--resume", "latest"]
    assert main(["train", *resume, "--max-steps", "2"]) == 0, capsys.readouterr().err
    assert (run / "checkpoints" / "step_0000002.pt").is_file()


def test_resume_with_nothing_to_do_writes_nothing(
    finished_run: Path, fixture_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A finished 2-step run asked for 1: its config.yaml keeps max_steps 2."""
    before = _snapshot(finished_run)
    capsys.readouterr()
    args = ["--data", str(fixture_data), "--run-dir", str(finished_run)]
    assert main(["train", *args, "--resume", "latest", "--max-steps", "1"]) == 0
    assert capsys.readouterr().out == "nothing to do: step 2 >= 1\n"
    assert _snapshot(finished_run) == before
    assert "max_steps: 2" in (finished_run / "config.yaml").read_text()


def test_a_resume_refuses_a_config_other_than_the_runs(
    finished_run: Path,
    fixture_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A --config given with --resume was silently left for RUN/config.yaml:
    one whose values differ is refused, naming the first; one that holds
    the run's values (--set applied to both) goes on."""
    before, saved = _snapshot(finished_run), finished_run / "config.yaml"
    mylr = tmp_path / "mylr.yaml"
    mylr.write_text(saved.read_text().replace("lr: 0.001", "lr: 0.0005"))
    latest = ("--resume", "latest", "--max-steps", "1")
    assert _resume_error(
        capsys, fixture_data, finished_run, "--config", str(mylr), *latest
    ) == (
        f"error: --config {mylr} differs from {saved} (train.lr 0.0005, not "
        f"0.001): a resume continues {saved}; leave out --config, and change "
        "values with --set (--set train.lr=0.0005)\n"
    )
    err = _resume_error(
        capsys, fixture_data, finished_run, "--config", "clap_default", *latest
    )
    assert err.startswith(f"error: --config clap_default differs from {saved} (")
    assert err.endswith(
        ", and change values with --set (--set data.crop_seconds=3.0)\n"
    )
    # --set train.lr applied to both: the same values
    same = ("--config", str(mylr), "--set", "train.lr=0.001", *latest)
    capsys.readouterr()
    args = ["--data", str(fixture_data), "--run-dir", str(finished_run), *same]
    assert main(["train", *args]) == 0
    assert capsys.readouterr().out == "nothing to do: step 2 >= 1\n"
    assert _snapshot(finished_run) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("--init-from", "models/clap-default"),
            "--init-from starts a new run from a bundle's weights; --resume latest "
            "continues the checkpoint's: leave out --init-from, or train a new "
            "run (another --run-dir)",
        ),
        (
            ("--set", "train.init_from=models/clap-default"),
            '--resume latest: the run trained with train.init_from "", not '
            '"models/clap-default": --init-from starts a new run from a bundle\'s '
            "weights; a resume continues the checkpoint's; resume with "
            'train.init_from="", or train as a new run (another --run-dir)',
        ),
        (
            ("--set", "model.init_logit_scale=1.0"),
            "--resume latest: the run trained with model.init_logit_scale "
            "2.659260036932778, not 1.0: it only sets the temperature a new run "
            "starts at; a resume continues the checkpoint's; resume with "
            "model.init_logit_scale=2.659260036932778, or train as a new run "
            "(another --run-dir)",
        ),
        (
            ("--set", "data.max_items=5"),
            "--resume latest: the run trained with data.max_items null, not 5: "
            "the checkpoint's position in the epoch counts the clips and the "
            "order it chose, so another would silently skip or repeat clips; "
            "resume with data.max_items=null, or train as a new run (another "
            "--run-dir)",
        ),
        (
            ("--set", "model.audio.freeze_backbone=full"),
            '--resume latest: the run trained with model.audio.freeze_backbone "none", '
            'not "full": it decides which parameters train, and the checkpoint\'s '
            "optimizer state holds those that did; resume with "
            'model.audio.freeze_backbone="none", or train as a new run (another '
            "--run-dir)",
        ),
        # the same refusal, named: each changes the clips or their order
        (("--set", "data.source_weights=[1.0]"), "data.source_weights null, not [1.0]"),
        (("--set", "data.group_pairs=true"), "data.group_pairs false, not true"),
        (("--set", "data.train_split=test"), 'data.train_split "train", not "test"'),
        (
            ("--set", "data.caption_columns=[caption_writing]"),
            "data.caption_columns [",
        ),
        (("--set", "train.seed=1"), "train.seed 0, not 1"),
        # or the parameters that train
        (("--set", "model.text.freeze_layers=1"), "model.text.freeze_layers 0, not 1"),
    ],
)
def test_a_resume_refuses_what_it_cannot_change(
    finished_run: Path,
    fixture_data: Path,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, ...],
    message: str,
) -> None:
    """These were accepted (or failed naming nothing) and silently ignored,
    or applied a saved position to another clip list; refused in one line
    naming the setting, before anything is written."""
    before = _snapshot(finished_run)
    latest = ("--resume", "latest", "--max-steps", "3")
    err = _resume_error(capsys, fixture_data, finished_run, *latest, *change)
    if change[0] == "--set" and not message.startswith("--resume"):
        message = f"--resume latest: the run trained with {message}"
    assert err.startswith(f"error: {message}"), err
    assert _snapshot(finished_run) == before


def test_a_resume_takes_settings_that_leave_the_epoch_as_it_was(
    finished_run: Path, fixture_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    args = ["--data", str(fixture_data), "--run-dir", str(finished_run)]
    args += ["--resume", "latest", "--max-steps", "1", "--set"]
    args += ["data.num_workers=1", "train.log_every=2", "data.valid_max_items=2"]
    assert main(["train", *args]) == 0
    assert capsys.readouterr().out == "nothing to do: step 2 >= 1\n"


def test_export_untrained_gives_the_random_weights_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "random"
    assert main(["export", "--untrained", "tiny", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    from beetsplug.clap.model import Bundle

    bundle = Bundle.load(out, threads=1)
    assert bundle.manifest["name"] == "clap-tiny-untrained"
    assert "random-weights baseline" in bundle.manifest["training"]["recipe"]
    assert bundle.manifest["training"]["step"] == 0
    assert bundle.embed_text(["rock"]).shape == (1, 16)
    # Either a run or --untrained, never both.
    with pytest.raises(SystemExit):
        main(["export", "--untrained", "tiny", "--run-dir", "x", "--out", "y"])


def test_a_corpus_with_no_readable_clip_is_one_line(
    fixture_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every clip unreadable ends in one line on the feature-cache path too,
    as it does when clips are decoded per step."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(fixture_data, data)
    for path in (data / "audio").rglob("*.*"):
        path.write_bytes(b"this is not audio" * 64)
    cached = (
        "--set",
        "model.audio.freeze_backbone=full",
        "train.cache_features=true",
        f"train.cache_dir={tmp_path / 'cache'}",
    )
    err = _train_error(capsys, "tiny", data, tmp_path / "run", *cached)
    assert err.startswith("error: no readable clip among the 11 clips to compute ")
    assert err.count("\n") == 1
    assert f"{data / 'audio'}/" in err  # names one of them, and why
    assert not list((tmp_path / "run").rglob("*.pt"))
    # Decoded per step instead, the same corpus stops with one line too.
    err = _train_error(capsys, "tiny", data, tmp_path / "run2")
    assert err.startswith("error: no readable clip after ")
    assert err.count("\n") == 1


def _not_json(word: str) -> None:
    raise ValueError(f"{word} is not JSON")  # json.loads takes NaN otherwise


def test_a_diverging_run_stops_at_its_first_non_finite_loss(
    fixture_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """lr 1e9 without clipping: the run stops with one line naming the step
    and what to change, keeps its last good checkpoint and writes none with
    NaN weights; metrics.jsonl stays JSON."""
    run = tmp_path / "run"
    diverge = ("--set", "train.lr=1e9", "train.grad_clip=0", "train.checkpoint_every=1")
    err = _train_error(capsys, "tiny", fixture_data, run, *diverge)
    found = re.fullmatch(
        r"error: loss is (nan|inf) at step (\d+): the run diverged; train again "
        r"\(a new --run-dir, or --resume latest\) with a lower train\.lr "
        r"\(now 1e\+09\) or gradient "
        r"clipping \(train\.grad_clip, now off\); checkpoints up to step (\d+) "
        r"are kept\n",
        err,
    )
    assert found, err
    step = int(found[2])
    assert step >= 2  # a good step came first (lr 1e9 breaks the second)
    assert int(found[3]) == step - 1
    checkpoints = run / "checkpoints"
    assert not (checkpoints / f"step_{step:07d}.pt").exists()
    latest = torch.load(checkpoints / "latest.pt", weights_only=False)
    assert latest["step"] == step - 1
    for name, value in latest["model"].items():
        assert torch.isfinite(value).all(), name
    lines = (run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=_not_json) for line in lines]
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, step))


def test_ctrl_c_saves_the_step_and_says_where_a_resume_continues(
    fixture_data: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group, data
    loader workers included. The run saves the step it is in and exits 130
    with one line; no periodic checkpoint falls due in this run."""
    run = tmp_path / "run"
    args = ["--config", "tiny", "--data", str(fixture_data), "--run-dir", str(run)]
    args += ["--max-steps", "500", "--set", "train.checkpoint_every=1000"]
    args += ["data.num_workers=2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", "train", *args],
        env=cli_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, as a terminal's job
    )
    assert proc.stdout is not None
    output = []
    for line in proc.stdout:
        output.append(line)
        if line.startswith("step 3/500 "):
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=300)
    output.append(rest)
    assert proc.returncode == 130, "".join(output)[-3000:]
    last = rest.strip().splitlines()[-1]
    found = re.fullmatch(
        r"interrupted: saved step (\d+) of 500 \((.+)\); --resume latest "
        r"continues from step (\d+)",
        last,
    )
    assert found, last
    step = int(found[1])
    assert 3 <= step < 500
    assert int(found[3]) == step
    assert found[2] == str(run / "checkpoints" / f"step_{step:07d}.pt")
    latest = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert latest["step"] == step
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").open()]
    assert max(steps) == step


def _torchrun_500_steps(
    data: Path, run: Path, cwd: Path, env: dict[str, str]
) -> subprocess.Popen[str]:
    """Two CPU ranks under torchrun on a run of 500 steps that checkpoints
    every 3, in a session of their own (to be signalled), output piped."""
    args = ["--config", "tiny", "--data", str(data), "--run-dir", str(run)]
    args += ["--max-steps", "500", "--device", "cpu", "--set", "train.batch_size=4"]
    args += ["train.checkpoint_every=3"]
    launch = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.Popen(
        [sys.executable, *launch, "-m", "trainer", "train", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _every_rank_says_where_a_resume_continues(said: str, run: Path) -> None:
    """Each of the 2 ranks of a _torchrun_500_steps run stopped by a signal
    printed its line, naming the last periodic checkpoint, latest.pt's."""
    # One line per rank; the ranks share the pipe, so lines may interleave.
    lines = re.findall(
        r"interrupted: stopped after step (\d+) of 500( without saving it)? \(a "
        r"run of several processes saves only every train\.checkpoint_every "
        r"steps\); --resume latest continues from step (\d+), the last checkpoint",
        said,
    )
    assert len(lines) == 2, said[-3000:]
    latest = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    for step, unsaved, saved in lines:  # a rank may be a step ahead of the other
        assert int(saved) == int(step) - int(step) % 3 == latest["step"]
        assert bool(unsaved) == (step != saved)


def test_ctrl_c_under_torchrun_stops_every_rank_and_keeps_the_checkpoint(
    fixture_data: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Several processes save nothing on Ctrl-C (torchrun passes SIGINT on to
    every rank and kills them 30 s later): every rank stops, none waits on
    another, and each says where a resume continues."""
    run = tmp_path / "run"
    proc = _torchrun_500_steps(fixture_data, run, tmp_path, cli_env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("step 4/500 "):  # after the checkpoint of step 3
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    _every_rank_says_where_a_resume_continues(rest, run)


def test_sigterm_under_torchrun_stops_every_rank_as_ctrl_c_does(
    fixture_data: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A scheduler's SIGTERM to the ranks (it signals every process of the
    job) ended them without a word: each now says where a resume continues,
    as on Ctrl-C, and exits 143, which torchrun reports for each rank."""
    run = tmp_path / "run"
    proc = _torchrun_500_steps(fixture_data, run, tmp_path, cli_env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("step 4/500 "):  # after the checkpoint of step 3
            # torchrun's children are the ranks
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            ranks = [int(pid) for pid in children.read_text().split()]
            assert len(ranks) == 2
            for pid in ranks:
                os.kill(pid, signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    _every_rank_says_where_a_resume_continues(rest, run)
    assert len(re.findall(r"exitcode\s*: 143 ", rest)) == 2, rest[-3000:]


def test_an_out_that_is_a_file_is_one_line(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export finds it before its work; synth, whose folder would go under
    it, says the path and why."""
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    capsys.readouterr()
    assert main(["export", "--run-dir", str(finished_run), "--out", str(afile)]) == 2
    assert capsys.readouterr().err == (
        f"error: --out {afile} is a file, not a bundle folder\n"
    )
    out = afile / "corpus"
    assert main(["synth", "--out", str(out), "--clips", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"synth: error: {out}")
    assert err.endswith(": Not a directory\n")
    assert err.count("\n") == 1
    assert afile.read_text() == "not a folder\n"
