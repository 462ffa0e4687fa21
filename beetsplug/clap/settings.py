"""The `clap:` settings: their defaults, each checked once when the plugin loads."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import confuse

# Keys and defaults of the `clap:` section; docs/config.md explains each.
DEFAULTS: dict[str, Any] = {
    "model": "",  # bundle folder; empty = the shipped default
    "auto": False,  # embed on import
    "jobs": 0,  # clap-index workers (decode + embed); 0 = one per CPU core
    "batch_size": 32,  # tracks per database transaction (not per model call)
    "max_windows": 0,  # windows per track; 0 = the bundle's own setting
    "threads": 0,  # this process's onnxruntime threads (workers: 1); 0 = per core
    "negation_weight": None,  # None = the bundle's calibrated weight, else 0.5
    "tag_weight": 1.0,  # tagger evidence in a negation's penalty (bundles with tags)
    "affirmed_tag_weight": 0.2,  # tagger evidence for wanted attributes, a bonus
    "speech_weight": 8.0,  # speech alone after music, unless a voice is asked for
    "like_weight": 1.5,  # --like seeds next to the description (compose.py)
    "unlike_weight": 0.5,  # --unlike seeds, subtracted
    "limit": 20,  # default for -n
    "query_top_k": 50,  # items a `clap:` query matches
    # clap-playlists (docs/queries.md)
    "playlist_dir": None,  # where .m3u files go; unset = the current folder
    "relative_to": None,  # write paths relative to this folder; unset = absolute
    "extended": False,  # #EXTM3U / #EXTINF lines
    "playlist_prefix": "",  # put before every path
    "playlist_size": 50,  # default size of a prompt playlist
    "playlists": [],  # prompt playlists: {name, query, filter, size}
    "auto_playlists": True,  # also write playlists of the library's clusters
    "clusters": 0,  # automatic playlists: 0 = chosen from the library size
    "cluster_min_size": 5,  # smaller clusters get no playlist
    "auto_playlist_size": 0,  # tracks per automatic playlist; 0 = whole cluster
}
# (key, minimum) of the integer settings.
INT_MINIMUMS = {
    "jobs": 0,
    "batch_size": 1,
    "max_windows": 0,
    "threads": 0,
    "limit": 1,
    "query_top_k": 1,
    "playlist_size": 1,
    "clusters": 0,
    "cluster_min_size": 1,
    "auto_playlist_size": 0,
}
# Ceilings of the integer settings: past them a value can only be a slip,
# and would fail late (SQLite's 64-bit integers, arrays of that size).
# max_windows as a bundle's own ceiling (model.MAX_WINDOWS; not imported:
# the model module loads only with a command that needs it).
INT_MAXIMUMS = {"max_windows": 1000}
INT_CEILING = 10**9  # the others
BOOLS = ("auto", "extended", "auto_playlists")


class SettingsError(Exception):
    """A setting has an invalid value; the message is one line that names
    the key, what it must be, and the value given."""


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask where the system
    has one, so `taskset` and container CPU sets count), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def within_cpus(label: str, value: int) -> tuple[int, str | None]:
    """A thread or process count capped at the CPUs here, and the note that
    says so when it was capped. More threads than CPUs only wait for each
    other, each costing memory, and the same config may serve a bigger
    machine, so a count above them is lowered rather than refused."""
    cpus = cpu_count()
    if value <= cpus:
        return value, None
    return cpus, f"{label} is {value}, more than the {cpus} CPUs here: using {cpus}"


def weight_setting(key: str, value: Any, alternative: str = "") -> float:
    """A ranking weight from the config: a number in 0..10 (bools are not)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 10
    ):
        raise SettingsError(
            f"clap.{key} must be a number in 0..10{alternative}, not {value!r}"
        )
    return float(value)


