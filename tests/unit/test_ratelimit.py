"""The rate limiter itself (dashboard/ratelimit.py): counts per rule and key in a moving window, says how long to
wait, can be turned off, and lets requests pass (and says so) when its storage is down."""
from __future__ import annotations

import logging

import pytest

from dashboard.ratelimit import RULES, RateLimits
from dashboard.settings import Settings


def test_counts_per_rule_and_key_and_says_how_long_to_wait():
    lim = RateLimits("memory://", {"login_name": "3/minute"})
    assert [lim.check("login_name", "wang") for _ in range(3)] == [None, None, None]
    refused = lim.check("login_name", "wang")
    assert refused is not None and refused.rule == "login_name" and 1 <= refused.retry_after <= 60
    assert lim.check("login_name", "li") is None  # another key counts on its own
    assert lim.check("login_address", "wang") is None  # another rule too


def test_off_means_off():
    lim = RateLimits("memory://", {"login_name": "1/minute"}, enabled=False)
    assert all(lim.check("login_name", "x") is None for _ in range(5))


def test_a_storage_that_is_down_lets_requests_pass_and_is_logged(caplog):
    lim = RateLimits("redis://127.0.0.1:1/0", {"login_name": "1/minute"})  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="dashboard.ratelimit"):
        assert lim.check("login_name", "x") is None and lim.check("login_name", "x") is None
    assert "rate limits not enforced" in caplog.text


def test_settings_choose_redis_when_the_cache_is_redis_and_refuse_unknown_rules(tmp_path):
    assert Settings(instance_dir=tmp_path).rate_limit_storage == "memory://"
    assert Settings(instance_dir=tmp_path, cache_url="redis://h:6379/2").rate_limit_storage == "redis://h:6379/2"
    env = {"RATE_LIMIT_LOGIN_NAME": "7/minute", "RATE_LIMITS": "1"}
    s = Settings.from_env(env)
    assert s.rate_limits == {"login_name": "7/minute"} and s.rate_limits_on
    assert set(RULES) >= set(s.rate_limits)
    with pytest.raises(ValueError, match="RATE_LIMIT_"):
        RateLimits.from_settings(Settings.from_env({"RATE_LIMIT_LOGINS": "1/minute"}))
    assert not Settings.from_env({"RATE_LIMITS": "0"}).rate_limits_on
