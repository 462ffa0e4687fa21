"""Whole-process behaviour: start-up imports, kills (nothing left running),
the one-run lock, concurrent readers, converting an old sqlite-vec index,
and embedding on import."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from beets.library import Item, Library
from beets.ui import UserError
from clap_helpers import (
    ClapEnv,
    beet_env,
    beet_without,
    run_python,
    wait_for,
    write_audio,
    write_tagged,
)

from beetsplug.clap.convert import VEC_PATH_ENV
from beetsplug.clap.convert import extension_connection as _extension_connection
from beetsplug.clap.store import CODES, STATE, VECTORS, connect

HEAVY = (
    "torch",
    "onnxruntime",
    "librosa",
    "transformers",
    "soundfile",
    "soxr",
    "numpy",
)


def _beets_dir(tmp_path: Path, bundle: Path, **clap: object) -> Path:
    """A BEETSDIR with a config for `python -m beets` subprocesses."""
    beetsdir = tmp_path / "beetsdir"
    beetsdir.mkdir()
    settings = {"model": str(bundle), **clap}
    lines = [
        f"directory: {tmp_path / 'music'}",
        f"library: {beetsdir / 'library.db'}",
        "plugins: clap",
        "create_backup_before_migrations: no",
        "clap:",
        *(f"    {k}: {v}" for k, v in settings.items()),
    ]
    (beetsdir / "config.yaml").write_text("\n".join(lines) + "\n")
    return beetsdir


def _library(beetsdir: Path, files: list[Path]) -> None:
    from beets import config

    # A new database gets beets' migrations; skip their backup copies.
    config["create_backup_before_migrations"] = False
    lib = Library(str(beetsdir / "library.db"))
    for i, path in enumerate(files):
        item = Item(
            path=str(path).encode(), title=f"track {i:03d}", artist="a", track=i
        )
        lib.add(item)
    lib._close()


def _beet(beetsdir: Path, *args: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "beets", *args],
        env=beet_env(beetsdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _last_line(beetsdir: Path, code: str) -> str:
    """The last line `code` prints, run by Python with the test's beets config."""
    return run_python(beetsdir, code, check=True).stdout.splitlines()[-1]


