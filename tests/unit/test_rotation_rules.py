"""Rotation rules: the completion order (replay → peer → pending → unchanged), key parsing and the
duration estimate."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from plexsphere.domain import rotation as rules
from plexsphere.domain.errors import ProblemError

OLD = bytes(range(1, 33))
NEW = bytes(range(2, 34))
ROTATION = uuid.UUID("01900000-0000-7000-8000-000000000001")
PREVIOUS = uuid.UUID("01900000-0000-7000-8000-000000000002")
RECEIPT = rules.Receipt(PREVIOUS, "psk-software-v1", 1)


def state(**overrides) -> rules.CompletionState:
    values = dict(has_live_peer=True, pending_rotation_id=ROTATION, current_public_key=OLD,
                  last_completed_key=None, last_completed_receipt=None)
    values.update(overrides)
    return rules.CompletionState(**values)


def code_of(fn) -> tuple[int, str]:
    with pytest.raises(ProblemError) as info:
        fn()
    return info.value.status, info.value.code


def test_a_pending_rotation_with_a_new_key_proceeds():
    assert rules.decide_completion(state(), NEW) == ROTATION


def test_resubmitting_the_installed_key_returns_the_original_receipt():
    replay = state(pending_rotation_id=None, current_public_key=NEW, last_completed_key=NEW,
                   last_completed_receipt=RECEIPT)
    assert rules.decide_completion(replay, NEW) == RECEIPT


def test_replay_wins_over_a_missing_peer():
    replay = state(has_live_peer=False, pending_rotation_id=None, current_public_key=NEW,
                   last_completed_key=NEW, last_completed_receipt=RECEIPT)
    assert rules.decide_completion(replay, NEW) == RECEIPT


def test_a_new_pending_rotation_is_not_a_replay_of_the_previous_one():
    # After a completed rotation a new trigger is pending: re-sending the installed key is "unchanged".
    again = state(current_public_key=NEW, last_completed_key=NEW, last_completed_receipt=RECEIPT)
    assert code_of(lambda: rules.decide_completion(again, NEW)) == (422, "keys_rotate_public_key_unchanged")


def test_no_live_peer_is_404_before_the_pending_check():
    orphan = state(has_live_peer=False, pending_rotation_id=None)
    assert code_of(lambda: rules.decide_completion(orphan, NEW)) == (404, "keys_rotate_peer_not_found")


def test_no_pending_rotation_is_409_even_with_the_current_key():
    idle = state(pending_rotation_id=None)
    assert code_of(lambda: rules.decide_completion(idle, OLD)) == (409, "keys_rotate_no_pending_rotation")


def test_a_different_key_after_completion_is_409_not_a_replay():
    done = state(pending_rotation_id=None, current_public_key=NEW, last_completed_key=NEW,
                 last_completed_receipt=RECEIPT)
    assert code_of(lambda: rules.decide_completion(done, OLD)) == (409, "keys_rotate_no_pending_rotation")


def test_submitting_the_current_key_is_unchanged():
    assert code_of(lambda: rules.decide_completion(state(), OLD)) == (422, "keys_rotate_public_key_unchanged")


@pytest.mark.parametrize("text", [
    "", "not base64", base64.b64encode(bytes(32)).decode(), base64.b64encode(bytes(31) + b"\x01").decode()[:-1],
    base64.b64encode(b"\x01" * 16).decode(), 42, None, base64.urlsafe_b64encode(b"\xff" * 32).decode(),
])
def test_invalid_public_keys_are_422(text):
    assert code_of(lambda: rules.parse_new_public_key(text)) == (422, "keys_rotate_public_key_invalid")


def test_a_wireguard_key_parses_to_its_32_bytes():
    assert rules.parse_new_public_key(base64.b64encode(NEW).decode()) == NEW


@pytest.mark.parametrize(("peers", "seconds"), [(0, 0), (1, 0), (49, 0), (50, 1), (1000, 20)])
def test_duration_estimate_is_zero_for_small_meshes_and_grows_linearly(peers, seconds):
    assert rules.estimate_duration_seconds(peers) == seconds


def test_key_age_is_off_without_a_max_age():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = now - timedelta(days=3650)
    assert not rules.key_age_exceeded(old, None, now)
    assert not rules.key_age_exceeded(old, 0, now)


def test_key_age_is_due_from_the_max_age_on():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert not rules.key_age_exceeded(now - timedelta(seconds=59), 60, now)
    assert rules.key_age_exceeded(now - timedelta(seconds=60), 60, now)
