"""The export's formula guard: a text cell a spreadsheet would run (formula or DDE call, ASCII or full-width,
also after leading blanks) is written with a leading apostrophe; other text is left as it is."""
from __future__ import annotations

import pytest

from dashboard.api.export import spreadsheet_safe, xlsx_safe


@pytest.mark.parametrize("text", [
    "=1+1", "+1", "-1", "@SUM(A1)", "|calc", ";cmd", "\t=1", "\r=1", "\n=1", " =HYPERLINK(\"http://x\")",
    "\n\n=cmd|' /C calc'!A0", "＝1+1", "＋1", "－1", "＠A1", "｜x", "；x", "\u3000=1", "\u00a0@x",
])
def test_runnable_cells_get_an_apostrophe(text):
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["道路积水", " 道路积水", "A=B", "13800001111", "", None, 42, 3.5, "a-b"])
def test_other_values_are_unchanged(value):
    assert spreadsheet_safe(value) == value


def test_an_excel_cell_never_holds_a_control_character():
    """openpyxl refuses them (a 500 before): each becomes U+FFFD; tabs and line breaks stay."""
    import io

    from openpyxl import Workbook, load_workbook

    text = "a\x01b\x0bc\x1fd\te\nf"
    assert xlsx_safe(text) == "a\ufffdb\ufffdc\ufffdd\te\nf"
    assert xlsx_safe("\x02=1") == "\ufffd=1" and xlsx_safe(7) == 7  # replaced, not dropped: no formula appears
    wb = Workbook()
    wb.active.append([xlsx_safe(text)])
    out = io.BytesIO()
    wb.save(out)
    assert load_workbook(out).active["A1"].value == "a\ufffdb\ufffdc\ufffdd\te\nf"
