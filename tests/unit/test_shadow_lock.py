"""The lockout played for names that are no account (pure: a cachelib cache in, the end of the lock out)."""
from __future__ import annotations

import datetime as dt

from cachelib import SimpleCache

from dashboard.auth.users import shadow_lock

T0 = dt.datetime(2026, 11, 25, 19, 0, tzinfo=dt.timezone.utc)


def test_fifth_wrong_name_locks_for_the_lock_time_then_counts_again():
    cache = SimpleCache()
    for k in range(4):
        assert shadow_lock(cache, "Nobody", T0, max_failures=5, lock_minutes=15) is None
    until = shadow_lock(cache, "nobody ", T0, max_failures=5, lock_minutes=15)  # same name
    assert until == T0 + dt.timedelta(minutes=15)
    assert shadow_lock(cache, "nobody", T0 + dt.timedelta(minutes=14), max_failures=5) == until  # still locked
    later = T0 + dt.timedelta(minutes=16)
    for k in range(4):  # a fresh count after the lock
        assert shadow_lock(cache, "nobody", later, max_failures=5) is None
    assert shadow_lock(cache, "nobody", later, max_failures=5) == later + dt.timedelta(minutes=15)
    assert shadow_lock(cache, "someone-else", T0, max_failures=1) == T0 + dt.timedelta(minutes=15)  # its own count
