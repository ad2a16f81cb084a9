import pandas as pd
import pytest

from dashboard.metrics.periods import PeriodError, resolve

NOW = pd.Timestamp("2026-11-25 01:30", tz="UTC")  # 09:30 in Huzhou


def test_named_periods_are_local_days():
    p = resolve("today", now=NOW)
    assert str(p.start) == "2026-11-25 00:00:00+08:00" and str(p.end) == "2026-11-26 00:00:00+08:00"
    assert resolve("7d", now=NOW).first_day == "2026-11-19"
    assert resolve("30d", now=NOW).first_day == "2026-10-27"
    assert resolve("year", now=NOW).first_day == "2026-01-01"
    y = resolve("2019", now=NOW)
    assert (y.first_day, y.last_day) == ("2019-01-01", "2019-12-31")
    assert y.previous_year().first_day == "2018-01-01"


def test_utc_evening_is_next_local_day():
    assert resolve("today", now=pd.Timestamp("2026-11-24 17:00", tz="UTC")).first_day == "2026-11-25"


def test_custom_and_errors():
    p = resolve("custom", "2019-04-01", "2019-04-30", now=NOW)
    assert (p.first_day, p.last_day) == ("2019-04-01", "2019-04-30")
    for args, field in [(("week",), "period"), (("custom",), "from"), (("custom", "2019-13-01"), "from"),
                        (("custom", "2019-04-02", "2019-04-01"), "to")]:
        with pytest.raises(PeriodError) as exc:
            resolve(*args, now=NOW)
        assert exc.value.field == field
