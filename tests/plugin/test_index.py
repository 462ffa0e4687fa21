"""`beet clap-index` on a real library: incremental runs, failures, options."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from beets.ui import UserError
from clap_helpers import ClapEnv, write_audio

from beetsplug.clap.store import STATE, VECTORS


def _state(env: ClapEnv) -> dict[str, tuple[str, str | None]]:
    rows = env.sql(
        f"SELECT items.title, s.status, s.error FROM {STATE} s "
        "JOIN items ON items.id = s.item_id"
    )
    return {title: (status, error) for title, status, error in rows}


def _bad_files(root: Path) -> dict[str, Path]:
    """One file per kind of bad input of the issue."""
    root.mkdir(parents=True, exist_ok=True)
    good = write_audio(root / "src.flac", "low", seconds=6.0)
    corrupt = bytearray(good.read_bytes())
    noise = np.random.default_rng(1).integers(0, 256, len(corrupt) - 200, np.uint8)
    corrupt[200:] = noise.tobytes()
    files = {
        "corrupt": root / "corrupt.flac",
        "truncated": root / "truncated.mp3",
        "zero": root / "zero.mp3",
        "silent": write_audio(root / "silent.wav", "silent", seconds=4.0),
        "half-second": write_audio(root / "half.wav", "low", seconds=0.5),
        "not-audio": root / "notes.ogg",
        "missing": root / "missing.flac",
    }
    files["corrupt"].write_bytes(bytes(corrupt))
    mp3 = write_audio(root / "long.mp3", "low", seconds=20.0)
    files["truncated"].write_bytes(mp3.read_bytes()[:1200])
    files["zero"].write_bytes(b"")
    files["not-audio"].write_text("these are liner notes, not music\n" * 50)
    files["missing"].write_bytes(b"x")
    return files


def test_index_embeds_reports_and_is_incremental(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    for kind in ("low", "mid", "high"):
        env.add(corpus[kind], title=kind)
    assert env.lines("clap-index") == ["clap-index: embedded 3, unchanged 0, failed 0"]
    assert env.lines("clap-index") == ["clap-index: embedded 0, unchanged 3, failed 0"]
    (n_vectors,) = env.sql(f"SELECT count(*) FROM {VECTORS}")[0]
    assert n_vectors == 3
    assert set(_state(env).values()) == {("ok", None)}


def test_every_bad_input_is_recorded_and_never_stops_the_run(
    env: ClapEnv, corpus: dict[str, Path], tmp_path: Path
) -> None:
    env.add(corpus["low"], title="good-before")
    for name, path in _bad_files(tmp_path / "bad").items():
        env.add(path, read_tags=False, title=name)
    # A file that disappears after it was added to the library.
    missing = tmp_path / "bad" / "missing.flac"
    missing.unlink()
    env.add(corpus["high"], title="good-after")

    out = env.lines("clap-index")
    assert out[-1] == "clap-index: embedded 2, unchanged 0, failed 7"
    state = _state(env)
    assert state["good-before"] == ("ok", None)
    assert state["good-after"] == ("ok", None)
    assert state["missing"] == ("failed", "file not found")
    assert state["zero"] == ("failed", "empty file (0 bytes)")
    assert state["half-second"] == ("failed", "too short (0.5 s; at least 1 s needed)")
    assert state["silent"] == ("failed", "silent (every window below -70 dBFS)")
    for name in ("corrupt", "truncated", "not-audio"):
        status, error = state[name]
        assert status == "failed"
        assert error.startswith("unreadable audio"), (name, error)
    # Each failure is printed with its path and reason, one line each.
    failed_lines = [line for line in out if line.startswith("failed: ")]
    assert len(failed_lines) == 7
    assert any(
        line.endswith("half.wav: too short (0.5 s; at least 1 s needed)")
        for line in failed_lines
    )
    # Failures are retried (and fail again); the good ones are unchanged.
    assert (
        env.lines("clap-index")[-1] == "clap-index: embedded 0, unchanged 2, failed 7"
    )
    (n_vectors,) = env.sql(f"SELECT count(*) FROM {VECTORS}")[0]
    assert n_vectors == 2


def test_failed_item_is_embedded_once_fixed(env: ClapEnv, tmp_path: Path) -> None:
    path = write_audio(tmp_path / "later.wav", "low", seconds=0.5)
    env.add(path, read_tags=False, title="later")
    assert env.lines("clap-index")[-1].endswith("failed 1")
    write_audio(path, "low", seconds=3.0)
    assert env.lines("clap-index") == ["clap-index: embedded 1, unchanged 0, failed 0"]
    assert _state(env)["later"] == ("ok", None)


def test_changed_file_is_re_embedded(env: ClapEnv, corpus: dict[str, Path]) -> None:
    item = env.add_copy(corpus["low"], title="changing")
    env.add(corpus["mid"], title="mid")
    env.run("clap-index")
    before = env.sql(f"SELECT embedding FROM {VECTORS} WHERE item_id = ?", item.id)[0][
        0
    ]
    # Same path, new content: the high tone replaces the low one.
    write_audio(Path(os.fsdecode(item.path)), "high")
    assert env.lines("clap-index") == ["clap-index: embedded 1, unchanged 1, failed 0"]
    after = env.sql(f"SELECT embedding FROM {VECTORS} WHERE item_id = ?", item.id)[0][0]
    assert before != after
    assert env.lines("clap", "high", "-n", "1", "-f", "$title") == ["changing"]


def test_touch_alone_counts_as_changed(env: ClapEnv, corpus: dict[str, Path]) -> None:
    item = env.add_copy(corpus["low"], title="touched")
    env.run("clap-index")
    later = time.time() + 5
    os.utime(item.path, (later, later))
    assert (
        env.lines("clap-index")[-1] == "clap-index: embedded 1, unchanged 0, failed 0"
    )


def test_pretend_lists_work_and_writes_nothing(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    env.add(corpus["low"], title="low")
    env.add(corpus["high"], title="high")
    out = env.lines("clap-index", "--pretend")
    assert out[-1] == "clap-index: would embed 2, unchanged 0"
    assert out[0].startswith("would embed (new): ")
    tables = {r[0] for r in env.sql("SELECT name FROM sqlite_master")}
    assert not any(t.startswith("clap_") for t in tables)
    env.run("clap-index")
    assert env.lines("clap-index", "-p") == ["clap-index: would embed 0, unchanged 2"]


def test_pretend_says_a_missing_file_would_fail_as_the_run_does(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    env.add(corpus["low"], title="low")
    gone = env.add_copy(corpus["high"], title="gone")
    env.run("clap-index")
    path = os.fsdecode(gone.path)
    away = path + ".away"
    os.rename(path, away)
    expected = [
        f"would fail (file not found): {path}",
        "clap-index: would embed 0, unchanged 1, would fail 1",
    ]
    assert env.lines("clap-index", "--pretend") == expected
    assert env.lines("clap-index") == [
        f"failed: {path}: file not found (kept its vector)",
        "clap-index: embedded 0, unchanged 1, failed 1",
    ]
    assert env.lines("clap-index", "-p") == expected
    # A file out of reach (an unmounted drive) says nothing of its sound:
    # the track stays searchable, and when it is back nothing is redone.
    assert "gone" in env.lines("clap-similar", "title:low", "-f", "$title")
    os.rename(away, path)
    assert env.lines("clap-index") == ["clap-index: embedded 0, unchanged 2, failed 0"]


def test_force_and_query_limit_the_work(env: ClapEnv, corpus: dict[str, Path]) -> None:
    env.add(corpus["low"], title="low")
    env.add(corpus["high"], title="high")
    assert (
        env.lines("clap-index", "title:low")[-1]
        == "clap-index: embedded 1, unchanged 0, failed 0"
    )
    assert (
        env.lines("clap-index")[-1] == "clap-index: embedded 1, unchanged 1, failed 0"
    )
    assert (
        env.lines("clap-index", "--force")[-1]
        == "clap-index: embedded 2, unchanged 0, failed 0"
    )


def test_parallel_decoding_gives_the_same_vectors(
    env: ClapEnv, corpus: dict[str, Path], tmp_path: Path
) -> None:
    for kind in ("low", "mid", "high", "noise", "mp3", "m4a"):
        env.add(corpus[kind], title=kind)
    short = write_audio(tmp_path / "short.wav", "low", seconds=0.5)
    env.add(short, read_tags=False, title="short")
    assert env.lines("clap-index", "-j", "1")[-1].endswith(
        "embedded 6, unchanged 0, failed 1"
    )
    serial = env.sql(f"SELECT item_id, embedding FROM {VECTORS} ORDER BY item_id")
    assert env.lines("clap-index", "-j", "2", "--force")[-1].endswith(
        "embedded 6, unchanged 0, failed 1"
    )
    parallel = env.sql(f"SELECT item_id, embedding FROM {VECTORS} ORDER BY item_id")
    assert [i for i, _ in serial] == [i for i, _ in parallel]
    for (_, a), (_, b) in zip(serial, parallel, strict=True):
        np.testing.assert_allclose(
            np.frombuffer(a, np.float32), np.frombuffer(b, np.float32), atol=1e-6
        )


def test_small_batches_commit_every_batch(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    env.reload(batch_size=1)
    for kind in ("low", "mid", "high"):
        env.add(corpus[kind], title=kind)
    assert (
        env.lines("clap-index")[-1] == "clap-index: embedded 3, unchanged 0, failed 0"
    )
    updated = [r[0] for r in env.sql(f"SELECT updated FROM {STATE} ORDER BY item_id")]
    assert len(set(updated)) == 3  # three transactions, three timestamps


def test_max_windows_setting_is_used(env: ClapEnv, corpus: dict[str, Path]) -> None:
    env.reload(max_windows=2)
    env.add(corpus["wav"], title="wav")
    env.run("clap-index")
    assert env.sql(f"SELECT windows FROM {STATE}") == [(2,)]


def _caps(env: ClapEnv) -> dict[str, int]:
    """The window cap each track's state records, by title."""
    rows = env.sql(
        f"SELECT items.title, s.max_windows FROM {STATE} s "
        "JOIN items ON items.id = s.item_id"
    )
    return dict(rows)


