"""/health's answer while `st follow` starts, runs and keeps gold.token_flows live."""

from __future__ import annotations

from smarttrader_cli.follow.state import FollowState


def test_health_says_starting_with_a_reason_until_every_part_is_done() -> None:
    state = FollowState()
    healthy, body = state.health(60.0)
    assert not healthy and body["status"] == "starting" and not body["ready"]
    assert body["reason"] == "loading the ranked wallets and prices"
    state.wait_for("stream", "catching up with the stream")
    state.wait_for("setup", "evaluating the bronze events after the alerts' cursor")
    state.done("setup")
    healthy, body = state.health(60.0)
    assert not healthy and body["reason"] == "catching up with the stream"
    state.done("stream")
    healthy, body = state.health(60.0)
    assert healthy and body["status"] == "ok" and body["ready"] and "reason" not in body


def test_a_stall_is_only_judged_once_ready() -> None:
    state = FollowState()
    state.started -= 120  # up for two minutes, nothing committed, the stream not empty
    state.lag = {0: 5}
    assert state.health(60.0)[1]["status"] == "starting"
    state.done("setup")
    healthy, body = state.health(60.0)
    assert not healthy and body["status"] == "stalled"


def test_live_flows_delays_are_summarised() -> None:
    state = FollowState()
    assert "flows_delay_seconds" not in state.health(60.0)[1]
    for delay in (0.5, 2.0, 1.0):
        state.flows_committed(delay)
    state.flows_committed(None)  # a commit of legs whose receipt is unknown
    body = state.health(60.0)[1]
    assert body["flows_delay_seconds"] == {"p50": 1.0, "max": 2.0, "commits": 3}
    assert state.count("st_follow_flows_live_commits_total") == 4
