"""The moment counts of a past period (``aggregates._moment_stmt``: the cases open at its end, the unresolved,
overdue and late ones) find the cases closed after its end by close-lag class in ``ix_incidents_close_lag`` — on
PostgreSQL from that index alone (migration 0012: the counted columns are included), so a first read on a large
store does not visit the table's pages scattered over the history."""
from __future__ import annotations

import datetime as dt

from dashboard.store import aggregates as agg

UTC = dt.timezone.utc


def _plan(conn, stmt, params) -> str:
    compiled = stmt.compile(dialect=conn.dialect)
    values = {**compiled.params, **params}
    cur = conn.connection.dbapi_connection.cursor()
    if conn.dialect.name == "postgresql":
        # the planner on a near-empty table would read it whole; what is checked is what an index read touches
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute("EXPLAIN " + str(compiled), values)
        return "\n".join(r[0] for r in cur.fetchall())
    cur.execute("EXPLAIN QUERY PLAN " + str(compiled), [values[k] for k in compiled.positiontup])
    return "\n".join(str(r[-1]) for r in cur.fetchall())


def test_a_past_period_s_moment_counts_read_the_close_lag_index(backend, db):
    name = backend[0]
    end = dt.datetime(2020, 1, 1, tzinfo=UTC)
    stmt = agg._moment_stmt(*agg._s_shape(end, end))
    params = {**agg._s_params(end, end), "m_start": end - dt.timedelta(days=30), "m_end": end}
    with db.begin() as conn:
        plan = _plan(conn, stmt, params)
    classes = agg.MAX_LAG_CLASS + 1
    if name == "postgresql":
        assert plan.count("Index Only Scan using ix_incidents_close_lag") == classes, plan
        assert "Index Scan using ix_incidents_close_lag" not in plan, plan
    else:
        assert plan.count("USING INDEX ix_incidents_close_lag (close_lag=? AND closed_at>? AND closed_at<?)") == classes, plan