def test_a_changed_max_windows_re_embeds_every_track_and_says_why(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    env.reload(max_windows=2)
    paths = [os.fsdecode(env.add(corpus[k], title=k).path) for k in ("low", "mid")]
    env.run("clap-index")
    before = env.sql(f"SELECT embedding FROM {VECTORS} ORDER BY item_id")
    env.reload(max_windows=3)
    assert env.lines("clap-index", "-p") == [
        *(f"would embed (other max_windows): {path}" for path in paths),
        "clap-index: would embed 2, unchanged 0",
    ]
    assert env.lines("clap-index") == ["clap-index: embedded 2, unchanged 0, failed 0"]
    assert _caps(env) == {"low": 3, "mid": 3}
    assert env.sql(f"SELECT windows FROM {STATE}") == [(3,), (3,)]
    assert env.sql(f"SELECT embedding FROM {VECTORS} ORDER BY item_id") != before
    assert env.lines("clap-index") == ["clap-index: embedded 0, unchanged 2, failed 0"]
    # 0 means the bundle's own cap (4 for the tiny bundle): that is what a
    # vector records, so naming the same cap outright changes nothing.
    env.reload(max_windows=0)
    assert (
        env.lines("clap-index")[-1] == "clap-index: embedded 2, unchanged 0, failed 0"
    )
    assert _caps(env) == {"low": 4, "mid": 4}
    env.reload(max_windows=4)
    assert env.lines("clap-index") == ["clap-index: embedded 0, unchanged 2, failed 0"]


# clap_state as versions before the window cap was recorded created it.
_STATE_WITHOUT_CAP = (
    f"CREATE TABLE {STATE} ("
    "item_id INTEGER PRIMARY KEY, mtime REAL NOT NULL, size INTEGER NOT NULL, "
    "bundle TEXT NOT NULL, "
    "status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), "
    "error TEXT, windows INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL)"
)


def _columns(env: ClapEnv) -> list[str]:
    return [row[1] for row in env.sql(f"PRAGMA table_info({STATE})")]


def test_an_index_without_recorded_caps_is_upgraded_and_stays_current(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    from beetsplug.clap.store import Store, connect

    for kind in ("low", "mid"):
        env.add(corpus[kind], title=kind)
    env.run("clap-index")
    conn = connect(env.lib.path)
    with conn:  # one transaction: the table as an older version left it
        conn.execute("BEGIN")
        conn.execute(f"ALTER TABLE {STATE} RENAME TO old_state")
        conn.execute(_STATE_WITHOUT_CAP)
        conn.execute(
            f"INSERT INTO {STATE} SELECT item_id, mtime, size, bundle, status, "
            "error, windows, updated FROM old_state"
        )
        conn.execute("DROP TABLE old_state")
    conn.close()
    assert "max_windows" not in _columns(env)
    # A reader that has read the old table goes on reading it once upgraded.
    with Store.open(env.lib.path) as reader:
        assert {s.max_windows for s in reader.states().values()} == {0}
        # --pretend reads the old table and writes nothing, not even the column.
        assert env.lines("clap-index", "-p") == [
            "clap-index: would embed 0, unchanged 2"
        ]
        assert "max_windows" not in _columns(env)
        # Rows that recorded no cap count as current, whatever the cap now.
        env.reload(max_windows=2)
        env.add(corpus["high"], title="high")
        assert env.lines("clap-index") == [
            "clap-index: embedded 1, unchanged 2, failed 0"
        ]
        assert {s.max_windows for s in reader.states().values()} == {0, 2}
    assert _columns(env)[-1] == "max_windows"
    assert _caps(env) == {"low": 0, "mid": 0, "high": 2}
    # Added once: later runs find it there.
    assert env.lines("clap-index") == ["clap-index: embedded 0, unchanged 3, failed 0"]
    assert _columns(env).count("max_windows") == 1


def test_a_stopped_forced_run_after_a_cap_change_is_resumed_by_a_plain_run(
    env: ClapEnv, corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import signal

    import beetsplug.clap

    env.reload(max_windows=2, batch_size=1)
    for kind in ("low", "mid", "high"):
        env.add(corpus[kind], title=kind)
    env.run("clap-index")
    env.reload(max_windows=3)

    def ctrl_c_after_the_first_track(count: int, total: int) -> None:
        if count == 1:  # its batch is committed: a real SIGINT, as Ctrl-C
            signal.raise_signal(signal.SIGINT)

    # The command's progress callback, in place of the bar it opens.
    monkeypatch.setattr(
        beetsplug.clap,
        "ProgressBar",
        lambda *_args: contextlib.nullcontext(ctrl_c_after_the_first_track),
    )
    with pytest.raises(SystemExit) as stop:
        env.outputs("clap-index", "--force")
    assert stop.value.code == 130
    monkeypatch.undo()
    # The warning's promise: running it again goes on from there.
    out = env.lines("clap-index", "-p")
    assert [line.split(": ")[0] for line in out[:-1]] == [
        "would embed (other max_windows)"
    ] * 2
    assert out[-1] == "clap-index: would embed 2, unchanged 1"
    assert env.lines("clap-index") == ["clap-index: embedded 2, unchanged 1, failed 0"]
    assert _caps(env) == {"low": 3, "mid": 3, "high": 3}


def test_tags_are_stored_for_a_tagging_bundle(
    env: ClapEnv, corpus: dict[str, Path], tagged_bundle: Path
) -> None:
    env.reload(model=str(tagged_bundle))
    low = env.add(corpus["low"], title="low")
    env.run("clap-index")
    from beetsplug.clap.store import Store

    with Store.open(env.lib.path) as store:
        assert store.tag_names() == ["low", "high", "noise"]
        tags = store.tags([low.id])[low.id]
    assert tags.shape == (3,)
    assert tags[0] > 0.9 > tags[1]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"jobs": -1}, r"^clap.jobs must be a whole number >= 0, not -1$"),
        (
            {"batch_size": "many"},
            r"^clap.batch_size must be a whole number >= 1, not 'many'$",
        ),
        (
            {"negation_weight": "strong"},
            r"^clap.negation_weight must be a number in 0..10",
        ),
        ({"auto": "sometimes"}, r"^clap.auto must be yes or no, not 'sometimes'$"),
        ({"tag_weight": -1}, r"^clap.tag_weight must be a number in 0..10, not -1$"),
        (
            {"speech_weight": 11},
            r"^clap.speech_weight must be a number in 0..10, not 11$",
        ),
        (
            {"affirmed_tag_weight": True},
            r"^clap.affirmed_tag_weight must be a number in 0..10, not True$",
        ),
    ],
)
def test_invalid_settings_are_one_line_errors(
    env: ClapEnv, setting: dict, message: str
) -> None:
    env.reload(**setting)
    with pytest.raises(UserError, match=message):
        env.run("clap-index")
    with pytest.raises(UserError, match=message):
        env.run("clap", "low")


