"""Year on year (issue 12) in a real browser on the full demo (2018 + 2019 + recent days): the overview's cards for
calendar 2019 each show a 同比 value (not "—"), the detection rate's is the seed's +16.12 % and the time to
resolve a dispute is down more than 67 %; the morning briefing shows the same in its year-on-year table."""
from __future__ import annotations

import json
import re
import urllib.request

from dashboard.metrics import registry
from tests.conftest import authed

CARDS = registry.shown_in("cards")


def _api(server, query: str) -> dict:
    with urllib.request.urlopen(authed(f"{server.url}/api/v1/kpis?{query}")) as resp:
        return json.loads(resp.read())


def _percent(text: str) -> float:
    m = re.search(r"([+-]\d+\.\d+)%", text)
    assert m, text
    return float(m.group(1))


def test_overview_cards_2019_show_year_on_year(demo_server, page):
    demo_server.sign_in(page)
    page.goto(demo_server.url + "/?period=2019")
    page.wait_for_function("() => { const e = document.querySelector('#card-yoy-detection_rate');"
                           " return e && e.innerText.includes('%'); }", timeout=90_000)
    change = _api(demo_server, "level=district&period=2019")["previous_year"]["change"]
    for kpi in CARDS:
        text = page.locator(f"#card-yoy-{kpi}").inner_text()
        assert text.startswith("同比 ") and "—" not in text, (kpi, text)
        assert abs(_percent(text) - change[kpi]["change"] * 100) <= 0.005 + 1e-9, (kpi, text)
    assert page.locator("#card-yoy-detection_rate").inner_text() == "同比 +16.12%"
    assert _percent(page.locator("#card-yoy-dispute_median_hours").inner_text()) < -67
    # a better detection rate and a faster resolution are both marked good
    assert "wx-good" in page.locator("#card-yoy-detection_rate").get_attribute("class")
    assert "wx-good" in page.locator("#card-yoy-dispute_median_hours").get_attribute("class")
    # the tooltip names last year's rate and the change in percentage points
    title = page.locator("#card-yoy-detection_rate").get_attribute("title")
    assert "34.33%" in title and "个百分点" in title


def test_briefing_shows_the_year_on_year_table(demo_server, page):
    demo_server.sign_in(page)
    page.goto(demo_server.url + "/briefing")
    page.wait_for_selector("#briefing-year-table")
    assert "2019年与2018年" in page.locator("#briefing-year h3").inner_text()
    rows = page.locator("#briefing-year-table tbody tr")
    assert rows.count() == len(registry.shown_in("briefing_year"))
    cells = page.locator("#briefing-year-detection_rate td").all_inner_texts()
    assert cells[1] == "39.86%" and cells[2] == "34.33%" and cells[3].startswith("+16.12%")
    assert _percent(page.locator("#briefing-year-dispute_median_hours td").nth(3).inner_text()) < -67
    for text in page.locator("#briefing-year-table td.wx-b-yoy").all_inner_texts():
        assert "—" not in text, text
    with urllib.request.urlopen(authed(demo_server.url + "/api/v1/briefing.pdf")) as resp:
        assert resp.read().startswith(b"%PDF")