def test_loading_the_plugin_imports_no_heavy_module(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    beetsdir = _beets_dir(tmp_path, tiny_bundle)
    code = (
        "import sys\n"
        "import beetsplug.clap\n"
        "import beets.plugins\n"
        "from beets import config\n"
        "config.read()\n"
        "beets.plugins.load_plugins()\n"
        "assert [p.name for p in beets.plugins.find_plugins()] == ['clap']\n"
        f"print('heavy:', *(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert _last_line(beetsdir, code) == "heavy:"
    # And a whole `beet ls` with the plugin loaded stays light as well
    # (beets' own autotagger imports numpy, through `lap`).
    code = (
        "import sys\n"
        "from beets.ui import main\n"
        "main(['ls'])\n"
        "import beets.plugins\n"
        "assert [p.name for p in beets.plugins.find_plugins()] == ['clap']\n"
        f"light = [m for m in {HEAVY!r} if m != 'numpy']\n"
        "print('heavy:', *(m for m in light if m in sys.modules))\n"
    )
    assert _last_line(beetsdir, code) == "heavy:"


def _many_files(root: Path, n: int) -> list[Path]:
    first = write_audio(root / "t000.wav", "low", seconds=3.0, rate=16000)
    files = [first]
    for i in range(1, n):
        dst = root / f"t{i:03d}.wav"
        dst.write_bytes(first.read_bytes())
        files.append(dst)
    return files


def _wait_for_rows(db: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Return as soon as the indexer has committed its first batch (a
    condition, polled; the deadline only bounds a run that never gets
    there, and is generous for a loaded machine).

    Polls with the standard sqlite3 (the state table is a plain table).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = sqlite3.connect(db, timeout=10)
        try:
            rows = conn.execute(f"SELECT count(*) FROM {STATE}").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            rows = 0
        finally:
            conn.close()
        if rows:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("indexing never committed a batch")


def _consistent(db: Path) -> tuple[int, int]:
    """Integrity, and vectors and state rows matching one to one."""
    conn = connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        vec = {r[0] for r in conn.execute(f"SELECT item_id FROM {VECTORS}").fetchall()}
        ok = {
            r[0]
            for r in conn.execute(
                f"SELECT item_id FROM {STATE} WHERE status = 'ok'"
            ).fetchall()
        }
        assert vec == ok
        return len(vec), conn.execute("SELECT count(*) FROM items").fetchone()[0]
    finally:
        conn.close()


def _indexing(
    tmp_path: Path, tiny_bundle: Path, n: int, batch_size: int, jobs: int
) -> tuple[Path, Path, subprocess.Popen]:
    """A library of `n` files and a `beet clap-index` run on it that has
    committed its first batch: (beets folder, library.db, the process)."""
    beetsdir = _beets_dir(tmp_path, tiny_bundle, batch_size=batch_size, jobs=jobs)
    _library(beetsdir, _many_files(tmp_path / "music", n))
    db = beetsdir / "library.db"
    # Python turns SIGINT into KeyboardInterrupt unless it starts with the
    # signal ignored (as a shell's background job does): a terminal's Ctrl-C.
    proc = _beet(
        beetsdir,
        "clap-index",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for_rows(db, proc)
    return beetsdir, db, proc


def _summary(out: str) -> str:
    """The last line clap-index prints."""
    return out.strip().splitlines()[-1]


def _resume(beetsdir: Path, n: int, done: int) -> None:
    """A new clap-index run embeds the `n - done` items an interrupted run
    left, and keeps the `done` it committed."""
    rerun = _beet(beetsdir, "clap-index")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert _summary(out) == (
        f"clap-index: embedded {n - done}, unchanged {done}, failed 0"
    )


def test_killed_mid_index_leaves_a_consistent_db_and_resumes(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    n = 200
    beetsdir, db, proc = _indexing(tmp_path, tiny_bundle, n, batch_size=1, jobs=1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    done, items = _consistent(db)
    assert items == n
    assert 0 < done < n, "the kill should land mid-run"
    # beets itself still reads the library.
    plain = sqlite3.connect(db)
    assert plain.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    plain.close()
    _resume(beetsdir, n, done)
    assert _consistent(db) == (n, n)


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, state letter), from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        table[int(stat.parent.name)] = (int(fields[1]), fields[0])
    return table


def _children(pid: int, table: dict[int, tuple[int, str]] | None = None) -> list[int]:
    """Direct child processes of `pid`."""
    table = _processes() if table is None else table
    return [child for child, (parent, _) in table.items() if parent == pid]


def _descendants(pid: int) -> set[int]:
    table = _processes()
    found, todo = set(), [pid]
    while todo:
        for child in _children(todo.pop(), table):
            found.add(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for a reaper that
    a container's init may never be)."""
    state = _processes().get(pid)
    return state is not None and state[1] != "Z"


def _wait_until(condition: Callable[[], Any], what: str) -> Any:
    """Poll `condition` often until it holds (returning its value); the
    deadline is generous because a loaded machine is slow."""
    return wait_for(condition, 120.0, what, step=0.01)


def _workers(proc: subprocess.Popen) -> list[int]:
    """beet -> forkserver -> decoding workers: the grandchildren."""
    assert proc.poll() is None, proc.communicate()
    return [w for child in _children(proc.pid) for w in _children(child)]


def _spools(pid: int) -> list[Path]:
    from beetsplug.clap import workers

    base = Path(workers._spool_base() or tempfile.gettempdir())
    return sorted(base.glob(f"{workers.SPOOL_PREFIX}{pid}-*"))


needs_proc = pytest.mark.skipif(
    not Path("/proc").is_dir(), reason="needs /proc to find workers"
)


@needs_proc
def test_a_dying_decoder_process_does_not_stop_the_run(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    n = 200
    _beetsdir, db, proc = _indexing(tmp_path, tiny_bundle, n, batch_size=1, jobs=2)
    # beet -> forkserver -> decoding workers: kill one worker once one exists.
    workers = _wait_until(lambda: _workers(proc), "a decoding worker")
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "a decoding process died; decoding" in err
    assert _summary(out) == f"clap-index: embedded {n}, unchanged 0, failed 0"
    assert _consistent(db) == (n, n)


@needs_proc
@pytest.mark.parametrize(
    "sig",
    [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
    ids=["KILL", "TERM", "INT"],
)
def test_a_killed_index_leaves_no_process_and_no_spool_behind(
    tmp_path: Path, tiny_bundle: Path, sig: signal.Signals
) -> None:
    n = 200
    beetsdir, db, proc = _indexing(tmp_path, tiny_bundle, n, batch_size=1, jobs=2)
    _wait_until(lambda: _workers(proc), "a decoding worker")
    # The forkserver, the resource tracker and the workers.
    tree = _descendants(proc.pid)
    assert _spools(proc.pid), "workers spool their results"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig != signal.SIGKILL:
        # Cleaned up, and says so; 128 + the signal, as a shell reports a
        # process the signal ended (Ctrl-C: 130), so `clap-index && next`
        # stops there.
        assert proc.returncode == 128 + sig, err
        assert err.strip().splitlines()[-1] == (
            f"clap: clap-index stopped ({sig.name}): finished batches are kept; "
            "run it again to go on"
        )
        assert not _spools(proc.pid)
    else:
        assert proc.returncode == -signal.SIGKILL
    _wait_until(
        lambda: not any(_running(pid) for pid in tree),
        "every process of the killed run to end",
    )
    done, _ = _consistent(db)
    assert 0 < done < n, "the signal should land mid-run"
    _resume(beetsdir, n, done)
    # A SIGKILLed run's spool is removed by the next run (its owner is gone).
    assert not _spools(proc.pid)
    assert _consistent(db) == (n, n)


STOP_LINE = (
    "clap: clap-index stopped (SIGINT): finished batches are kept; "
    "run it again to go on"
)


@contextlib.contextmanager
def _terminal_job(
    tmp_path: Path, tiny_bundle: Path, n: int
) -> Iterator[tuple[Path, subprocess.Popen]]:
    """`beet clap-index` with two workers over `n` files, run as a
    terminal's job (a process group of its own, Ctrl-C raising
    KeyboardInterrupt): (beets folder, the process), which is killed with
    its group if the test leaves it running."""
    beetsdir = _beets_dir(tmp_path, tiny_bundle, batch_size=1, jobs=2)
    _library(beetsdir, _many_files(tmp_path / "music", n))
    proc = _beet(
        beetsdir,
        "clap-index",
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        yield beetsdir, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


@needs_proc
def test_ctrl_c_again_while_stopping_ends_the_run_at_once(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    """Ctrl-C pressed again and again on a terminal (SIGINT to the whole
    process group) while the run stops: the stop is not cut short half-way
    (that left the workers without their stop signal and the process waiting
    for them for ever at exit), and still ends with 130 and the one line."""
    n = 400
    with _terminal_job(tmp_path, tiny_bundle, n) as (beetsdir, proc):
        db = beetsdir / "library.db"
        _wait_for_rows(db, proc)
        workers = _wait_until(
            lambda: len(_workers(proc)) == 2 and _workers(proc), "two workers"
        )
        tree = _descendants(proc.pid)
        assert set(workers) <= tree
        # The first Ctrl-C, then more until the run has ended: some land
        # while it stops, whatever the machine's speed.
        os.killpg(proc.pid, signal.SIGINT)
        sent = 1
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                proc.wait(timeout=0.005)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
                    sent += 1
        assert proc.poll() is not None, f"still running after {sent} Ctrl-C"
        _, err = proc.communicate(timeout=60)
    assert sent > 1, "the run ended before a second Ctrl-C"
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert "Exception ignored" not in err, err
    assert err.strip().splitlines() == [STOP_LINE], err
    _wait_until(
        lambda: not any(_running(pid) for pid in tree),
        "every process of the stopped run to end",
    )
    assert not _spools(proc.pid)
    done, _ = _consistent(db)
    assert 0 < done < n, "the signal should land mid-run"
    _resume(beetsdir, n, done)
    assert _consistent(db) == (n, n)


@needs_proc
def test_ctrl_c_as_the_workers_start_is_one_line(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    """Ctrl-C on a terminal (SIGINT to the whole process group) the moment
    the first decoding worker exists, before it has set itself up: no
    worker prints a KeyboardInterrupt traceback of its own beside the run's
    one line."""
    with _terminal_job(tmp_path, tiny_bundle, 50) as (_beetsdir, proc):
        _wait_until(lambda: _workers(proc), "a decoding worker")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines() == [STOP_LINE], err


# Run as a script: a stopped run whose Ctrl-C lands the instant the
# forkserver has forked a worker, before the pool has recorded it. Each
# worker imports this script as __mp_main__ while it starts, before it
# reads the rest of its start-up data (the pool's semaphores among them),
# and waits there until the run has finished stopping: a worker the run
# did not stop then finds the semaphores gone and prints a traceback.
_CTRL_C_MID_START = """
import os, time
if __name__ == "__mp_main__":
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["CLAP_TEST_STOPPED"]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
if __name__ == "__main__":
    import signal
    from multiprocessing import popen_forkserver
    from beetsplug.clap.runguard import terminate_like_interrupt
    from beetsplug.clap.workers import Workers, pooled

    launch = popen_forkserver.Popen._launch

    def launch_then_ctrl_c(self, process_obj):
        launch(self, process_obj)
        os.kill(os.getpid(), signal.SIGINT)

    popen_forkserver.Popen._launch = launch_then_ctrl_c
    workers = Workers(2, "/nonexistent/audio.onnx", 1)
    args = [(i, f"/nonexistent/{i}.wav", 16000, 1.0, 1) for i in range(4)]
    try:
        with terminate_like_interrupt(interrupt_once=True):
            for _ in pooled(args, workers):
                pass
    except KeyboardInterrupt:
        print("stopped")
    with open(os.environ["CLAP_TEST_STOPPED"], "w"):
        pass
"""


def test_ctrl_c_the_instant_a_worker_is_forked_leaves_no_worker_behind(
    tmp_path: Path,
) -> None:
    """The stop waits until the worker it interrupts is recorded, so the
    run stops it with the others: no stray worker, no traceback."""
    script = tmp_path / "stop_mid_start.py"
    script.write_text(_CTRL_C_MID_START)
    env = beet_env(tmp_path, CLAP_TEST_STOPPED=str(tmp_path / "stopped"))
    # communicate() reads to the end of stderr, which every worker holds:
    # a stray worker's traceback is read too.
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["stopped"]
    assert "Traceback" not in out.stderr, out.stderr


def test_workers_are_born_deaf_to_ctrl_c() -> None:
    """Workers hold SIGINT blocked from their first instant (inherited from
    the forkserver, started with it blocked), not only once their
    initializer has run; the process that started them still takes it."""
    code = (
        "import signal\n"
        "from beetsplug.clap.workers import Workers\n"
        "pool = Workers(1, '/nonexistent/audio.onnx', 1).executor()\n"
        "mask = pool.submit(signal.pthread_sigmask, signal.SIG_BLOCK, []).result()\n"
        "pool.shutdown()\n"
        "mine = signal.pthread_sigmask(signal.SIG_BLOCK, [])\n"
        "print(signal.SIGINT in mask, signal.SIGINT in mine)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def test_an_interrupted_index_says_so_on_a_line_of_its_own(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    """On a terminal the progress bar is redrawn in place, its line open:
    Ctrl-C's stop line starts a new line, not glued to the bar."""
    import pty
    import threading

    beetsdir = _beets_dir(tmp_path, tiny_bundle, batch_size=1, jobs=1)
    _library(beetsdir, _many_files(tmp_path / "music", 200))
    terminal, stderr = pty.openpty()
    shown: list[bytes] = []

    def read() -> None:
        # Until every holder of the terminal's other end has closed it (EIO).
        while True:
            try:
                data = os.read(terminal, 4096)
            except OSError:
                return
            if not data:
                return
            shown.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "beets", "clap-index"],
            env=beet_env(beetsdir),
            stdout=subprocess.PIPE,
            stderr=stderr,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    finally:
        os.close(stderr)
    _wait_for_rows(beetsdir / "library.db", proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    reader.join(timeout=120)
    os.close(terminal)
    assert proc.returncode == 130
    text = b"".join(shown).decode().replace("\r\n", "\n")
    assert "tracks/min" in text, "the bar is drawn on a terminal"
    assert (
        "clap: clap-index stopped (SIGINT): finished batches are kept; "
        "run it again to go on"
    ) in text.split("\n")


def test_only_spools_of_dead_processes_are_removed(tmp_path: Path) -> None:
    from beetsplug.clap import workers

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(gone.stdout)
    alive = os.getppid()
    stale = tmp_path / f"{workers.SPOOL_PREFIX}{dead}-abc123"
    live = tmp_path / f"{workers.SPOOL_PREFIX}{alive}-def456"
    other = tmp_path / f"{workers.SPOOL_PREFIX}nopid"
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "1.npy").write_bytes(b"x")
    assert workers.remove_stale_spools(str(tmp_path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


def _unlocked(db: Path) -> bool:
    """Whether no connection holds a database lock that a writer would wait on."""
    conn = sqlite3.connect(db, timeout=0)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        conn.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _freeze_between_writes(proc: subprocess.Popen, db: Path) -> None:
    """SIGSTOP `proc` where it holds no database lock. Frozen inside one of
    its writes, it would lock the library for every beets command (beets
    itself then says "database is locked"), not only for clap-index."""

    def frozen_unlocked() -> bool:
        proc.send_signal(signal.SIGSTOP)
        _wait_until(
            lambda: _processes().get(proc.pid, (0, "T"))[1] in "TtZ", "the stop"
        )
        if _unlocked(db):
            return True
        proc.send_signal(signal.SIGCONT)
        return False

    _wait_until(frozen_unlocked, "the indexer frozen between two writes")


@needs_proc
def test_a_second_index_run_says_another_is_in_progress(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    n = 50
    beetsdir, db, first = _indexing(tmp_path, tiny_bundle, n, batch_size=1, jobs=1)
    # Frozen mid-run, holding the run lock: the second run cannot race it.
    _freeze_between_writes(first, db)
    try:
        second = _beet(beetsdir, "clap-index")
        out, err = second.communicate(timeout=120)
        assert second.returncode == 1, err
        assert err.strip().splitlines() == [
            f"error: another clap-index run is in progress on this library "
            f"(pid {first.pid}): wait for it to finish, then run clap-index again"
        ]
        assert out == ""
    finally:
        # kill -9 of the holder: the kernel drops its lock.
        first.send_signal(signal.SIGKILL)
        first.communicate()
    done, _ = _consistent(db)
    _resume(beetsdir, n, done)


def test_beets_reads_the_library_while_indexing(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    n = 120
    beetsdir, db, indexer = _indexing(tmp_path, tiny_bundle, n, batch_size=2, jobs=1)
    reader = _beet(beetsdir, "ls", "-f", "$title")
    writer = _beet(beetsdir, "modify", "-y", "title:track 001", "genre=tested")
    r_out, r_err = reader.communicate(timeout=120)
    _, w_err = writer.communicate(timeout=120)
    i_out, i_err = indexer.communicate(timeout=120)
    assert reader.returncode == 0, r_err
    assert len(r_out.splitlines()) == n
    assert writer.returncode == 0, w_err
    assert indexer.returncode == 0, i_err
    assert _summary(i_out) == f"clap-index: embedded {n}, unchanged 0, failed 0"
    assert _consistent(db) == (n, n)
    lib = Library(str(db))
    assert lib.items("genre:tested").get().title == "track 001"
    lib._close()


def _make_vec0_index(db: Path) -> dict[int, bytes]:
    """Turn an indexed library into beets-clap's first layout (vectors in a
    sqlite-vec vec0 table, no codes); returns the vectors it holds."""
    conn = _extension_connection(str(db), 10.0)
    try:
        rows = dict(conn.execute(f"SELECT item_id, embedding FROM {VECTORS}"))
        dim = len(next(iter(rows.values()))) // 4
        conn.execute(f"DROP TABLE {VECTORS}")
        conn.execute(f"DROP TABLE {CODES}")
        conn.execute(
            f"CREATE VIRTUAL TABLE {VECTORS} USING vec0(item_id INTEGER PRIMARY KEY, "
            f"embedding float[{dim}] distance_metric=cosine)"
        )
        conn.executemany(f"INSERT INTO {VECTORS} VALUES (?, ?)", list(rows.items()))
    finally:
        conn.close()
    return rows


def test_an_old_sqlite_vec_index_is_converted_without_re_embedding(
    indexed: ClapEnv,
) -> None:
    db = Path(os.fsdecode(indexed.lib.path))
    before = indexed.lines("clap", "low", "-s", "-f", "$title")
    vectors = _make_vec0_index(db)
    # The first clap command converts it; nothing is embedded again.
    assert indexed.lines("clap", "low", "-s", "-f", "$title") == before
    assert indexed.lines("clap-index")[-1] == (
        "clap-index: embedded 0, unchanged 5, failed 0"
    )
    plain = sqlite3.connect(db)
    try:
        (sql,) = plain.execute(
            "SELECT sql FROM sqlite_master WHERE name = ?", (VECTORS,)
        ).fetchone()
        assert not sql.upper().startswith("CREATE VIRTUAL")
        assert dict(plain.execute(f"SELECT item_id, embedding FROM {VECTORS}")) == (
            vectors
        )
    finally:
        plain.close()


def test_an_old_index_without_sqlite_vec_is_a_clear_error(
    indexed: ClapEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = Path(os.fsdecode(indexed.lib.path))
    vectors = _make_vec0_index(db)
    broken = tmp_path / "not-vec0.so"
    broken.write_bytes(b"\x7fELF not really a library")
    monkeypatch.setenv(VEC_PATH_ENV, str(broken))
    with pytest.raises(
        UserError, match=rf"^cannot load sqlite-vec from {broken}: "
    ) as info:
        indexed.run("clap-index")
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match=r"^cannot load sqlite-vec from "):
        indexed.run("clap", "low")
    # Nothing was lost: beets still reads the library, the old vectors are
    # intact, and converting works once sqlite-vec loads.
    assert len(indexed.lines("ls", "-f", "$title")) == 5
    monkeypatch.delenv(VEC_PATH_ENV)
    conn = _extension_connection(str(db), 10.0)
    try:
        assert dict(conn.execute(f"SELECT item_id, embedding FROM {VECTORS}")) == (
            vectors
        )
    finally:
        conn.close()
    assert indexed.lines("clap", "low", "-n", "1", "-f", "$title") == ["low"]


def test_no_sqlite_extension_is_needed(tmp_path: Path, tiny_bundle: Path) -> None:
    beetsdir = _beets_dir(tmp_path, tiny_bundle)
    _library(beetsdir, [write_audio(tmp_path / "music" / "a.wav", "low")])
    # Neither sqlean nor sqlite-vec importable, as on a plain Python (this
    # one's own sqlite3 may well lack extension loading: pyenv, macOS).
    for args, expected in (
        (["clap-index"], "clap-index: embedded 1, unchanged 0, failed 0"),
        (["clap", "low", "-f", "$title"], "track 000"),
    ):
        proc = beet_without(beetsdir, ("sqlean", "sqlite_vec"), *args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[-1] == expected


def test_auto_embeds_on_import_and_records_the_final_files(
    env: ClapEnv, tmp_path: Path
) -> None:
    env.reload(auto=True)
    src = tmp_path / "incoming"
    write_tagged(src / "album", ("low", "high"))
    env.quiet_import(src, copy=True)
    items = list(env.lib.items())
    assert len(items) == 2
    # The copies inside the library are the ones recorded, so a later
    # clap-index sees nothing to do.
    assert all(str(env.lib_path) in os.fsdecode(i.path) for i in items)
    assert env.lines("clap-index") == ["clap-index: embedded 0, unchanged 2, failed 0"]
    assert env.lines("clap", "high", "-n", "1", "-f", "$title") == ["high"]


def test_auto_under_another_bundle_embeds_nothing_and_drops_nothing(
    env: ClapEnv, corpus: dict[str, Path], other_bundle: Path, tmp_path: Path
) -> None:
    """Embedding an import with another model would drop the library's
    vectors: re-embedding the library is clap-index's, when asked."""
    for kind in ("low", "mid"):
        env.add(corpus[kind], title=kind)
    env.run("clap-index")
    vectors = env.sql("SELECT count(*) FROM clap_vectors")
    env.reload(auto=True, model=str(other_bundle))
    src = tmp_path / "incoming"
    write_tagged(src / "album", ("high",))
    _out, err = env.quiet_import(src)
    (label,) = env.sql("SELECT value FROM clap_meta WHERE key = 'label'")[0]
    assert label.startswith("clap-tiny 0.1.0")
    assert [line for line in err if line.startswith("clap:")] == [
        "clap: not embedded on import: the clap index holds vectors of another "
        f"model bundle ({label}); run `beet clap-index` to embed the "
        "library with the current one"
    ]
    assert env.sql("SELECT count(*) FROM clap_vectors") == vectors
    assert len(list(env.lib.items())) == 3
    env.reload(model=str(env.bundle))  # the index's own bundle: all still there
    assert sorted(env.lines("clap", "low", "-f", "$title")) == ["low", "mid"]
    assert env.lines("clap-index") == ["clap-index: embedded 1, unchanged 2, failed 0"]


def test_an_id_beets_reuses_never_gets_the_old_tracks_vector(
    env: ClapEnv, corpus: dict[str, Path], tmp_path: Path
) -> None:
    for kind in ("low", "noise"):
        env.add(corpus[kind], title=kind)
    env.run("clap-index")
    (gone,) = env.lib.items("title:noise")
    # Removed while the plugin is not loaded: its rows stay behind, and
    # beets gives the next item the same id.
    env.unload_plugins()
    gone.remove()
    env.load_plugins()
    src = tmp_path / "incoming"
    write_tagged(src / "album", ("high",))
    env.quiet_import(src)
    (new,) = env.lib.items("title:high")
    assert new.id == gone.id
    with pytest.raises(UserError, match="is not indexed yet"):
        env.run("clap-similar", "title:high")
    assert env.lines("clap-index") == ["clap-index: embedded 1, unchanged 1, failed 0"]


def test_auto_records_its_window_cap_on_import(env: ClapEnv, tmp_path: Path) -> None:
    env.reload(auto=True, max_windows=2)
    src = tmp_path / "incoming"
    write_tagged(src / "album", ("low", "high"))
    env.quiet_import(src, copy=True)
    assert env.lines("clap-index") == ["clap-index: embedded 0, unchanged 2, failed 0"]
    env.reload(max_windows=3)
    assert env.lines("clap-index", "-p")[-1] == "clap-index: would embed 2, unchanged 0"
    assert env.sql(f"SELECT max_windows FROM {STATE}") == [(2,), (2,)]


def test_auto_off_leaves_imports_unembedded(env: ClapEnv, tmp_path: Path) -> None:
    src = tmp_path / "incoming"
    write_audio(src / "album" / "01 low.flac", "low")
    env.config["import"].set(
        {"copy": False, "write": False, "autotag": False, "quiet": True}
    )
    env.run("import", "-A", str(src))
    assert env.lines("clap-index") == ["clap-index: embedded 1, unchanged 0, failed 0"]


def test_a_read_only_library_is_named_as_such() -> None:
    """SQLite's "attempt to write a readonly database" (a library the user
    may read but not write) says what is read-only and what to do, in one
    line; other SQLite failures keep SQLite's reason."""
    from beets.library import Library

    from beetsplug.clap.guards import guarded

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "library.db"
        lib = Library(str(db))

        def write_read_only(lib: Library, opts: Any, args: list[str]) -> None:
            # A real read-only connection to the real file, as a user
            # without write permission gets (root ignores file modes).
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                conn.execute("CREATE TABLE t (x)")
            finally:
                conn.close()

        def bad_sql(lib: Library, opts: Any, args: list[str]) -> None:
            sqlite3.connect(db).execute("SELECT * FROM no_such_table")

        with pytest.raises(UserError) as info:
            guarded(lambda: None, write_read_only)(lib, None, [])
        assert str(info.value) == (
            f"library database {db} is read-only to this user: this command "
            "writes the index there (searching does not); make the file and "
            "its folder writable, or run it as their owner"
        )
        with pytest.raises(UserError, match=r"^library database error: no such"):
            guarded(lambda: None, bad_sql)(lib, None, [])
        lib._close()


def test_a_lock_held_past_the_timeout_is_one_line_and_loses_nothing(
    env: ClapEnv, corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from beetsplug.clap import store as store_module

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_SECONDS", 0.2)
    for kind in ("low", "mid"):
        env.add_copy(corpus[kind], title=kind)
    db = Path(os.fsdecode(env.lib.path))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program writing, for a long time
    try:
        with pytest.raises(UserError, match=r"^library database is locked") as info:
            env.run("clap-index")
        assert "\n" not in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    env.reload()  # a new beet invocation
    assert "embedded 2, unchanged 0, failed 0" in env.run("clap-index")
    assert env.lines("clap", "low", "-n", "1", "-f", "$title") == ["low"]
