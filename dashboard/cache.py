"""The one shared cache (flask-caching): file system by default, Redis when ``CACHE_URL``/``REDIS_URL`` say so.

Both work across several gunicorn workers; a per-process SimpleCache would not.
"""
from __future__ import annotations

from flask import Flask
from flask_caching import Cache


def init_cache(server: Flask, config: dict) -> Cache:
    cache = Cache(config=config)
    cache.init_app(server)
    return cache
