"""CACHE_URL: each accepted form gives its cache; anything else is refused at start with what is accepted (a
``null://`` once became a file cache in a folder named ``null:``)."""
import pytest

from dashboard.settings import Settings


def _config(url, tmp_path):
    return Settings(instance_dir=tmp_path, cache_url=url).cache_config


def test_each_accepted_cache_url_gives_its_cache(tmp_path):
    assert _config("", tmp_path)["CACHE_DIR"] == str(tmp_path / "cache")
    assert _config(f"file://{tmp_path / 'c'}", tmp_path)["CACHE_DIR"] == str(tmp_path / "c")
    assert _config("null", tmp_path) == {"CACHE_TYPE": "NullCache"}
    for url in ("redis://127.0.0.1:6379/3", "rediss://cache.example:6380/0", "unix:///run/redis.sock"):
        c = _config(url, tmp_path)
        assert (c["CACHE_TYPE"], c["CACHE_REDIS_URL"]) == ("RedisCache", url)


@pytest.mark.parametrize("url", ["null://", "memcached://127.0.0.1:11211", "http://cache"])
def test_an_unknown_cache_url_is_refused(url, tmp_path):
    with pytest.raises(ValueError, match="CACHE_URL"):
        _config(url, tmp_path)
