"""A minimal ctypes binding of libfluidsynth rendering each MIDI channel on its own.

pyfluidsynth only exposes the stereo int16 mix (`get_samples`); minimal pairs
need each part as a float stem. Each channel is rendered by its own fresh
synthesizer (`fluid_synth_process`, float output): FluidSynth's voices keep
state from one note to the next, so parts sharing a synth would leak into
each other and a score would depend on the score rendered before it
(docs/benchmark.md, "Rendering"). Apart, a stem is exactly what that part
alone sounds like. Reverb and chorus are off (they would mix the parts);
the renderer adds its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

N_CHANNELS = 16
DRUM_CHANNEL = 9
DRUM_BANK = 128
_FLUID_OK = 0
_LOG_LEVELS_SILENCED = (2, 3, 4)  # FLUID_WARN, FLUID_INFO, FLUID_DBG


class SynthError(Exception):
    """FluidSynth is missing or refused a soundfont/preset (one-line reason)."""


def check_soundfont(path: Path) -> None:
    """Refuse a file that is no whole SoundFont 2 before FluidSynth reads it.

    FluidSynth (and libinstpatch behind it) explain a file they cannot load
    in several lines on stderr; a missing, foreign or truncated file is told
    here in one: a SoundFont 2 is a RIFF file of form 'sfbk' whose header
    gives its length.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(12)
    except FileNotFoundError:
        raise SynthError(
            f"soundfont {path} not found: install fluid-soundfont-gm and "
            "timgm6mb-soundfont"
        ) from None
    except OSError as exc:
        raise SynthError(f"soundfont {path}: {exc.strerror}") from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise SynthError(
            f"soundfont {path} is not a SoundFont 2 file (no RIFF 'sfbk' header)"
        )
    declared = int.from_bytes(head[4:8], "little") + 8
    if size < declared:
        raise SynthError(
            f"soundfont {path} is truncated ({size} of {declared} bytes): "
            "reinstall its package"
        )


