"""The approximate-time pairing policy on hand-made stamp sequences (message_filters' rclpy semantics)."""
import pytest

from distillmatch_core.ros_interface.approximate_time_pairing import (RGB_INPUT, THERMAL_INPUT,
                                                                      ApproximateTimePairer, PairingPolicy,
                                                                      StampedArrival, pair_arrivals)

MS = 1_000_000
R, T = RGB_INPUT, THERMAL_INPUT


def run(events, slop_s=0.01, queue_size=10):
    """events: (input, stamp_ms, label) in arrival order -> [(rgb_label, thermal_label)]."""
    arrivals = [StampedArrival(i, int(round(stamp_ms * MS)), label) for i, stamp_ms, label in events]
    return pair_arrivals(arrivals, PairingPolicy(slop_s=slop_s, queue_size=queue_size))


def test_identical_stamps_pair_in_order():
    events = [(R, 0, "r0"), (T, 0, "t0"), (R, 100, "r1"), (T, 100, "t1")]
    assert run(events) == [("r0", "t0"), ("r1", "t1")]


def test_arrival_order_does_not_matter_for_the_result_order_of_the_tuple():
    assert run([(T, 0, "t0"), (R, 0, "r0")]) == [("r0", "t0")]


def test_slop_is_strict():
    assert run([(R, 0, "r"), (T, 10, "t")], slop_s=0.010) == []  # |dt| == slop: not a pair
    assert run([(R, 0, "r"), (T, 9.999999, "t")], slop_s=0.010) == [("r", "t")]
    assert run([(R, 0, "r"), (T, -9.9, "t")], slop_s=0.010) == [("r", "t")]


def test_closest_waiting_partner_wins():
    events = [(T, 96, "t_far"), (T, 103, "t_near"), (R, 100, "r")]
    assert run(events, slop_s=0.02) == [("r", "t_near")]


def test_greedy_pairs_on_arrival_even_if_a_closer_partner_comes_later():
    events = [(R, 100, "r"), (T, 108, "t_ok"), (T, 100, "t_exact")]
    assert run(events, slop_s=0.01) == [("r", "t_ok")]


def test_tie_goes_to_the_message_that_waited_longest():
    events = [(T, 105, "t_later_stamp_first"), (T, 95, "t_earlier_stamp_second"), (R, 100, "r")]
    assert run(events, slop_s=0.01) == [("r", "t_later_stamp_first")]


def test_each_message_is_paired_at_most_once():
    events = [(R, 0, "r0"), (T, 1, "t0"), (R, 2, "r1")]
    assert run(events, slop_s=0.01) == [("r0", "t0")]


def test_missing_thermal_frame_with_jitter():
    # 10 Hz, thermal jittered by up to +-3 ms, thermal frame 2 lost.
    jitter = [1.5, -2.0, None, 2.9, -0.7]
    events = []
    for k, j in enumerate(jitter):
        events.append((R, 100 * k, f"r{k}"))
        if j is not None:
            events.append((T, 100 * k + j, f"t{k}"))
    assert run(events, slop_s=0.01) == [("r0", "t0"), ("r1", "t1"), ("r3", "t3"), ("r4", "t4")]


def test_late_thermal_still_pairs_with_waiting_rgb():
    # Thermal arrives after the next RGB frame (transport delay), stamps still match.
    events = [(R, 0, "r0"), (R, 100, "r1"), (T, 1, "t0"), (T, 101, "t1")]
    assert run(events, slop_s=0.01) == [("r0", "t0"), ("r1", "t1")]


def test_queue_overflow_discards_smallest_stamp():
    events = [(R, 0, "r0"), (R, 100, "r1"), (R, 200, "r2"), (T, 0, "t0"), (T, 200, "t2")]
    assert run(events, slop_s=0.01, queue_size=2) == [("r2", "t2")]  # r0 was evicted before t0 came


def test_message_older_than_a_full_queue_is_dropped_on_arrival():
    pairer = ApproximateTimePairer(PairingPolicy(slop_s=0.01, queue_size=2))
    assert pairer.add(T, 50 * MS, "t50") is None
    for stamp in (100, 200):
        assert pairer.add(R, stamp * MS, f"r{stamp}") is None
    assert pairer.add(R, 49 * MS, "r49") is None  # evicted at once, so it cannot pair with t50
    assert pairer.waiting(R) == [100 * MS, 200 * MS] and pairer.waiting(T) == [50 * MS]


def test_same_stamp_on_one_input_replaces_the_waiting_message():
    assert run([(R, 0, "r_first"), (R, 0, "r_second"), (T, 0, "t")]) == [("r_second", "t")]


def test_slop_truncates_to_nanoseconds_like_rclpy_duration():
    assert PairingPolicy(slop_s=0.05).slop_ns == int(0.05 * 1e9)


@pytest.mark.parametrize("kwargs", [{"slop_s": 0.0}, {"slop_s": -1.0}, {"queue_size": 0}])
def test_invalid_policy(kwargs):
    with pytest.raises(ValueError):
        PairingPolicy(**kwargs)


def test_invalid_input_index():
    with pytest.raises(ValueError):
        ApproximateTimePairer().add(2, 0, "x")
