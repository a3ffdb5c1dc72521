"""The retry budget: capped, jittered backoff within one deadline, on a simulated clock (no sleeping)."""

from __future__ import annotations

import random

import pytest

from presencesync.graph import Deadline, DeadlineExceededError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("consistent_at", [0.1, 0.7, 2.0, 5.5, 13.0, 40.0, 170.0])
def test_a_wait_for_the_directory_ends_within_a_second_of_its_consistency(consistent_at):
    for seed in range(20):  # the jitter varies the delays
        random.seed(seed)
        clock = Clock()
        deadline = Deadline(300, clock=clock, sleep=clock.sleep)
        attempt = 0
        while clock() < consistent_at:
            deadline.pause(attempt, "waiting for the directory")
            attempt += 1
        assert clock() - consistent_at <= 1.0


def test_the_deadline_bounds_every_wait_and_retry_after_is_honoured():
    clock = Clock()
    deadline = Deadline(10, clock=clock, sleep=clock.sleep)
    deadline.pause(0, "throttled", retry_after=4)
    assert clock() == 4
    with pytest.raises(DeadlineExceededError, match="throttled, still after 10 s"):
        deadline.pause(1, "throttled", retry_after=7)
    assert clock() == 4  # not slept past the deadline