def whole_number(key: str, value: Any, minimum: int, maximum: int = INT_CEILING) -> int:
    """An integer setting: an int (or a float with nothing after the point),
    never a bool, a string or a fraction that would be silently cut."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < minimum:
        raise SettingsError(
            f"clap.{key} must be a whole number >= {minimum}, not {value!r}"
        )
    if value > maximum:
        raise SettingsError(
            f"clap.{key} must be a whole number in {minimum}..{maximum}, not {value!r}"
        )
    return int(value)


def unknown_key(key: str) -> str:
    """The line for a key of the `clap:` section that is no setting: a
    misspelling would otherwise be silently without effect."""
    import difflib

    close = difflib.get_close_matches(key, DEFAULTS, n=1, cutoff=0.75)
    if close:
        return f"clap.{key} is not a setting (did you mean clap.{close[0]}?)"
    return f"clap.{key} is not a setting; the settings are: {', '.join(DEFAULTS)}"


def _path(config: Any, key: str, what: str) -> str | None:
    value = config[key].get()
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise SettingsError(f"clap.{key} must be {what}, not {value!r}")
    return config[key].as_filename()


class _Section(confuse.ConfigView):
    """The `clap:` section without its empty layers. A `clap:` line whose
    keys are all commented out is None in YAML, which confuse refuses to
    look into ("clap must be a collection"); it means the defaults."""

    def __init__(self, view: confuse.ConfigView) -> None:
        self._view = view
        self.name = view.name

    def resolve(self) -> Iterator[tuple[Any, confuse.ConfigSource]]:
        for value, source in self._view.resolve():
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise SettingsError(
                    f"{self.name} must be a section of settings (key: value), "
                    f"not {value!r}"
                )
            yield value, source

    def root(self) -> confuse.RootView:
        return self._view.root()

    def set(self, value: Any) -> None:
        self._view.set(value)

    def add(self, value: Any) -> None:
        self._view.add(value)

    def set_redaction(self, path: tuple[Any, ...], flag: bool) -> None:
        self._view.set_redaction(path, flag)

    def get_redactions(self) -> Iterable[tuple[Any, ...]]:
        return self._view.get_redactions()


def validated(config: confuse.ConfigView) -> dict[str, Any]:
    """Every setting of the plugin's confuse view, read and checked once;
    raises SettingsError for the first invalid one, confuse's own errors
    included, so that no bad `clap:` section stops beets loading the plugin."""
    try:
        return _validated(_Section(config))
    except confuse.ConfigError as exc:
        raise SettingsError(str(exc)) from exc


def may_want_auto(config: confuse.ConfigView) -> bool:
    """Whether the section may ask for `auto` (embedding on import), as far
    as settings that failed `validated` can tell: only a plain `no` rules it
    out."""
    try:
        return _Section(config)["auto"].get() is not False
    except (SettingsError, confuse.ConfigError):
        return True


def _validated(config: confuse.ConfigView) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in config:  # the keys of every layer
        if key not in DEFAULTS:
            raise SettingsError(unknown_key(str(key)))
    for key, minimum in INT_MINIMUMS.items():
        out[key] = whole_number(
            key,
            config[key].get(),
            minimum,
            INT_MAXIMUMS.get(key, INT_CEILING),
        )
    for key in BOOLS:
        value = config[key].get()
        if not isinstance(value, bool):
            raise SettingsError(f"clap.{key} must be yes or no, not {value!r}")
        out[key] = value
    for key in ("playlist_dir", "relative_to"):
        out[key] = _path(config, key, "a folder path")
    # A key left blank (`playlist_prefix:`) is None in YAML: empty, as ''.
    prefix = config["playlist_prefix"].get()
    if prefix is None:
        prefix = ""
    if not isinstance(prefix, str):
        raise SettingsError(f"clap.playlist_prefix must be a string, not {prefix!r}")
    out["playlist_prefix"] = prefix
    weight = config["negation_weight"].get()
    if weight == "":
        weight = None
    if weight is not None:
        weight = weight_setting(
            "negation_weight", weight, " or empty (the bundle's calibrated value)"
        )
    out["negation_weight"] = weight
    for key in (
        "tag_weight",
        "affirmed_tag_weight",
        "speech_weight",
        "like_weight",
        "unlike_weight",
    ):
        out[key] = weight_setting(key, config[key].get())
    out["model"] = _path(
        config, "model", "the path of a bundle folder, or empty for the default"
    )
    # Checked entry by entry by playlists.validate_playlists, which needs
    # the model to check each description.
    out["playlists"] = config["playlists"].get()
    return out