def test_bundle_errors_reach_the_user_as_one_line(env: ClapEnv, tmp_path: Path) -> None:
    env.reload(model=str(tmp_path / "no-such-bundle"))
    with pytest.raises(
        UserError, match=r"^model bundle .*no-such-bundle: not a folder"
    ):
        env.run("clap-index")


def test_progress_bar_draws_only_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from beetsplug.clap.progress import ProgressBar as _ProgressBar

    quiet = _ProgressBar("clap-index")
    quiet.enabled = False  # what a pipe or a file gets
    quiet(5, 10)
    quiet(10, 10)
    assert capsys.readouterr().err == ""
    bar = _ProgressBar("clap-index")
    bar.enabled = True  # what a terminal gets
    bar(0, 4)
    bar(2, 4)  # within the redraw interval: skipped
    bar(4, 4)  # the last one is always drawn, then the line ends
    err = capsys.readouterr().err
    assert err.startswith("\rclap-index [")
    assert "0/4" in err
    assert "2/4" not in err
    assert re.search(r"\] 4/4 [\d,]+ tracks/min\n$", err)
    assert "#" * 30 in err


def test_progress_bar_ends_its_line_before_any_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a terminal the bar is redrawn in place, its line left open: a
    message of the run's log (a warning, the stop line of Ctrl-C) and
    whatever follows the run (an error) each start a line of their own."""
    import logging
    import sys

    from beetsplug.clap.progress import ProgressBar as _ProgressBar

    log = logging.Logger("test-progress-bar")  # of this test alone
    log.addHandler(logging.StreamHandler(sys.stderr))  # the captured stderr
    bar = _ProgressBar("clap-index", log)
    bar.enabled = True  # what a terminal gets

    def interrupted() -> None:
        with bar:
            bar(0, 4)
            log.warning("a decoding process died")
            bar.drawn = float("-inf")  # the next step is drawn
            bar(1, 4)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    log.warning("clap-index stopped (SIGINT)")
    lines = capsys.readouterr().err.split("\n")
    assert lines[0].startswith("\rclap-index [")
    assert lines[0].endswith(" 0/4 0 tracks/min")
    assert lines[1] == "a decoding process died"
    assert lines[2].startswith("\rclap-index [")
    assert " 1/4 " in lines[2]
    assert lines[3:] == ["clap-index stopped (SIGINT)", ""]
    assert log.filters == []  # the run's log, as it was
    # Off a terminal nothing is drawn, so nothing is ended either.
    quiet = _ProgressBar("clap-index", log)
    quiet.enabled = False
    with quiet:
        quiet(0, 4)
        log.warning("a decoding process died")
    assert capsys.readouterr().err == "a decoding process died\n"


def test_index_help_says_what_a_job_does() -> None:
    from beetsplug.clap.cli import subcommands

    (index,) = [cmd for cmd in subcommands() if cmd.name == "clap-index"]
    text = " ".join(index.parser.format_help().split())
    assert (
        "-j JOBS, --jobs=JOBS worker processes, each decoding and embedding "
        "whole tracks (default: clap.jobs, 0 = all cores)"
    ) in text


def test_a_broken_audio_graph_stops_indexing_before_anything_changes(
    env: ClapEnv, corpus: dict[str, Path], tiny_bundle: Path, tmp_path: Path
) -> None:
    import json
    import shutil

    from bundle_factory import write_manifest

    env.add_copy(corpus["low"], title="low")
    env.run("clap-index")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["audio"]["tags"] = ["vocals"]  # the graph has no tags output
    write_manifest(broken, manifest)
    env.reload(model=str(broken))
    with pytest.raises(UserError, match=r"has no 'tags' output$"):
        env.run("clap-index", "--force")
    assert env.sql(f"SELECT status FROM {STATE}") == [("ok",)]  # nothing lost


def test_a_track_removed_while_the_run_goes_on_leaves_no_rows(
    env: ClapEnv, corpus: dict[str, Path]
) -> None:
    """`beet rm` beside a long clap-index: the run's own batch writes rows
    for an item beets has just deleted; the run drops them when it ends."""
    from beetsplug.clap import index
    from beetsplug.clap.model import Bundle
    from beetsplug.clap.store import Store

    items = [env.add(corpus[kind], title=kind) for kind in ("low", "mid", "high")]
    todo = [index.Work(i.id, os.fsdecode(i.path), "new") for i in items]
    bundle = Bundle.load(env.bundle, threads=1)
    with Store.open(env.lib.path) as store:

        def remove_the_last(done: int, total: int) -> None:
            if done == 1:  # beets deletes on its own connection
                with env.lib.transaction() as tx:
                    tx.mutate("DELETE FROM items WHERE id = ?", (items[-1].id,))

        summary = index.run(store, bundle, todo, progress=remove_the_last)
        assert summary.embedded == 3
    assert sorted(env.sql(f"SELECT item_id FROM {STATE}")) == [
        (items[0].id,),
        (items[1].id,),
    ]
    assert len(env.sql(f"SELECT item_id FROM {VECTORS}")) == 2
