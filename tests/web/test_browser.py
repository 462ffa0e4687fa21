"""The search page and the map file in headless Chromium, over a real server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait
from web_helpers import TRACKS, UNTAGGED, Server, beet

WAIT = 60  # seconds; a loaded machine renders slowly, a fast one returns early


def _screenshot(driver: Any, tmp_path: Path, name: str) -> None:
    """Into $CLAP_SCREENSHOTS when set (docs/img), else the test's folder."""
    folder = Path(os.environ.get("CLAP_SCREENSHOTS") or tmp_path)
    assert driver.save_screenshot(str(folder / name))


def _search(driver: Any, text: str) -> None:
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(text, Keys.ENTER)


def _message(driver: Any, starts: str) -> str:
    """The page's status line, once it starts with `starts`."""
    return WebDriverWait(driver, WAIT).until(
        lambda d: (t := d.find_element(By.ID, "message").text).startswith(starts) and t
    )


def _message_is(driver: Any, text: str) -> None:
    """Wait until the page's status line is `text`."""
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_element(By.ID, "message").text == text
    )


def _address(driver: Any) -> dict[str, str]:
    """The parameters of the page's address (the view it shows)."""
    return {k: v for k, (v,) in parse_qs(urlsplit(driver.current_url).query).items()}


def _ids(driver: Any) -> list[str]:
    return [
        li.get_attribute("data-id")
        for li in driver.find_elements(By.CSS_SELECTOR, "#results li.result")
    ]


def _results(driver: Any) -> list[dict[str, str]]:
    rows = []
    for li in driver.find_elements(By.CSS_SELECTOR, "#results li.result"):
        row = {
            key: li.find_element(By.CLASS_NAME, key).text
            for key in ("score", "artist", "title", "album")
        }
        row["audio"] = li.find_element(By.TAG_NAME, "audio").get_attribute("src")
        rows.append(row)
    return rows


def _rendered_points(driver: Any) -> int:
    canvas = WebDriverWait(driver, WAIT).until(
        lambda d: [
            c
            for c in d.find_elements(By.TAG_NAME, "canvas")
            if c.get_attribute("data-points")
        ]
    )[0]
    return int(canvas.get_attribute("data-points"))


def _hover(driver: Any, container: str, i: int) -> str:
    """Move the mouse onto point i of the map in `container`; the tooltip."""
    where = driver.execute_script(
        "const box = document.querySelector(arguments[0]);"
        "const p = box.clapMap.position(arguments[1]);"
        "const canvas = box.querySelector('canvas');"
        "let r = canvas.getBoundingClientRect();"
        "window.scrollBy(0, r.top + p.y - window.innerHeight / 2);"
        "r = canvas.getBoundingClientRect();"
        "return {x: r.left + 1 + p.x, y: r.top + 1 + p.y};",  # 1: the border
        container,
        i,
    )
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(round(where["x"]), round(where["y"]))
    actions.perform()
    tip = driver.find_element(By.CSS_SELECTOR, f"{container} .clap-map-tip")
    return WebDriverWait(driver, WAIT).until(lambda d: tip.is_displayed() and tip.text)


def _first_player(driver: Any, action: str, event: str, value: str) -> Any:
    """Run the script `action` on the first result's player `a`, then wait
    for its `event` and return the script expression `value` at that moment."""
    return driver.execute_script(
        "const a = document.querySelector('#results audio');"
        f"{action}"
        f"return new Promise(r => a.addEventListener('{event}',"
        f" () => r({value})));"
    )


