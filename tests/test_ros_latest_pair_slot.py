"""The size-1 drop-oldest hand-off between the synchroniser callback and the inference thread."""
import threading
import time

from distillmatch_core.ros_interface.latest_pair_slot import LatestSlot


def test_put_take_and_drop_counting():
    slot = LatestSlot()
    assert slot.take(timeout=0) is None
    assert slot.put(1) is False
    assert slot.put(2) is True  # 1 was never taken: dropped
    assert slot.put(3) is True
    assert slot.take(timeout=0) == 3  # always the newest
    assert slot.take(timeout=0) is None
    assert (slot.put_count, slot.dropped_count, slot.taken_count) == (3, 2, 1)


def test_take_waits_for_a_put_from_another_thread():
    slot = LatestSlot()
    threading.Timer(0.05, slot.put, args=("pair",)).start()
    started = time.monotonic()
    assert slot.take(timeout=2.0) == "pair"
    assert time.monotonic() - started < 1.5


def test_close_wakes_a_waiting_consumer_and_ignores_later_puts():
    slot = LatestSlot()
    results = []
    consumer = threading.Thread(target=lambda: results.append(slot.take(timeout=5.0)))
    consumer.start()
    time.sleep(0.05)
    slot.close()
    consumer.join(timeout=2.0)
    assert not consumer.is_alive() and results == [None]
    assert slot.put("late") is False and slot.take(timeout=0) is None and slot.closed


def test_fast_producer_slow_consumer_gets_newest_and_counts_every_drop():
    slot = LatestSlot()
    produced = 400
    consumed = []
    done = threading.Event()

    def consumer():
        while True:
            item = slot.take(timeout=0.01)
            if item is None:
                if done.is_set():
                    return  # anything put after this check is drained below
                continue
            consumed.append(item)
            time.sleep(0.005)  # a slow matcher

    def producer():
        for i in range(produced):
            slot.put(i)
            time.sleep(0.0002)  # a fast camera
        done.set()

    threads = [threading.Thread(target=consumer), threading.Thread(target=producer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20.0)
    while (item := slot.take(timeout=0)) is not None:
        consumed.append(item)
    assert consumed == sorted(consumed)  # never an older item after a newer one
    assert consumed[-1] == produced - 1  # the newest item always reaches the consumer
    assert len(consumed) < produced  # the consumer could not keep up...
    assert slot.dropped_count == produced - len(consumed)  # ...and every skipped item was counted
    assert slot.put_count == produced and slot.taken_count == len(consumed)
