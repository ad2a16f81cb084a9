"""The closed loop of an incident (案事件闭环) as a pure state machine — see docs/data-model.md "Lifecycle".

    reported 已上报 ─┬─> onsite_handled 现场处置 ───────────────────────────────┐
                     └─> routed 已流转 ─┬─> in_progress 处置中 ─> handled 处置完毕 ─┴─> verified 已核实 ─> closed 已结案
                                        └─> escalated 上报区信息中心 ─> assigned 已交办 ─> in_progress

``level`` is the highest level the case reached: ``onsite`` (片区现场) → ``town`` (镇街) → ``district``
(区信息中心); it never goes down. Verification happens on site, so only an actor with the ``grid_worker``
role may verify. Assigning (交办) needs a department. No I/O here.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

STATES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "reported": ("已上报", "reported"),
        "onsite_handled": ("现场处置", "handled on site"),
        "routed": ("已流转", "routed"),
        "in_progress": ("处置中", "in progress"),
        "handled": ("处置完毕", "handled"),
        "escalated": ("上报区信息中心", "escalated to the district information centre"),
        "assigned": ("已交办", "assigned to a department"),
        "verified": ("已核实", "verified on site"),
        "closed": ("已结案", "closed"),
    }
)
OPEN_STATES: tuple[str, ...] = tuple(s for s in STATES if s != "closed")
INITIAL_STATE = "reported"

LEVELS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {"onsite": ("片区现场", "on site (zone)"), "town": ("镇街", "town"), "district": ("区信息中心", "district")}
)
_LEVEL_RANK = {"onsite": 0, "town": 1, "district": 2}
INITIAL_LEVEL = "onsite"

ROLES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "grid_worker": ("网格员", "grid worker"),
        "station": ("片区工作站", "zone workstation"),
        "town": ("镇街", "town / sub-district"),
        "district": ("区信息中心", "district information centre"),
        "department": ("区级部门", "district department"),
        "duty_officer": ("值班员", "duty officer"),
    }
)
VERIFIER_ROLE = "grid_worker"

# (from, to) -> level the step raises the case to (None: unchanged)
_STEPS: Mapping[tuple[str, str], str | None] = MappingProxyType(
    {
        ("reported", "onsite_handled"): None,
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
)
ALLOWED_STEPS: tuple[tuple[str, str], ...] = tuple(_STEPS)


class TransitionError(ValueError):
    """A refused step. ``reason`` is ``invalid_transition``, ``role_not_allowed`` or ``department_required``."""

    def __init__(self, reason: str, message: str, field: str, current: str, allowed: tuple[str, ...]):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field
        self.current = current
        self.allowed = allowed


@dataclass(frozen=True)
class Step:
    from_status: str
    to_status: str
    level: str
    department: str | None


def is_open(status: str) -> bool:
    return status != "closed"


def raise_level(level: str, new: str | None) -> str:
    if new is None:
        return level
    return new if _LEVEL_RANK[new] > _LEVEL_RANK[level] else level


def next_states(status: str, level: str | None = None) -> tuple[str, ...]:
    """The states an incident in ``status`` (at ``level``) may move to, in a stable order.

    The allowed steps depend on the status only; ``level`` is checked for validity so a caller that mixes
    them up is told, and is kept in the signature because the UI asks "what next" with both.
    """
    if status not in STATES:
        raise KeyError(f"unknown status {status!r}")
    if level is not None and level not in LEVELS:
        raise KeyError(f"unknown level {level!r}")
    return tuple(to for (frm, to) in _STEPS if frm == status)


def _describe(status: str, allowed: tuple[str, ...]) -> str:
    if allowed:
        nxt = ", ".join(f"{s} ({STATES[s][0]})" for s in allowed)
    else:
        nxt = "none (the case is closed)"
    return f"current state is {status} ({STATES[status][0]}); allowed next states: {nxt}"


def apply(
    status: str,
    level: str,
    to: str,
    *,
    actor_role: str,
    department: str | None = None,
    current_department: str | None = None,
) -> Step:
    """Check one step and say what the incident becomes. Raises :class:`TransitionError` if refused."""
    allowed = next_states(status, level)
    if to not in STATES:
        raise TransitionError("invalid_transition", f"unknown state {to!r}; {_describe(status, allowed)}",
                              "to", status, allowed)
    if actor_role not in ROLES:
        raise TransitionError("role_not_allowed", f"unknown actor_role {actor_role!r}; one of {', '.join(ROLES)}",
                              "actor_role", status, allowed)
    if (status, to) not in _STEPS:
        raise TransitionError("invalid_transition", f"cannot move from {status} to {to}: {_describe(status, allowed)}",
                              "to", status, allowed)
    if to == "verified" and actor_role != VERIFIER_ROLE:
        raise TransitionError(
            "role_not_allowed",
            f"only a grid worker (actor_role={VERIFIER_ROLE}) verifies on site; got actor_role={actor_role}",
            "actor_role", status, allowed)
    if to == "assigned" and not department:
        raise TransitionError("department_required", "assigning (交办) needs a department", "department",
                              status, allowed)
    new_department = department if department else current_department
    return Step(status, to, raise_level(level, _STEPS[(status, to)]), new_department)
