"""The bins of the hour histograms the KPI aggregates keep (pure; the store writes them, metrics read them).

Durations are binned from integer microseconds, so every write path bins alike: 0.1 h wide below 720 h (30 days),
1 h below 2,000 h, 24 h beyond. A median or quantile read from a histogram takes a bin's one value where it holds
one, else the bin's middle: exact to :func:`half_width` (0.05 h below 30 days).
"""
from __future__ import annotations

import numpy as np

US_PER_H = 3_600_000_000
FINE_END_H, MID_END_H = 720, 2000  # 0.1 h bins below 30 days, 1 h below 2,000 h, 24 h beyond
_FINE_END = FINE_END_H * US_PER_H
_MID_END = MID_END_H * US_PER_H
_MID0 = FINE_END_H * 10
_COARSE0 = _MID0 + (MID_END_H - FINE_END_H)


def hour_bin(us):
    """Bin number of durations given in integer microseconds: 0.1 h wide below 720 h, 1 h below 2,000 h, 24 h
    beyond (integer arithmetic, so both write paths bin alike). Works on ints and numpy int arrays."""
    if isinstance(us, (int, np.integer)):
        if us < _FINE_END:
            return us // (US_PER_H // 10)
        if us < _MID_END:
            return _MID0 + (us - _FINE_END) // US_PER_H
        return _COARSE0 + (us - _MID_END) // (24 * US_PER_H)
    us = np.asarray(us, dtype=np.int64)
    return np.where(us < _FINE_END, us // (US_PER_H // 10),
                    np.where(us < _MID_END, _MID0 + (us - _FINE_END) // US_PER_H,
                             _COARSE0 + (us - _MID_END) // (24 * US_PER_H))).astype(np.int64)


def bin_mid(b):
    """The middle of bin(s) ``b``, in hours, and the half-width: a value read at the middle is this close."""
    b = np.asarray(b, dtype=np.int64)
    mid = np.where(b < _MID0, (b + 0.5) / 10.0,
                   np.where(b < _COARSE0, FINE_END_H + (b - _MID0) + 0.5, MID_END_H + (b - _COARSE0) * 24 + 12.0))
    half = np.where(b < _MID0, 0.05, np.where(b < _COARSE0, 0.5, 12.0))
    return mid, half


def half_width(hours: float) -> float:
    """How exactly a median or quantile near ``hours`` is read from the histograms."""
    return 0.05 if hours < FINE_END_H else (0.5 if hours < MID_END_H else 12.0)


