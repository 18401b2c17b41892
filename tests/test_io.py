"""fretlab.io's thread map: the ONNX engine's batches run side by side but come back in order."""

from __future__ import annotations

import threading
import time

import pytest

from fretlab.io import threaded_map


def test_results_come_back_in_input_order_even_when_later_items_finish_first():
    def slow_first(i: int) -> int:
        time.sleep(0.02 if i % 3 == 0 else 0.0)
        return i * i

    assert list(threaded_map(slow_first, range(20), workers=3)) == [i * i for i in range(20)]


def test_items_are_read_lazily_with_at_most_two_per_worker_in_flight():
    read, active, peak, lock = [], [0], [0], threading.Lock()

    def items():
        for i in range(30):
            read.append(i)
            yield i

    def work(i: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.002)
        with lock:
            active[0] -= 1
        return i

    results = threaded_map(work, items(), workers=2)
    first = next(results)
    assert first == 0 and len(read) <= 4  # 2 workers: 4 submitted before the first result is handed out
    assert list(results) == list(range(1, 30))
    assert peak[0] <= 2


def test_one_worker_runs_in_the_calling_thread_and_errors_propagate():
    callers = set()

    def work(i: int) -> int:
        callers.add(threading.get_ident())
        if i == 3:
            raise ValueError("bad batch 3")
        return i

    with pytest.raises(ValueError, match="bad batch 3"):
        list(threaded_map(work, range(5), workers=1))
    assert callers == {threading.get_ident()}
    with pytest.raises(ValueError, match="bad batch 3"):
        list(threaded_map(work, range(5), workers=2))
