"""The incident state machine (dashboard.store.lifecycle), against the table in docs/data-model.md."""
from __future__ import annotations

import itertools

import pytest

from dashboard.store import lifecycle as lc

# The doc's table, written out independently of the module under test.
DOC_STEPS = {
    ("reported", "onsite_handled"): "onsite",
    ("reported", "routed"): "town",
    ("onsite_handled", "verified"): None,
    ("routed", "in_progress"): None,
    ("routed", "escalated"): "district",
    ("escalated", "assigned"): None,
    ("assigned", "in_progress"): None,
    ("in_progress", "handled"): None,
    ("handled", "verified"): None,
    ("verified", "closed"): None,
}
DOC_STATES = ["reported", "onsite_handled", "routed", "in_progress", "handled", "escalated", "assigned",
              "verified", "closed"]
LEVEL_RANK = {"onsite": 0, "town": 1, "district": 2}


def test_states_and_names():
    assert list(lc.STATES) == DOC_STATES
    assert lc.STATES["reported"][0] == "已上报" and lc.STATES["closed"][0] == "已结案"
    assert lc.STATES["escalated"][0] == "上报区信息中心" and lc.STATES["assigned"][0] == "已交办"
    assert set(lc.OPEN_STATES) == set(DOC_STATES) - {"closed"}
    assert set(lc.ALLOWED_STEPS) == set(DOC_STEPS)


@pytest.mark.parametrize("frm,to", list(itertools.product(DOC_STATES, DOC_STATES)))
@pytest.mark.parametrize("level", ["onsite", "town", "district"])
def test_every_step(frm, to, level):
    role = "grid_worker"
    dept = "emergency" if to == "assigned" else None
    if (frm, to) in DOC_STEPS:
        step = lc.apply(frm, level, to, actor_role=role, department=dept)
        assert step.to_status == to and step.from_status == frm
        raised = DOC_STEPS[(frm, to)]
        expected = level if raised is None or LEVEL_RANK[raised] <= LEVEL_RANK[level] else raised
        assert step.level == expected
        assert to in lc.next_states(frm, level)
    else:
        with pytest.raises(lc.TransitionError) as ei:
            lc.apply(frm, level, to, actor_role=role, department=dept)
        err = ei.value
        assert err.reason == "invalid_transition" and err.field == "to"
        assert err.current == frm
        assert set(err.allowed) == {t for (f, t) in DOC_STEPS if f == frm}
        assert frm in err.message  # names the current state
        for allowed in err.allowed:
            assert allowed in err.message  # and the allowed ones
        assert to not in lc.next_states(frm, level)


@pytest.mark.parametrize("frm", ["handled", "onsite_handled"])
@pytest.mark.parametrize("role", [r for r in lc.ROLES if r != "grid_worker"])
def test_only_grid_worker_verifies(frm, role):
    with pytest.raises(lc.TransitionError) as ei:
        lc.apply(frm, "town", "verified", actor_role=role)
    assert ei.value.reason == "role_not_allowed" and ei.value.field == "actor_role"
    assert lc.apply(frm, "town", "verified", actor_role="grid_worker").to_status == "verified"


def test_assign_needs_department_and_keeps_it():
    with pytest.raises(lc.TransitionError) as ei:
        lc.apply("escalated", "district", "assigned", actor_role="district")
    assert ei.value.reason == "department_required" and ei.value.field == "department"
    step = lc.apply("escalated", "district", "assigned", actor_role="district", department="police")
    assert step.department == "police"
    nxt = lc.apply("assigned", "district", "in_progress", actor_role="department", current_department="police")
    assert nxt.department == "police" and nxt.level == "district"


def test_level_never_goes_down_along_the_longest_path():
    status, level = "reported", "onsite"
    path = ["routed", "escalated", "assigned", "in_progress", "handled", "verified", "closed"]
    seen = []
    for to in path:
        step = lc.apply(status, level, to, actor_role="grid_worker", department="police")
        status, level = step.to_status, step.level
        seen.append(level)
    assert seen == ["town", "district", "district", "district", "district", "district", "district"]


def test_unknown_inputs():
    with pytest.raises(KeyError):
        lc.next_states("nonsense")
    with pytest.raises(KeyError):
        lc.next_states("reported", "galaxy")
    with pytest.raises(lc.TransitionError):
        lc.apply("reported", "onsite", "teleported", actor_role="grid_worker")
    with pytest.raises(lc.TransitionError) as ei:
        lc.apply("reported", "onsite", "routed", actor_role="mayor")
    assert ei.value.field == "actor_role"
    assert lc.next_states("closed") == ()