def test_search_page_shows_ranked_results_with_players(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    browser.get(server.url + "/")
    _search(browser, "low bass without noise")
    assert _message(browser, "Results") == (
        f'Results for "low bass without noise": {len(TRACKS)} tracks'
    )
    results = _results(browser)
    assert len(results) == len(TRACKS)
    assert {r["title"] for r in results[:3]} == {"Deep One", "Deep Two", "Rumble"}
    scores = [float(r["score"]) for r in results]
    assert scores == sorted(scores, reverse=True)
    # Text from the library is shown as text, never as markup.
    assert "Shine <b>" in {r["title"] for r in results}
    # A track without tags is shown by its file's name, not as "? ?".
    (untagged,) = [r for r in results if r["title"] == UNTAGGED]
    assert untagged["artist"] == ""
    assert "?" not in {r["artist"] for r in results} | {r["title"] for r in results}
    assert all(r["audio"].startswith(server.url + "/api/audio/") for r in results)
    explanation = browser.find_element(By.CSS_SELECTOR, "#explanation pre")
    assert "negated:     noise" in explanation.get_attribute("textContent")
    # Hovering a score shows how it adds up for that track.
    score = browser.find_element(By.CSS_SELECTOR, "#results li.result .score")
    assert score.get_attribute("title").startswith(f"{score.text} = sim ")
    # The player reads the served file: its duration is the track's.
    duration = _first_player(
        browser, "a.preload = 'metadata'; a.load();", "loadedmetadata", "a.duration"
    )
    assert duration == pytest.approx(3.0, abs=0.05)
    # And it seeks (the server answers range requests).
    seeked = _first_player(browser, "a.currentTime = 2.5;", "seeked", "a.currentTime")
    assert seeked == pytest.approx(2.5, abs=0.05)
    assert _rendered_points(browser) == len(TRACKS)
    _screenshot(browser, tmp_path, "web.png")


def test_more_like_this_and_the_map_on_the_page(browser: Any, server: Server) -> None:
    browser.get(server.url + "/?q=noise")
    _message(browser, "Results")
    first = browser.find_element(By.CSS_SELECTOR, "#results li.result")
    label = " – ".join(
        first.find_element(By.CLASS_NAME, key).text
        for key in ("artist", "title")
        if first.find_element(By.CLASS_NAME, key).text
    )
    first_id = first.get_attribute("data-id")
    first.find_element(By.CLASS_NAME, "like").click()
    assert _message(browser, "More like").startswith(f"More like {label}:")
    ids = [
        li.get_attribute("data-id")
        for li in browser.find_elements(By.CSS_SELECTOR, "#results li.result")
    ]
    assert first_id not in ids
    assert len(ids) == len(TRACKS) - 1
    # The map: every track drawn, hover names it, a click asks for its likes.
    assert _rendered_points(browser) == len(TRACKS)
    hover = browser.execute_script("return document.querySelector('#map').clapMap")
    assert hover["count"] == len(TRACKS)
    tip = _hover(browser, "#map", 0)
    assert tip in {f"{t[1]} – {t[2]}" for t in TRACKS}
    ActionChains(browser).click().perform()
    heading = _message(browser, f"More like {tip}:")
    # The point's likes are the page's address: a reload shows them again.
    picked = _address(browser)
    assert set(picked) == {"like", "n"}
    assert picked["like"].isdigit()
    assert picked["n"] == "20"
    ids = _ids(browser)
    browser.refresh()
    _message_is(browser, heading)
    assert _ids(browser) == ids


def test_the_view_is_the_address_for_reload_back_and_forward(
    browser: Any, server: Server
) -> None:
    browser.get(server.url + "/?n=5&q=noise")
    count = Select(browser.find_element(By.ID, "n"))
    _message_is(browser, 'Results for "noise": 5 tracks')
    assert count.first_selected_option.text == "5"
    assert browser.find_element(By.ID, "q").get_attribute("value") == "noise"
    # Another count shows the view again, and a reload keeps it.
    count.select_by_visible_text("100")
    _message_is(browser, f'Results for "noise": {len(TRACKS)} tracks')
    assert _address(browser) == {"q": "noise", "n": "100"}
    browser.refresh()
    _message_is(browser, f'Results for "noise": {len(TRACKS)} tracks')
    count = Select(browser.find_element(By.ID, "n"))
    assert count.first_selected_option.text == "100"
    # "More like this" is an address of its own, the box left empty.
    first = browser.find_element(By.CSS_SELECTOR, "#results li.result")
    first_id = first.get_attribute("data-id")
    first.find_element(By.CLASS_NAME, "like").click()
    heading = _message(browser, "More like")
    assert _address(browser) == {"like": first_id, "n": "100"}
    assert browser.find_element(By.ID, "q").get_attribute("value") == ""
    likes = _ids(browser)
    assert first_id not in likes
    browser.refresh()
    _message_is(browser, heading)
    assert _ids(browser) == likes
    # Back returns to the search, its words in the box; Forward to the likes.
    browser.back()
    _message_is(browser, f'Results for "noise": {len(TRACKS)} tracks')
    assert browser.find_element(By.ID, "q").get_attribute("value") == "noise"
    assert _address(browser) == {"q": "noise", "n": "100"}
    browser.forward()
    _message_is(browser, heading)
    assert _ids(browser) == likes
    # A search typed in the box is a new address too.
    _search(browser, "low")
    _message_is(browser, f'Results for "low": {len(TRACKS)} tracks')
    assert _address(browser) == {"q": "low", "n": "100"}
    browser.back()
    _message_is(browser, heading)


def test_bad_input_is_one_line_on_the_page(browser: Any, server: Server) -> None:
    browser.get(server.url + "/")
    _search(browser, "jazz without")
    message = browser.find_element(By.ID, "message")
    WebDriverWait(browser, WAIT).until(
        lambda d: message.get_attribute("class") == "error"
    )
    assert message.text == (
        "'jazz without' ends with 'without' and names nothing to leave out: "
        'say what, e.g. search for "jazz without vocals"'
    )
    assert _results(browser) == []
    # An empty box is asked too: a reload says again what is missing.
    empty = 'type a description, e.g. "calm piano" or "jazz without vocals"'
    for ask in (lambda: _search(browser, ""), browser.refresh):
        ask()
        message = browser.find_element(By.ID, "message")
        WebDriverWait(browser, WAIT).until(
            lambda d, m=message: m.get_attribute("class") == "error" and m.text == empty
        )


def test_map_file_draws_every_track_offline(
    browser: Any, library: Path, tmp_path: Path
) -> None:
    out = tmp_path / "map.html"
    done = beet(library, "clap-map", "-o", str(out), "--color", "year")
    assert done.returncode == 0, done.stderr
    browser.get(out.as_uri())
    assert _rendered_points(browser) == len(TRACKS)
    legend = [
        li.text for li in browser.find_elements(By.CSS_SELECTOR, ".clap-map-legend li")
    ]
    # Every track has a year: no grey in the legend, the years in order.
    assert legend == ["1991", "1994", "1995", "2001", "2005", "2008", "2010", "2012"]
    drawn = browser.execute_script(
        "const c = document.querySelector('canvas');"
        "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < px.length; i += 4)"
        " if (px[i] < 250 || px[i + 1] < 250 || px[i + 2] < 250) n++;"
        "return n;"
    )
    assert drawn > 0
    # Nothing was fetched but the file itself.
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert fetched == []
    assert _hover(browser, "#clap-map", 3) == "Middle Band – Centre"
    _screenshot(browser, tmp_path, "map.png")
