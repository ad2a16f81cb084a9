"""A bundle's columnar rows (``metrics.rollup.UnitRows``, ``Reached``) read as the dict of dicts they replace: the
same Python values (ints, floats, None) in the same order, through a pickle round trip (the shared cache); the
ranking of arrays (``rank_of``) equals a stable sort of the values, ties and missing values included."""
from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from dashboard.metrics.rollup import Reached, UnitRows, rank_of


def _rows(rng: random.Random, n: int, shuffled: bool = False) -> tuple[UnitRows, dict]:
    codes = [f"G{i:05d}" for i in range(n)]
    if shuffled:  # rows in another order than their codes' (found through a dict, not by bisection)
        rng.shuffle(codes)
    counts = np.array([rng.randrange(0, 6) for _ in range(n)], dtype=np.int64)
    rate = np.array([np.nan if rng.random() < 0.2 else rng.choice([0.5, 0.25, rng.random()]) for _ in range(n)])
    hidden = {"present": np.array([rng.random() < 0.7 for _ in range(n)]),
              **{c: np.array([rng.randrange(0, 9) for _ in range(n)], dtype=np.int64) for c in Reached.COLUMNS}}
    rows = UnitRows(codes, {"open_incidents": counts, "resolution_rate": rate}, hidden)
    plain = {c: {"open_incidents": int(k), "resolution_rate": None if np.isnan(r) else float(r)}
             for c, k, r in zip(codes, counts, rate)}
    return rows, plain


def _old_rank(plain: dict, code: str, kpi: str, lower: bool):
    """The ranking the dict of dicts had (metrics.views.rank_in_district before the columns)."""
    vals = [(c, r.get(kpi)) for c, r in plain.items() if r.get(kpi) is not None]
    if not vals:
        return None, len(plain)
    vals.sort(key=lambda x: x[1], reverse=not lower)
    codes = [c for c, _ in vals]
    return (codes.index(code) + 1 if code in codes else None), len(vals)


@pytest.mark.parametrize("seed,shuffled", [(1, False), (2, False), (3, True)])
def test_rows_read_as_the_dict_they_replace_after_a_pickle(seed, shuffled):
    rows, plain = _rows(random.Random(seed), 300, shuffled)
    assert rows.ordered is not shuffled
    back = pickle.loads(pickle.dumps({"kpis": {"grid": rows}, "levels": Reached({"grid": rows})}))
    got = back["kpis"]["grid"]
    assert dict(got.items()) == plain and list(got) == list(plain) and len(got) == len(plain)
    for code in ("G00000", "G00123", "G00299"):
        row = got[code]
        assert list(row) == ["open_incidents", "resolution_rate"]
        assert type(row["open_incidents"]) is int and (row["resolution_rate"] is None
                                                        or type(row["resolution_rate"]) is float)
    assert got.get("nope") is None and "nope" not in got and "G00007" in got
    assert all(got.pos(c) == i for i, c in enumerate(rows.codes)) and got.pos(None) is None and got.pos(7) is None
    assert got.pos("G0") is None and got.pos("G00299x") is None and got.pos("A") is None and got.pos("Z") is None
    with pytest.raises(KeyError):
        got["nope"]
    assert got.table() == {k: {c: r[k] for c, r in plain.items()} for k in ("open_incidents", "resolution_rate")}
    levels = back["levels"]
    want = {("grid", c): tuple(int(rows.hidden[k][i]) for k in Reached.COLUMNS)
            for i, c in enumerate(rows.codes) if rows.hidden["present"][i]}
    assert dict(levels.items()) == want and len(levels) == len(want)
    assert levels.get(("grid", "nope")) is None and levels.get(("zone", "G00001")) is None
    # medians put in: a copy, the original untouched
    moved = got.with_values({"resolution_rate": {"G00001": 0.75, "G00002": None, "nope": 1.0}})
    assert moved["G00001"]["resolution_rate"] == 0.75 and moved["G00002"]["resolution_rate"] is None
    assert got["G00001"] == plain["G00001"]


@pytest.mark.parametrize("seed,shuffled", [(4, False), (5, True)])
def test_ranks_equal_a_stable_sort_of_the_values(seed, shuffled):
    rng = random.Random(seed)
    rows, plain = _rows(rng, 200, shuffled)
    for kpi in ("open_incidents", "resolution_rate"):
        for lower in (True, False):
            for code in rng.sample(list(plain), 60) + ["nope"]:
                old = _old_rank(plain, code, kpi, lower)
                new = rank_of(rows, code, kpi, lower)
                assert new[0] == old[0] and (new[1] or len(plain)) == old[1], (kpi, lower, code)
    empty = UnitRows(["A", "B"], {"resolution_rate": np.array([np.nan, np.nan])})
    assert rank_of(empty, "A", "resolution_rate", False) == (None, 0)
