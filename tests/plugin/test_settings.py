"""The `clap:` section as beets reads it: empty, not a section, invalid
values said once, thread and process counts capped at the CPUs."""

from __future__ import annotations

from pathlib import Path

import confuse
import pytest
from beets.ui import UserError
from clap_helpers import ClapEnv, beet, make_beetsdir, write_audio, write_tagged

from beetsplug.clap.settings import DEFAULTS, SettingsError, cpu_count, validated

# (the `clap:` section of config.yaml, stderr of a clap command)
SECTIONS = {
    # Every key commented out: YAML reads the section as None.
    "empty": ("clap:\n#  jobs: 2\n#  auto: yes\n", []),
    "yes": (
        "clap: yes\n",
        ["error: clap must be a section of settings (key: value), not True"],
    ),
    "list": (
        "clap:\n  - jobs\n",
        ["error: clap must be a section of settings (key: value), not ['jobs']"],
    ),
    "bad value": (
        "clap:\n  jobs: -1\n",
        ["error: clap.jobs must be a whole number >= 0, not -1"],
    ),
    # Past its ceiling (it failed in SQLite after the whole run's decoding).
    "huge": (
        "clap:\n  max_windows: 99999999999999999999\n",
        [
            "error: clap.max_windows must be a whole number in 0..1000, "
            "not 99999999999999999999"
        ],
    ),
    # A misspelt key would be silently without effect.
    "misspelt": (
        "clap:\n  treads: 2\n",
        ["error: clap.treads is not a setting (did you mean clap.threads?)"],
    ),
    "unknown": (
        "clap:\n  colour: red\n",
        [
            "error: clap.colour is not a setting; the settings are: model, auto, jobs, "
            "batch_size, max_windows, threads, negation_weight, tag_weight, "
            "affirmed_tag_weight, speech_weight, like_weight, unlike_weight, limit, "
            "query_top_k, playlist_dir, relative_to, extended, playlist_prefix, "
            "playlist_size, playlists, auto_playlists, clusters, cluster_min_size, "
            "auto_playlist_size"
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_a_clap_section_is_read_without_a_traceback(tmp_path: Path, name: str) -> None:
    """The real `beet` on a real config file: an empty section means the
    defaults (the shipped model), anything else that cannot be used is one
    line from the clap commands and nothing at all from beets' own."""
    section, errors = SECTIONS[name]
    track = write_audio(tmp_path / "music" / "low.flac", "low")
    beetsdir = make_beetsdir(tmp_path, None, [track])
    config = beetsdir / "config.yaml"
    text = config.read_text()
    config.write_text(text[: text.index("clap:")] + section)

    listed = beet(beetsdir, "ls", "-f", "$title")
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "track 0\n", "")

    indexed = beet(beetsdir, "clap-index", "--pretend")
    assert indexed.stderr.splitlines() == errors
    if errors:
        assert (indexed.returncode, indexed.stdout) == (1, "")
    else:
        assert indexed.returncode == 0
        assert indexed.stdout.splitlines() == [
            f"would embed (new): {track}",
            "clap-index: would embed 1, unchanged 0",
        ]


def test_an_empty_layer_leaves_the_settings_beneath_it(indexed: ClapEnv) -> None:
    """A None `clap:` from a higher-priority source hides nothing: the
    settings below it (here the test's model) still count."""
    indexed.unload_plugins()
    indexed.config["clap"].set(None)
    indexed.load_plugins()
    assert indexed.lines("clap", "high", "-n", "1", "-f", "$title") == ["high"]


@pytest.mark.parametrize("blank", [None, ""])
def test_keys_left_blank_are_empty(blank: str | None) -> None:
    """`negation_weight:` / `playlist_prefix:` left blank (None in YAML) or
    '' mean what empty means: the bundle's weight, no prefix."""
    root = confuse.RootView(
        [confuse.ConfigSource.of({"negation_weight": blank, "playlist_prefix": blank})]
    )
    for key, default in DEFAULTS.items():
        if key not in ("negation_weight", "playlist_prefix"):
            root[key].add(default)
    settings = validated(root)
    assert settings["negation_weight"] is None
    assert settings["playlist_prefix"] == ""


def test_confuse_errors_become_the_settings_one_line() -> None:
    """Whatever confuse refuses on the way to a clap key is a SettingsError
    (the plugin's one line), not an exception that drops the plugin."""
    root = confuse.RootView([confuse.ConfigSource.of({"plugins_conf": 3})])
    with pytest.raises(SettingsError) as info:
        validated(root["plugins_conf"]["clap"])
    assert str(info.value) == "plugins_conf must be a collection, not int"


def test_an_invalid_setting_is_said_once_at_import(
    env: ClapEnv, tmp_path: Path
) -> None:
    """No clap command reports the error during an import that `auto` would
    have taken part in: the import says it, once."""
    env.reload(auto=True, jobs=-1)
    src = tmp_path / "incoming"
    write_tagged(src, ("low",))
    _out, err = env.quiet_import(src)
    # (beets' own log names the folder imported)
    assert [line for line in err if line.startswith("clap:")] == [
        "clap: clap.jobs must be a whole number >= 0, not -1: "
        "nothing is embedded on import"
    ]
    assert [item.title for item in env.lib.items()] == ["low"]
    with pytest.raises(UserError, match=r"^clap.jobs must be a whole number"):
        env.run("clap-index")


def test_threads_above_the_cpus_are_capped_with_a_note(indexed: ClapEnv) -> None:
    cpus = cpu_count()
    indexed.reload(threads=cpus + 1)
    out, err = indexed.outputs("clap", "high", "-n", "1", "-f", "$title")
    assert out == ["high"]
    assert err == [
        f"clap: clap.threads is {cpus + 1}, more than the {cpus} CPUs here: "
        f"using {cpus}"
    ]
    from beets import plugins

    (plugin,) = plugins.find_plugins()
    assert plugin.bundle().threads == cpus  # what onnxruntime was given
    # Up to the CPUs, as given and without a note.
    indexed.reload(threads=cpus)
    assert indexed.outputs("clap", "high", "-n", "1", "-f", "$title") == (
        ["high"],
        [],
    )


@pytest.mark.parametrize("option", [False, True], ids=["clap.jobs", "-j"])
def test_jobs_above_the_cpus_are_capped_with_a_note(
    env: ClapEnv, corpus: dict[str, Path], option: bool
) -> None:
    cpus = cpu_count()
    env.add(corpus["low"], title="low")
    if option:
        args, label = ("-j", str(cpus + 1)), "-j/--jobs"
    else:
        env.reload(jobs=cpus + 1)
        args, label = (), "clap.jobs"
    out, err = env.outputs("clap-index", *args)
    assert out == ["clap-index: embedded 1, unchanged 0, failed 0"]
    assert err == [
        f"clap: {label} is {cpus + 1}, more than the {cpus} CPUs here: using {cpus}"
    ]


def test_playlists_written_as_a_mapping_say_so_in_yaml_terms(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    """`playlists:` holding one playlist's keys, not a list of playlists:
    the line says what YAML read (a mapping), not the Python type confuse
    made of it (OrderedDict)."""
    track = write_audio(tmp_path / "music" / "low.flac", "low")
    beetsdir = make_beetsdir(tmp_path, tiny_bundle, [track])
    config = beetsdir / "config.yaml"
    config.write_text(
        config.read_text() + "    playlists:\n        name: Calm\n        query: calm\n"
    )
    done = beet(beetsdir, "clap-playlists", "--pretend")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: clap.playlists must be a list of playlists (each a mapping with "
        "name and query), not a mapping (start each playlist with `- name:`)\n"
    )


def test_max_windows_stops_where_a_bundles_own_does() -> None:
    from beetsplug.clap.model import MAX_WINDOWS
    from beetsplug.clap.settings import INT_MAXIMUMS

    assert INT_MAXIMUMS["max_windows"] == MAX_WINDOWS
