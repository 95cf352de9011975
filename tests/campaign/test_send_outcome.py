"""What a send's outcome says when it ends: complete or not, and the next steps."""

from __future__ import annotations

from crisiscomms.campaign.send import SendOutcome, next_steps
from crisiscomms.dispatch import DispatchResult


def outcome(other_senders: int = 0, **states: int) -> SendOutcome:
    counts = {("sms", "sv", state): n for state, n in states.items()}
    return SendOutcome("org/outage", "p" * 16, counts, DispatchResult(), other_senders=other_senders)


def test_rows_left_pending_make_a_send_incomplete_with_the_resume_command() -> None:
    left = outcome(accepted=10, pending=5)
    assert not left.complete
    assert ("5 messages were not sent yet. Resume with: crisiscomms send --plan pppppppppppppppp (or run the same "
            "command again).") in next_steps(left)


def test_rows_still_held_by_other_joined_senders_are_theirs_to_settle() -> None:
    joined = outcome(other_senders=1, accepted=10, pending=5, in_flight=2)
    assert joined.complete
    assert joined.as_dict()["other_senders"] == 1
    steps = next_steps(joined)
    assert ("1 other sender is still sending this campaign; this sender's part is done. The whole campaign: "
            "crisiscomms report --campaign org/outage") in steps
    assert not any("not sent yet" in step for step in steps)
    assert not outcome(other_senders=2, accepted=10, uncertain=1).complete  # uncertain rows still need a resume
