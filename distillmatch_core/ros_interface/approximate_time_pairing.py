"""The RGB/thermal pairing policy, identical for the live node and offline bag evaluation.

The node pairs frames with rclpy's ``message_filters.ApproximateTimeSynchronizer``
(the Python implementation, whose policy differs from the C++ one). Offline
evaluation must pair a recorded bag exactly as the node would have paired the
live stream, so this module re-implements that policy without ROS. For two
inputs it is:

1. Messages are handled one at a time in arrival order (in a bag: the order
   of the recorded receive timestamps).
2. Each input keeps a queue of waiting messages keyed by header stamp; a
   second message with the same stamp on the same input replaces the first.
   When a queue holds more than ``queue_size`` messages, the one with the
   smallest stamp is discarded (possibly the message that just arrived).
3. An arriving message is paired with the waiting message of the other input
   whose stamp is closest to its own, provided ``|t_rgb - t_thermal| < slop``
   (strictly; ``slop`` in seconds, truncated to whole nanoseconds as
   ``rclpy.duration.Duration(seconds=slop)`` does). Ties go to the message
   that has waited longest. Both paired messages leave their queues.
4. A message that finds no partner waits; it may be paired later by a
   message arriving on the other input, or be discarded by rule 2. It is
   never paired twice.

The policy is greedy: a pair is emitted as soon as the later message arrives,
even if an even closer partner would arrive afterwards. The live node then
may drop pairs while its matcher is busy (``latest_pair_slot``); offline
evaluation processes every pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Generic, Iterable, List, Optional, Tuple, TypeVar

T = TypeVar("T")

RGB_INPUT = 0
THERMAL_INPUT = 1


@dataclass(frozen=True)
class PairingPolicy:
    slop_s: float = 0.05
    queue_size: int = 10

    def __post_init__(self) -> None:
        if not self.slop_s > 0:
            raise ValueError(f"slop must be > 0 seconds, got {self.slop_s}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {self.queue_size}")

    @property
    def slop_ns(self) -> int:
        return int(self.slop_s * 1e9)


class ApproximateTimePairer(Generic[T]):
    """Two-input approximate-time pairing; ``add`` returns (rgb_item, thermal_item) when a pair forms."""

    def __init__(self, policy: PairingPolicy = PairingPolicy()):
        self.policy = policy
        # Plain dicts: insertion order is the waiting order used to break ties.
        self._queues: Tuple[Dict[int, T], Dict[int, T]] = ({}, {})

    def add(self, input_index: int, stamp_ns: int, item: T) -> Optional[Tuple[T, T]]:
        if input_index not in (RGB_INPUT, THERMAL_INPUT):
            raise ValueError(f"input_index must be {RGB_INPUT} (rgb) or {THERMAL_INPUT} (thermal)")
        own, other = self._queues[input_index], self._queues[1 - input_index]
        own[stamp_ns] = item
        while len(own) > self.policy.queue_size:
            del own[min(own)]
        if stamp_ns not in own:
            return None  # evicted on arrival: older than everything in a full queue
        best_stamp, best_delta = None, None
        for waiting_stamp in other:
            delta = abs(waiting_stamp - stamp_ns)
            if delta < self.policy.slop_ns and (best_delta is None or delta < best_delta):
                best_stamp, best_delta = waiting_stamp, delta
        if best_stamp is None:
            return None
        partner = other.pop(best_stamp)
        mine = own.pop(stamp_ns)
        return (mine, partner) if input_index == RGB_INPUT else (partner, mine)

    def waiting(self, input_index: int) -> List[int]:
        """Stamps (ns) still waiting on one input, in waiting order."""
        return list(self._queues[input_index])


@dataclass(frozen=True)
class StampedArrival(Generic[T]):
    input_index: int  # RGB_INPUT or THERMAL_INPUT
    stamp_ns: int  # header stamp
    item: T


def pair_arrivals(arrivals: Iterable[StampedArrival[T]],
                  policy: PairingPolicy = PairingPolicy()) -> List[Tuple[T, T]]:
    """Offline pairing of a whole recording, given in arrival order -> [(rgb_item, thermal_item)] in emission order."""
    pairer: ApproximateTimePairer[T] = ApproximateTimePairer(policy)
    pairs = []
    for arrival in arrivals:
        pair = pairer.add(arrival.input_index, arrival.stamp_ns, arrival.item)
        if pair is not None:
            pairs.append(pair)
    return pairs
