"""The real-recording corpus builder on a package built here: fetch, cut, tag, caption.

A real .deb is made with dpkg-deb from generated audio and put in the cache
as apt-get would have downloaded it; everything after the download runs as
it does on the pinned packages (sha256 check, dpkg-deb -x, decoding, the
pretrained musicnn taggers, parquet the split reader reads).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from trainer import realcorpus, vocab
from trainer.__main__ import main as trainer_main
from trainer.splits import DataError, read_split

RATE = 16000
REALSET_LABELS = Path(__file__).parents[1] / "benchmarks" / "realset" / "labels.json"

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="dpkg-deb builds the test package"
)


def _tone_track(seconds: float, seed: int) -> np.ndarray:
    """Chords with a noise-burst beat: something the taggers can read."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    x = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    beat = (t % 0.5) < 0.04
    x = x + beat * rng.normal(0, 0.3, t.size)
    return (x / np.max(np.abs(x)) * 0.8).astype(np.float32)


def _make_deb(tmp: Path, name: str, version: str, files: dict[str, np.ndarray]) -> Path:
    root = tmp / f"{name}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: Test <test@example.org>\nDescription: test music\n"
    )
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Public domain test audio.\n")
    for rel, audio in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if audio.size:
            sf.write(path, audio, RATE, format="FLAC")
        else:  # a file that is not audio at all
            path.write_bytes(b"not a flac file" * 64)
    deb = tmp / f"{name}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def _cache_packages(
    tmp: Path, cache: Path, decks: dict[str, dict], lists: dict[str, dict]
) -> dict[str, dict]:
    """Build each deck as a .deb, put it in the cache as apt-get would, and
    pin it with its file lists ({"music": [...]} or {"speech": [...]})."""
    pins = {}
    for name, files in decks.items():
        deb = _make_deb(tmp, name, "1.0-1", files)
        shutil.copy(deb, cache / "debs" / f"{name}_1.0-1_all.deb")
        pins[name] = {
            "version": "1.0-1",
            "sha256": realcorpus.sha256_file(deb),
            "copyright": f"usr/share/doc/{name}/copyright",
            **lists[name],
        }
    return pins


