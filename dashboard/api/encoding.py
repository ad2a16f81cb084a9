"""The compression of a JSON answer made for one request (a view's box of geometry, its incident cells and markers):
on the critical path of a pan, made once or twice, so made fast — zstd level 1 when the browser takes it (Chromium
123+, Firefox 126+), else brotli 2, else gzip 5. Measured on a zoom-11 view's zones (894 KB, AMD EPYC, 2026-12-03):
brotli 5 (before) 24 ms and 200 KB; brotli 2 7.8 ms, 213 KB; zstd 1 3.2 ms, 219 KB. Whole layers, made once and kept,
stay at their best (``api/geo._compressed``)."""
from __future__ import annotations

import gzip

import brotli
from backports import zstd

FAST_ENCODERS = {"zstd": lambda raw: zstd.compress(raw, level=1),
                 "br": lambda raw: brotli.compress(raw, quality=2),
                 "gzip": lambda raw: gzip.compress(raw, 5, mtime=0)}


def fast_encoding(accept_encodings) -> str | None:
    """The first of :data:`FAST_ENCODERS` the request accepts (werkzeug's ``request.accept_encodings``), or None."""
    return next((e for e in FAST_ENCODERS if accept_encodings[e]), None)
