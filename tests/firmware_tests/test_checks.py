"""The transport-independent helpers of the kit. The shared checks themselves run over real transports in
test_kit.py (IP) and test_ble.py (BLE), where the silent variants prove the round trip's notification rule."""

from __future__ import annotations

from qilu_hub.firmware_tests.checks import plans_for, starting_with_a_change, state_problems

LOCK = {"key": "lock", "name": "Lock", "capabilities": ["lock"]}


def test_plans_start_with_a_command_that_changes_the_state() -> None:
    plans = plans_for(["lock"])
    assert [p.command for p in starting_with_a_change(plans, {"state": "locked"})] == ["unlock", "lock"]
    assert [p.command for p in starting_with_a_change(plans, {"state": "unlocked"})] == ["lock", "unlock"]
    assert starting_with_a_change([], {}) == []


def test_state_problems_name_each_entity() -> None:
    description = {"entities": [LOCK, {"key": "battery", "name": "Battery", "capabilities": ["battery"]}]}
    assert state_problems(description, {"entities": {"lock": {"state": "locked"}, "battery": {"state": 50.0}}}) == []
    problems = state_problems(description, {"entities": {"lock": {"state": "ajar"}}})
    assert any(p.startswith("lock: state 'ajar'") for p in problems)
    assert "battery: missing from the state" in problems
    assert state_problems(description, [1, 2]) == ["state has no entities object"]