def _write_sources(tmp: Path, pins: dict, clip: dict, **changes: object) -> Path:
    """The shipped sources file with these packages and clip settings."""
    sources = json.loads(realcorpus.SOURCES.read_text())
    sources.update(packages=pins, **changes)
    sources["clip"] = {**sources["clip"], **clip}
    path = tmp / "sources.json"
    path.write_text(json.dumps(sources))
    return path


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two packages in a cache, and the sources that pin them."""
    tmp = tmp_path_factory.mktemp("realcorpus")
    cache = tmp / "cache"
    (cache / "debs").mkdir(parents=True)
    music = "usr/share/games/fake/music"
    decks = {
        "fake-music": {
            f"{music}/a/loop.flac": _tone_track(50.0, 0),  # 2 clips
            f"{music}/b/loop.flac": _tone_track(22.0, 1),  # same name, other folder
            f"{music}/short.flac": _tone_track(6.0, 2),  # shorter than a clip
            f"{music}/silence.flac": np.zeros(30 * RATE, np.float32),
            f"{music}/broken.flac": np.zeros(0, np.float32),
            "usr/share/games/fake/sfx/boom.flac": _tone_track(20.0, 3),  # not music
        },
        "fake-valid-music": {f"{music}/theme.flac": _tone_track(20.0, 4)},
    }
    lists = {"music": [f"{music}/*.flac", f"{music}/*/*.flac"]}
    pins = _cache_packages(tmp, cache, decks, dict.fromkeys(decks, lists))
    path = _write_sources(
        tmp,
        pins,
        {"hop": 25.0},
        valid_packages=["fake-valid-music"],
        forbidden=["fretsonfire-songs-sectoid"],
    )
    out = tmp / "data"
    lines: list[str] = []
    record = realcorpus.build(out, cache, path, log=lines.append)
    return {
        "tmp": tmp,
        "cache": cache,
        "sources": path,
        "out": out,
        "record": record,
        "log": lines,
    }


def test_builds_a_data_directory_the_split_reader_reads(package: dict) -> None:
    out, record = package["out"], package["record"]
    train, stats = read_split(out, "train")
    valid, _ = read_split(out, "valid")
    assert stats.missing_audio == 0
    # 50 s from 5 s: clips at 5 and 30; 22 s: one at 5; the short, the
    # silent, the broken and the sound effect give none.
    assert sorted(c.track_id.rsplit("-", 1)[-1] for c in train) == ["30s", "5s", "5s"]
    assert len(valid) == 1
    assert "theme" in valid[0].track_id
    assert record["clips"] == {"train": 3, "valid": 1}
    assert record["source_hours"] == round((50 + 22 + 20) / 3600, 2)
    assert record["tracks"] == 6  # the five music files + the valid theme
    assert record["unreadable"] == ["fake-music/usr/share/games/fake/music/broken.flac"]
    assert any("broken.flac" in line for line in package["log"])
    # Files with the same name in two folders stay two clips.
    assert len({c.audio for c in train}) == 3
    first = np.load(train[0].audio)
    assert first.dtype == np.int16
    assert first.shape == (10 * RATE,)


def test_captions_say_only_what_the_taggers_are_sure_of(package: dict) -> None:
    out = package["out"]
    rows = pq.read_table(out / "captions" / "train.parquet").to_pylist()
    rules = json.loads(package["sources"].read_text())["captions"]
    tagger = realcorpus.Tagger()
    meanings = realcorpus.CaptionRules.make(rules, tagger.names)
    for row in rows:
        audio = np.load(out / "audio" / row["path"]).astype(np.float32) / 32767.0
        probs = tagger(audio[None])[0]
        sure = {
            c
            for c, p in zip(meanings.concepts, probs, strict=True)
            if c and p >= rules["present"]
        }
        assert set(row["tag"]) <= sure | {"music"}
        for term in row["absent"]:
            assert term in vocab.NEGATABLE
            # Nothing is both said and denied.
            assert term not in row["tag"]
        for said in row["caption_summary"].split("It has ")[1:]:
            for phrase in said.rstrip(".").replace(" and ", ", ").split(", "):
                assert phrase.removeprefix("no ") in row["absent"]


def test_rules_keep_the_confident_and_deny_the_surely_absent() -> None:
    names = ["mtt:piano", "mtt:drums", "mtt:vocals", "mtt:no vocals", "msd:jazz"]
    spec = {
        "present": 0.4,
        "absent": 0.05,
        "max_tags": 5,
        "negatable": ["vocals", "drums", "piano", "guitar"],
    }
    rules = realcorpus.CaptionRules.make(spec, names)
    probs = np.array([0.9, 0.02, 0.3, 0.1, 0.5])
    present = rules.present_concepts(probs)
    assert present == ["piano", "jazz"]
    # Drums under the bar: absent; vocals at 0.3 are neither; guitar has no tag.
    assert rules.absent_concepts(probs, present) == ["drums"]
    # A confident "no vocals" says vocals are absent whatever "vocals" says.
    probs[3] = 0.7
    assert rules.absent_concepts(probs, present) == ["vocals", "drums"]
    assert realcorpus.negatable_terms(["guitar"]) == [
        "acoustic guitar",
        "electric guitar",
        "distorted guitar",
    ]
    # One bar per concept: drums at 0.02 are not under a 0.01 bar.
    strict = realcorpus.CaptionRules.make(
        {**spec, "absent": {"default": 0.05, "drums": 0.01}}, names
    )
    probs[3] = 0.1
    assert strict.absent_concepts(probs, present) == []
    probs[1] = 0.005
    assert strict.absent_concepts(probs, present) == ["drums"]
    with pytest.raises(DataError, match="not negatable: bass"):
        realcorpus.CaptionRules.make({**spec, "absent": {"bass": 0.1}}, names)
    with pytest.raises(DataError, match='needs a "default"'):
        realcorpus.CaptionRules.make({**spec, "absent": {"drums": 0.1}}, names)
    caps = realcorpus.captions_for(
        ["slow", "jazz", "piano"], ["vocals", "drums"], random.Random(0)
    )
    assert caps["caption_summary"].startswith("A slow jazz ")
    assert caps["caption_summary"].endswith(
        "with piano. It has no vocals and no drums."
    )
    # Without a genre the head is the noun alone, not "music tune".
    bare = realcorpus.captions_for(["drums"], [], random.Random(0))
    assert bare["caption_summary"].split(" with ")[0] in (
        "A track",
        "A piece",
        "A tune",
    )


def test_recaption_rewrites_captions_from_the_stored_tags(
    package: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """New caption rules need no decoding or tagging: the stored probabilities
    are captioned again, the clips and splits stay, and the old rules give
    back the old captions."""
    out = tmp_path / "data"
    shutil.copytree(package["out"], out)
    before = {
        s: pq.read_table(out / "captions" / f"{s}.parquet").to_pylist()
        for s in ("train", "valid")
    }
    sources = json.loads(package["sources"].read_text())
    # A bar of 1.0 denies every negatable concept no confident tag names.
    sources["captions"] = {**sources["captions"], "absent": {"default": 1.0}}
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps(sources))
    argv = ["real-corpus", "--out", str(out), "--recaption"]
    assert trainer_main([*argv, "--sources", str(loose)]) == 0
    assert "recaptioned 4 clips" in capsys.readouterr().out
    record = json.loads((out / "realcorpus.json").read_text())
    assert record["captions"]["absent"] == {"default": 1.0}
    assert record["clips"] == package["record"]["clips"]
    negatable = set(realcorpus.negatable_terms(sources["captions"]["negatable"]))
    for split, rows in before.items():
        after = pq.read_table(out / "captions" / f"{split}.parquet").to_pylist()
        assert [r["path"] for r in after] == [r["path"] for r in rows]
        for old, new in zip(rows, after, strict=True):
            assert new["tag"] == old["tag"]
            assert set(new["absent"]) >= set(old["absent"])
            said = {t for t in negatable if any(t.endswith(c) for c in new["tag"])}
            assert set(new["absent"]) | said >= negatable - said
    assert sum(record["absent"].values()) > sum(package["record"]["absent"].values())
    # Back to the build's rules: the build's captions, byte for byte.
    assert trainer_main([*argv, "--sources", str(package["sources"])]) == 0
    for split in ("train", "valid"):
        a = pq.read_table(package["out"] / "captions" / f"{split}.parquet")
        b = pq.read_table(out / "captions" / f"{split}.parquet")
        assert a.equals(b)
    # A corpus without stored tags cannot be recaptioned: one line, nothing lost.
    (out / "tags.npz").unlink()
    kept = (out / "captions" / "train.parquet").read_bytes()
    assert trainer_main([*argv, "--sources", str(package["sources"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("real-corpus: error: ")
    assert "\n" not in err
    assert "build it with python -m trainer real-corpus" in err
    assert (out / "captions" / "train.parquet").read_bytes() == kept


@pytest.mark.parametrize(
    ("duration", "starts"),
    [(4.0, []), (10.0, [0.0]), (12.0, [2.0]), (40.0, [5.0, 30.0]), (500.0, None)],
)
def test_clip_starts(duration: float, starts: list[float] | None) -> None:
    clip = {"seconds": 10.0, "first_start": 5.0, "hop": 25.0, "max_per_track": 6}
    got = realcorpus.clip_starts(duration, clip)
    if starts is None:
        assert len(got) == 6
        assert got[-1] + 10.0 <= duration
    else:
        assert got == starts


def test_a_rebuild_reuses_the_unpacked_packages_and_writes_the_same(
    package: dict, tmp_path: Path
) -> None:
    # The .complete marker makes the second build skip dpkg-deb: proven by
    # removing the .deb, which an unpack would need.
    for deb in (package["cache"] / "debs").iterdir():
        deb.rename(tmp_path / deb.name)
    try:
        again = tmp_path / "again"
        realcorpus.build(
            again, package["cache"], package["sources"], log=lambda _: None
        )
    finally:
        for deb in tmp_path.glob("*.deb"):
            deb.rename(package["cache"] / "debs" / deb.name)
    for split in ("train", "valid"):
        a = pq.read_table(package["out"] / "captions" / f"{split}.parquet")
        b = pq.read_table(again / "captions" / f"{split}.parquet")
        assert a.equals(b)


def test_a_corpus_of_another_build_is_refused_and_the_same_rebuilt_in_place(
    package: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build writes only its own clips, splits and tags: into a corpus of
    other packages or sources it would leave the other's splits to be trained
    on (and tags.npz without their clips), so it is refused; the same build
    is made again in place."""
    out = tmp_path / "data"
    shutil.copytree(package["out"], out)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    argv = ["real-corpus", "--out", str(out), "--cache", str(package["cache"])]
    assert trainer_main([*argv, "--sources", str(package["sources"]),
                         "--packages", "fake-valid-music"]) == 2  # fmt: skip
    assert capsys.readouterr().err == (
        f"real-corpus: error: {out} holds a real-recording corpus of other "
        "packages (fake-music, fake-valid-music; this build: fake-valid-music): "
        "choose another --out or remove it\n"
    )
    edited = tmp_path / "edited.json"
    sources = json.loads(package["sources"].read_text())
    sources["clip"]["hop"] = 30.0
    edited.write_text(json.dumps(sources))
    built = package["record"]["sources_sha256"][:12]
    assert trainer_main([*argv, "--sources", str(edited)]) == 2
    assert capsys.readouterr().err == (
        f"real-corpus: error: {out} holds a real-recording corpus of another "
        f"sources file (sha256 {built}; this build: "
        f"{realcorpus.sha256_file(edited)[:12]}; --recaption applies new caption "
        "rules in place): choose another --out or remove it\n"
    )
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == (
        before
    )
    # Another kind of data directory (captions, no realcorpus.json) too.
    other = tmp_path / "synth"
    (other / "captions").mkdir(parents=True)
    (other / "captions" / "train.parquet").write_bytes(b"a synth corpus' split")
    assert trainer_main(["real-corpus", "--out", str(other), "--sources",
                         str(package["sources"])]) == 2  # fmt: skip
    assert capsys.readouterr().err == (
        f"real-corpus: error: {other} holds a data directory that is no "
        "real-recording corpus (captions/ but no realcorpus.json): choose "
        "another --out or remove it\n"
    )
    # The same packages and sources: built again where they were.
    realcorpus.build(out, package["cache"], package["sources"], log=lambda _: None)
    for split in ("train", "valid"):
        a = pq.read_table(package["out"] / "captions" / f"{split}.parquet")
        assert a.equals(pq.read_table(out / "captions" / f"{split}.parquet"))
    # A split a build does not write is not left over from an earlier one.
    rows = pq.read_table(out / "captions" / "train.parquet").to_pylist()
    realcorpus._write_splits(out, rows, valid_packages=set())
    assert sorted(p.name for p in (out / "captions").iterdir()) == ["train.parquet"]


