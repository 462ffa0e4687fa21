"""Screenshots of clap-web and clap-map for docs/user-guide.md, taken in
headless Chromium over a library of real recordings indexed with the
shipped model.

    python tests/web/screenshots.py docs/img --audio FOLDER [--tracks 200]

FOLDER holds one sub-folder of audio files per source (its name becomes the
tracks' album and artist), as the real-recording check set is laid out.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from web_helpers import Server, beet, headless_chromium, wait_for

QUERY = "calm piano without drums"


def library(root: Path, audio: Path, tracks: int) -> Path:
    """A BEETSDIR with `tracks` files taken in turn from each source."""
    from beets import config
    from beets.library import Item, Library

    beetsdir = root / "beetsdir"
    beetsdir.mkdir()
    (beetsdir / "config.yaml").write_text(
        f"directory: {root / 'music'}\nlibrary: {beetsdir / 'library.db'}\n"
        "plugins: clap\ncreate_backup_before_migrations: no\n"
    )
    config["create_backup_before_migrations"] = False
    sources = [sorted(d.iterdir()) for d in sorted(audio.iterdir()) if d.is_dir()]
    turns = itertools.chain.from_iterable(itertools.zip_longest(*sources))
    chosen = [f for f in turns if f is not None][:tracks]
    lib = Library(str(beetsdir / "library.db"))
    for path in chosen:
        source = path.parent.name.removesuffix("-music").removesuffix("-data")
        title = path.stem.split("_")[0].replace("-", " ")
        lib.add(Item(path=str(path).encode(), artist=source, album=source, title=title))
    lib._close()
    done = beet(beetsdir, "clap-index", timeout=3600)
    if done.returncode:
        sys.exit(done.stderr)
    print(done.stdout.strip().splitlines()[-1])
    return beetsdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--audio", type=Path, required=True)
    parser.add_argument("--tracks", type=int, default=200)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        beetsdir = library(root, args.audio, args.tracks)
        server = Server(beetsdir)
        driver = headless_chromium(root / "profile", "1100,900", "--hide-scrollbars")
        try:
            driver.get(server.url + "/")
            box = driver.find_element(By.ID, "q")
            box.send_keys(QUERY, Keys.ENTER)
            wait_for(
                lambda: driver.find_elements(By.CSS_SELECTOR, "#results li.result"),
                120,
                "results",
            )
            driver.find_element(By.CSS_SELECTOR, "#explanation summary").click()
            driver.save_screenshot(str(args.out / "web.png"))
            canvas = wait_for(
                lambda: driver.find_element(By.CSS_SELECTOR, "#map canvas"),
                300,
                "the map",
            )
            driver.execute_script("arguments[0].scrollIntoView()", canvas)
            driver.save_screenshot(str(args.out / "web-map.png"))
            page = root / "map.html"
            done = beet(beetsdir, "clap-map", "-o", str(page), "--color", "album")
            print(done.stdout.strip())
            driver.get(page.as_uri())
            wait_for(
                lambda: driver.find_element(By.TAG_NAME, "canvas").get_attribute(
                    "data-points"
                ),
                300,
                "the map file",
            )
            driver.save_screenshot(str(args.out / "map.png"))
        finally:
            driver.quit()
            server.stop()


if __name__ == "__main__":
    main()
