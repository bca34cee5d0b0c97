"""The router's indexes on their own: a bucket's line keeps line order whatever the
order entries come in, and drops stale ones."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from omniroute.model import Interaction, Queue
from omniroute.router.state import Bucket, QueueRuntime, Waiting
from omniroute.router.strategies import LongestIdle


def waiting(n: int) -> Waiting:
    queue = QueueRuntime(Queue(name="q"), LongestIdle(), None)
    return Waiting(Interaction(id=f"i{n}", channel="voice", queue="q"), queue, n)


@given(st.lists(st.tuples(st.integers(0, 20), st.booleans()), max_size=60), st.integers(0, 9))
def test_a_bucket_serves_in_line_order(keys: list[tuple[int, bool]], seed: int) -> None:
    bucket = Bucket(QueueRuntime(Queue(name="q"), LongestIdle(), None), "voice", {})
    live = []
    for n, (key, stale) in enumerate(keys):
        w = waiting(n)
        w.order_key = float(key)  # its place in line: (order_key, seq)
        bucket.push(w, w.version)
        if stale:
            w.version += 1  # offered meanwhile: its entry no longer counts
        else:
            live.append((float(key), n, w))
    live.sort(key=lambda x: (x[0], x[1]))
    served = []
    declined = set()
    rng = random.Random(seed)
    while (w := bucket.head()) is not None:
        if w.seq not in declined and rng.random() < 0.3:  # back to its place, as a decline
            declined.add(w.seq)
            w.version += 1
            bucket.push(w, w.version)
            assert bucket.head() is w
            continue
        served.append(w.seq)
        w.version += 1  # offered: leaves the line
    assert served == [n for _, n, _ in live]
    while bucket.pop() is not None:  # only stale entries are left
        pass
    assert not bucket.tail and not bucket.tail_versions and not bucket.heap