@contextmanager
def _c_stderr_captured() -> Iterator[list[str]]:
    """What C libraries write to file descriptor 2 while the block runs, as
    lines (filled when it ends), kept off the terminal: FluidSynth, GLib and
    libinstpatch print there, not through FluidSynth's log function."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


@cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("fluidsynth") or "libfluidsynth.so.3"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise SynthError(
            f"libfluidsynth not found ({exc}); install the Debian package 'fluidsynth'"
        ) from None
    vp, ci, cd, cs = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p
    sigs = {
        "new_fluid_settings": ([], vp),
        "delete_fluid_settings": ([vp], None),
        "fluid_settings_setnum": ([vp, cs, cd], ci),
        "fluid_settings_setint": ([vp, cs, ci], ci),
        "new_fluid_synth": ([vp], vp),
        "delete_fluid_synth": ([vp], None),
        "fluid_synth_sfload": ([vp, cs, ci], ci),
        "fluid_synth_get_sfont_by_id": ([vp, ci], vp),
        "fluid_synth_add_sfont": ([vp, vp], ci),
        "fluid_synth_remove_sfont": ([vp, vp], ci),
        "fluid_synth_program_select": ([vp, ci, ci, ci, ci], ci),
        "fluid_synth_noteon": ([vp, ci, ci, ci], ci),
        "fluid_synth_noteoff": ([vp, ci, ci], ci),
        "fluid_synth_process": ([vp, ci, ci, vp, ci, vp], ci),
        "fluid_version_str": ([], cs),
        "fluid_set_log_function": ([ci, vp, vp], vp),
    }
    for fn, (args, res) in sigs.items():
        getattr(lib, fn).argtypes = args
        getattr(lib, fn).restype = res
    for level in _LOG_LEVELS_SILENCED:
        lib.fluid_set_log_function(level, None, None)
    _single_thread_openmp()
    return lib


def _single_thread_openmp() -> None:
    """Keep FluidSynth's OpenMP (parallel soundfont loading) on the calling thread.

    A process whose libgomp has started its thread pool deadlocks in the next
    parallel region of a forked child; with one thread the pool never
    exists, so corpus workers can be forked from a process that rendered.
    Only FluidSynth uses the system libgomp here (torch bundles its own).
    """
    name = ctypes.util.find_library("gomp")
    if name is None:
        return  # FluidSynth built without OpenMP
    try:
        gomp = ctypes.CDLL(name)
    except OSError:
        return
    gomp.omp_set_num_threads.argtypes = [ctypes.c_int]
    gomp.omp_set_num_threads(1)


def fluidsynth_version() -> str:
    return _lib().fluid_version_str().decode()


class ChannelSynth:
    """One soundfont, loaded once per process, rendering each MIDI channel on its own.

    Every render borrows the loaded soundfont into a fresh synthesizer (a
    cheap step), so a stem depends only on its own notes: not on the other
    parts, nor on what the process rendered before. Loading the soundfont is
    the costly step (FluidR3_GM is 148 MB), which is why it happens once.
    """

    def __init__(self, soundfont: Path | str, sample_rate: int) -> None:
        lib = _lib()
        self.sample_rate = int(sample_rate)
        self.soundfont = Path(soundfont)
        check_soundfont(self.soundfont)
        self._settings = lib.new_fluid_settings()
        for key, value in (
            ("synth.midi-channels", N_CHANNELS),
            ("synth.reverb.active", 0),
            ("synth.chorus.active", 0),
            ("synth.polyphony", 512),
            ("synth.threadsafe-api", 0),
        ):
            lib.fluid_settings_setint(self._settings, key.encode(), value)
        lib.fluid_settings_setnum(
            self._settings, b"synth.sample-rate", self.sample_rate
        )
        lib.fluid_settings_setnum(self._settings, b"synth.gain", 1.0)
        self._keeper = lib.new_fluid_synth(self._settings)  # owns the loaded soundfont
        if not self._keeper:
            raise SynthError("FluidSynth could not create a synthesizer")
        with _c_stderr_captured() as said:
            sfid = lib.fluid_synth_sfload(self._keeper, str(self.soundfont).encode(), 1)
        if sfid < 0:
            errors = [line for line in said if "error:" in line]
            why = f" ({errors[0].split('error:', 1)[1].strip()})" if errors else ""
            raise SynthError(
                f"FluidSynth could not load soundfont {self.soundfont}{why}"
            )
        self._sfont = lib.fluid_synth_get_sfont_by_id(self._keeper, sfid)

    def close(self) -> None:
        if self._keeper:
            _lib().delete_fluid_synth(self._keeper)
            _lib().delete_fluid_settings(self._settings)
            self._keeper = None

    def render(
        self,
        programs: dict[int, tuple[int, int]],
        events: list[tuple[int, int, int, int, int]],
        n_frames: int,
    ) -> np.ndarray:
        """Mono float32 audio per channel, [16, n_frames] (silent where nothing plays).

        programs: channel -> (bank, program). events: (frame, order, channel,
        key, velocity) sorted by frame; velocity 0 is a note-off.
        """
        out = np.zeros((N_CHANNELS, n_frames), dtype=np.float32)
        for channel, (bank, program) in programs.items():
            mine = [e for e in events if e[2] == channel]
            out[channel] = self._render_channel(channel, bank, program, mine, n_frames)
        return out

    def _render_channel(
        self,
        channel: int,
        bank: int,
        program: int,
        events: list[tuple[int, int, int, int, int]],
        n_frames: int,
    ) -> np.ndarray:
        lib = _lib()
        syn = lib.new_fluid_synth(self._settings)
        if not syn:
            raise SynthError("FluidSynth could not create a synthesizer")
        try:
            sfid = lib.fluid_synth_add_sfont(syn, self._sfont)
            if (
                lib.fluid_synth_program_select(syn, channel, sfid, bank, program)
                != _FLUID_OK
            ):
                raise SynthError(
                    f"{self.soundfont.name} has no preset bank {bank} program {program}"
                )
            stereo = _process(syn, events, n_frames)
        finally:
            lib.fluid_synth_remove_sfont(
                syn, self._sfont
            )  # borrowed: the keeper frees it
            lib.delete_fluid_synth(syn)
        return stereo[0] + stereo[1]


def _process(
    syn: int, events: list[tuple[int, int, int, int, int]], n_frames: int
) -> np.ndarray:
    """The synth's stereo output [2, n_frames], events applied at their frames."""
    lib = _lib()
    out = np.zeros((2, n_frames), dtype=np.float32)
    base = [out[i].ctypes.data for i in range(2)]
    ptr_array = ctypes.c_void_p * 2
    done = 0

    def advance(to: int) -> None:
        nonlocal done
        to = min(to, n_frames)
        if to <= done:
            return
        ptrs = ptr_array(*[b + 4 * done for b in base])
        if lib.fluid_synth_process(syn, to - done, 0, None, 2, ptrs) != _FLUID_OK:
            raise SynthError("fluid_synth_process failed")
        done = to

    for frame, _order, channel, key, velocity in events:
        advance(frame)
        if velocity > 0:
            lib.fluid_synth_noteon(syn, channel, key, velocity)
        else:
            lib.fluid_synth_noteoff(syn, channel, key)
    advance(n_frames)
    return out
