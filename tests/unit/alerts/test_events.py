import hashlib
import hmac

from alerts.events import EVENTS, event_of, sign, slack_body


def test_event_of__actions_and_objects() -> None:
    assert event_of("experiment.start", "experiment") == "experiment.started"
    assert event_of("experiment.stop", "experiment") == "experiment.stopped"
    assert event_of("flag.state", "flag") == "flag.changed"
    assert event_of("segment.update", "segment") == "segment.changed"
    assert event_of("token.create", "token") is None
    assert {event_of(a, "x") for a in ("rollout.rollback", "rollout.pause")} == {"rollout.rolled_back"}
    assert all(event_of(a, o) in EVENTS for a, o in [("experiment.readout_failed", "experiment"),
                                                     ("change_request.open", "change_request")])


def test_sign__hmac_sha256_of_the_body() -> None:
    body = b'{"event": "flag.changed"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"


def test_slack_body__one_line_of_text() -> None:
    payload = {"environment": "production", "object": {"type": "flag", "key": "checkout"}, "action": "flag.state",
               "actor": "ana"}
    assert slack_body("flag.changed", payload) == {
        "text": "*flag.changed*: flag `checkout` in production (flag.state by ana)"}