def test_a_build_stopped_before_its_record_is_redone_by_the_same_build(
    package: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after its splits and before realcorpus.json (Ctrl-C, a full
    disk), a build left captions/ without a record, which the next run took
    for another kind of data directory and refused."""
    out = tmp_path / "data"

    def stop(*_args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(realcorpus, "_caption_record", stop)
        with pytest.raises(KeyboardInterrupt):
            realcorpus.build(out, package["cache"], package["sources"], log=print)
    assert (out / "captions").is_dir()
    assert not (out / "realcorpus.json").exists()
    # Another build is still refused while the stopped one is unfinished.
    with pytest.raises(realcorpus.DataError, match="of other packages"):
        realcorpus.build(
            out,
            package["cache"],
            package["sources"],
            packages=["fake-valid-music"],
            log=print,
        )
    record = realcorpus.build(out, package["cache"], package["sources"], log=print)
    assert record == package["record"]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(
        p.name for p in package["out"].iterdir() if p.is_file()
    )


def test_a_failed_download_says_apt_get_s_reason(
    package: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An apt-get that cannot reach the mirror, as on a machine without DNS.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    failed = (
        "E: Failed to fetch http://deb.debian.org/debian/pool/main/f/fake-music/"
        "fake-music_1.0-1_all.deb  Temporary failure resolving 'deb.debian.org'"
    )
    apt_get = bin_dir / "apt-get"
    # A warning after the error, as apt-get prints running as root: the
    # error is the reason.
    warning = "W: Download is performed unsandboxed as root"
    apt_get.write_text(
        f"#!/bin/sh\necho 'Reading package lists...'\necho \"{failed}\" >&2\n"
        f"echo '{warning}' >&2\nexit 100\n"
    )
    apt_get.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    assert trainer_main(["real-corpus", "--out", str(out), "--sources",
                         str(package["sources"]), "--cache", str(tmp_path / "cache"),
                         "--packages", "fake-music"]) == 2  # fmt: skip
    assert capsys.readouterr().err == (
        f"real-corpus: error: fake-music=1.0-1: apt-get download failed: {failed} "
        "(run apt-get update; the corpus is pinned to Debian 12 bookworm versions)\n"
    )
    assert not out.exists()


def test_a_tampered_package_is_refused(package: dict, tmp_path: Path) -> None:
    pin = json.loads(package["sources"].read_text())["packages"]["fake-music"]
    cache = tmp_path / "cache"
    (cache / "debs").mkdir(parents=True)
    deb = cache / "debs" / "fake-music_1.0-1_all.deb"
    shutil.copy(package["cache"] / "debs" / deb.name, deb)
    with deb.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(DataError, match=r"sha256 .* != pinned"):
        realcorpus.fetch_package("fake-music", pin, cache)
    assert not (cache / "unpacked").exists() or not any((cache / "unpacked").iterdir())


@pytest.mark.parametrize(
    ("forbid", "extra", "says"),
    [
        (True, [], "fake-valid-music is in a check set and may not be trained on"),
        (False, ["--packages", "no-such-package"], "not in the real-corpus sources"),
    ],
)
def test_bad_sources_are_one_line_and_write_nothing(
    package: dict,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    forbid: bool,
    extra: list[str],
    says: str,
) -> None:
    sources = json.loads(package["sources"].read_text())
    if forbid:
        sources["forbidden"] = ["fake-valid-music"]
    path = tmp_path / "sources.json"
    path.write_text(json.dumps(sources))
    out = tmp_path / "out"
    argv = ["real-corpus", "--out", str(out), "--cache", str(package["cache"])]
    code = trainer_main([*argv, "--sources", str(path), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("real-corpus: error: ")
    assert says in err
    assert "\n" not in err
    assert not out.exists()


def test_the_shipped_sources_are_pinned_and_apart_from_the_check_set() -> None:
    sources = realcorpus.load_sources()
    check_set = set(json.loads(REALSET_LABELS.read_text())["packages"])
    packages = sources["packages"]
    assert not set(packages) & check_set
    assert set(sources["forbidden"]) >= check_set
    assert set(sources["valid_packages"]) < set(packages)
    for pin in packages.values():
        assert len(pin["sha256"]) == 64
        assert int(pin["sha256"], 16) >= 0
        assert pin["version"]
        assert bool(pin.get("music")) ^ bool(pin.get("speech"))


def _prompt(seconds: float, seed: int) -> np.ndarray:
    """A voice-prompt stand-in: a gliding harmonic voice in 4 Hz syllables."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    x = voice * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    return (x / np.max(np.abs(x)) * 0.5).astype(np.float32)


def test_a_speech_package_is_joined_cut_and_captioned_as_speech(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A package of spoken prompts: its files joined in path order with short
    gaps, cut into whole clips, captioned with what the package states (speech,
    no music, no instrument) whatever the taggers think; music clips say
    "music"; recaptioning keeps both."""
    cache = tmp_path / "cache"
    (cache / "debs").mkdir(parents=True)
    prompts = "usr/share/asterisk/sounds/xx"
    decks = {
        # 12 prompts of 2.5 s + 0.3 s gaps: 33.6 s, three whole 10-s clips
        "fake-prompts": {f"{prompts}/p{i:02d}.flac": _prompt(2.5, i) for i in range(12)}
        | {f"{prompts}/broken.flac": np.zeros(0, np.float32)},
        "fake-music": {"usr/share/games/fake/music/loop.flac": _tone_track(22.0, 1)},
    }
    lists = {
        "fake-prompts": {"speech": [f"{prompts}/*.flac"]},
        "fake-music": {"music": ["usr/share/games/fake/music/*.flac"]},
    }
    pins = _cache_packages(tmp_path, cache, decks, lists)
    path = _write_sources(
        tmp_path, pins, {"speech_gap": 0.3}, valid_packages=[], forbidden=[]
    )
    out = tmp_path / "data"
    lines: list[str] = []
    record = realcorpus.build(out, cache, path, log=lines.append)
    assert "real corpus: fake-prompts: 3 speech clips" in lines
    assert record["clips"] == {"train": 4, "valid": 0}
    rows = pq.read_table(out / "captions" / "train.parquet").to_pylist()
    speech = [r for r in rows if r["release"] == "fake-prompts"]
    music = [r for r in rows if r["release"] == "fake-music"]
    assert [r["path"] for r in speech] == [
        f"fake-prompts/speech-{k:04d}.npy" for k in range(3)
    ]
    # The first clip starts with the first prompt, the second 10 s in.
    first = np.load(out / "audio" / speech[0]["path"]).astype(np.float32) / 32767
    want = _prompt(2.5, 0)
    assert np.abs(first[: want.size] - want).max() < 1e-3
    assert np.abs(first[want.size : want.size + int(0.3 * RATE)]).max() == 0
    for row in speech:
        assert row["tag"] == ["speech", "spoken word"]
        assert (
            "no music" in row["caption_summary"]
            or "without music" in (row["caption_summary"])
        )
        assert {"drums", "piano", "electric guitar", "strings"} <= set(row["absent"])
        assert "vocals" not in row["absent"]  # a speaking voice is a voice
    assert music
    assert all(r["tag"][-1] == "music" for r in music)
    assert all("speech" not in r["tag"] for r in music)
    # Recaptioning from the stored tags keeps what the package states.
    assert trainer_main(["real-corpus", "--out", str(out), "--recaption",
                         "--sources", str(path)]) == 0  # fmt: skip
    again = pq.read_table(out / "captions" / "train.parquet").to_pylist()
    assert again == rows
    # A package with both lists (or neither) is refused in one line.
    pins["fake-prompts"]["music"] = [f"{prompts}/*.flac"]
    path = _write_sources(tmp_path, pins, {}, valid_packages=[], forbidden=[])
    assert trainer_main(["real-corpus", "--out", str(tmp_path / "x"), "--sources",
                         str(path), "--cache", str(cache)]) == 2  # fmt: skip
    assert "one of music or speech" in capsys.readouterr().err
