"""The `clap:` section as beets reads it: empty, not a section, invalid
values said once."""

from __future__ import annotations

from pathlib import Path

import confuse
import pytest
from beets.ui import UserError
from clap_helpers import ClapEnv, beet, make_beetsdir, write_audio
from mediafile import MediaFile

from beetsplug.clap.settings import SettingsError, validated

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
    tagged = MediaFile(write_audio(src / "01.flac", "low"))
    tagged.update({"title": "low", "artist": "a", "album": "b", "track": 1})
    tagged.save()
    env.config["import"].set(
        {"copy": False, "write": False, "autotag": False, "quiet": True}
    )
    _out, err = env.outputs("import", "-A", str(src))
    # (beets' own log names the folder imported)
    assert [line for line in err if line.startswith("clap:")] == [
        "clap: clap.jobs must be a whole number >= 0, not -1: "
        "nothing is embedded on import"
    ]
    assert [item.title for item in env.lib.items()] == ["low"]
    with pytest.raises(UserError, match=r"^clap.jobs must be a whole number"):
        env.run("clap-index")
