"""The demo in a real browser: login, two tabs, parallel requests that all land, the cookie as
the browser holds it, a server restart that logs nobody out, and "log out everywhere" from a
second browser."""

from __future__ import annotations

import json
import re
import typing as t

import pytest

if t.TYPE_CHECKING:
    import collections.abc as c
    from pathlib import Path

    from selenium.webdriver import Chrome

    from .conftest import DemoServer

pytestmark = pytest.mark.browser

#: Seconds to wait for a page to show what a step expects.
WAIT = 10


def by_id(driver: Chrome, element_id: str) -> t.Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def wait_for(driver: Chrome, condition: c.Callable[[Chrome], t.Any], what: str) -> t.Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition, message=f"waiting for {what}")


def present(element_id: str) -> c.Callable[[Chrome], t.Any]:
    from selenium.common.exceptions import NoSuchElementException

    def check(driver: Chrome) -> t.Any:
        try:
            return by_id(driver, element_id)
        except NoSuchElementException:
            return False

    return check


def submit(driver: Chrome, element_id: str, then: str) -> None:
    """Click the button ``element_id`` and wait for the next page, which has ``then``."""
    from selenium.webdriver.support import expected_conditions

    button = by_id(driver, element_id)
    button.click()
    wait_for(driver, expected_conditions.staleness_of(button), f"the page after #{element_id}")
    wait_for(driver, present(then), f"#{then}")


def log_in(driver: Chrome, url: str, name: str) -> None:
    driver.get(url + "/")
    by_id(driver, "name").send_keys(name)
    submit(driver, "login", then="user")
    assert by_id(driver, "user").text == name


def count(driver: Chrome) -> int:
    return int(by_id(driver, "count").text)


def test_demo_in_a_browser(
    browser: c.Callable[[], Chrome], demo_server: DemoServer, artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By

    url = demo_server.url
    first = browser()
    log_in(first, url, "ada")
    assert "Welcome" in first.find_element(By.CSS_SELECTOR, ".flash-success").text

    # The cookie as the browser holds it: HttpOnly, SameSite=Lax, out of reach of scripts.
    cookie = first.get_cookie("session")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert "session=" not in first.execute_script("return document.cookie")
    sid = cookie["value"].split(".")[0]
    # The page shows the store key (a keyed hash of the id) shortened, never the whole id.
    shown = by_id(first, "record-key").text
    assert re.fullmatch(r"session:[A-Za-z0-9_-]{6}…", shown), shown
    assert shown != f"session:{sid[:6]}…"
    assert sid not in first.page_source

    # Two tabs of one session: each press lands, whichever tab it comes from.
    one = first.current_window_handle
    first.switch_to.new_window("tab")
    first.get(url + "/")
    two = first.current_window_handle
    assert count(first) == 0
    submit(first, "press", then="count")
    assert count(first) == 1
    first.switch_to.window(one)
    assert count(first) == 0  # this tab has not been reloaded yet
    submit(first, "press", then="count")
    assert count(first) == 2
    first.switch_to.window(two)
    first.refresh()
    assert count(first) == 2

    # Parallel requests of the session, each changing its own key: all of them land.
    by_id(first, "race").click()
    result = wait_for(
        first,
        lambda driver: (
            "landed" in by_id(driver, "race-result").text and by_id(driver, "race-result")
        ),
        "the parallel requests",
    ).text
    assert result.startswith("6 of 6 increments landed"), result
    rows = first.find_elements(By.CSS_SELECTOR, "#race-table tbody tr")
    assert [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")][:3] for row in rows] == [
        [f"race_{slot}", "0", "1"] for slot in range(6)
    ]
    first.save_screenshot(str(artifacts / "demo-desktop.png"))

    # A restart: the store keeps the record, the instance folder the signing key.
    demo_server.restart()
    first.refresh()
    wait_for(first, present("user"), "still logged in after the restart")
    assert count(first) == 2
    assert first.get_cookie("session")["value"] == cookie["value"]
    # The record as the server holds it: the decoded data, and its expiry counting down.
    first.find_element(By.CSS_SELECTOR, "#record summary").click()
    data = json.loads(by_id(first, "record-json").text)
    assert data["_user_id"] == "ada"
    assert data["count"] == 2
    assert [data[f"race_{slot}"] for slot in range(6)] == [1] * 6
    assert re.fullmatch(r"(29|30):\d\d", by_id(first, "expiry").text)
    first.save_screenshot(str(artifacts / "demo-record.png"))

    # A second browser (its own profile) logs in as the same user: two devices.
    second = browser()
    second.set_window_size(390, 1400)
    log_in(second, url, "ada")
    devices = second.find_elements(By.CSS_SELECTOR, "#devices li")
    assert len(devices) == 2
    assert sum("(this device)" in device.text for device in devices) == 1
    second.save_screenshot(str(artifacts / "demo-phone.png"))

    # Log out everywhere from the second browser: the first is logged out too.
    submit(second, "logout-everywhere", then="name")
    assert "2 session(s) deleted" in second.find_element(By.CSS_SELECTOR, ".flash-info").text
    first.refresh()
    wait_for(first, present("name"), "the login form in the first browser")
    assert first.find_elements(By.ID, "user") == []
    first.save_screenshot(str(artifacts / "demo-logged-out.png"))

    # Neither the page nor the server's log ever showed the whole id.
    assert sid not in demo_server.log.read_text(errors="replace")
