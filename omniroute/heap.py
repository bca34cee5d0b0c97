"""How a long-running server keeps the garbage collector's pauses short.

CPython's full collection scans every container the collector tracks. In `omniroute
serve` at 200 chats a second that was ~120k-210k objects (modules, agents' sockets,
live interactions, recent conversations, the timers of ended ones), one pass cost
120-180 ms of CPU and came every few seconds: each stopped the event loop, and every
offer in flight waited (`python -m bench serve` shows the pauses per generation).
Full passes were triggered by the old generation growing by a quarter, and what made it
grow was mostly request objects caught in flight by young passes, not lasting garbage.
Three things keep full passes short and rare:

- records created per contact that can never be part of a reference cycle are msgspec
  Structs declared with `gc=False` (events, interactions, messages, contacts): the
  collector never sees them (tests/test_heap.py checks it);
- what start-up builds (modules, config, plugins, routes, the state restored from the
  store) lives as long as the process: `settle()` collects once and moves it to the
  permanent generation (`gc.freeze()`), so no later pass scans it again;
- a full pass is considered only after `OLD_THRESHOLD` passes of the middle generation
  instead of 10: about once a minute at that rate rather than every few seconds. Young
  passes keep their default: making them rarer made each one scan more (at 5,000
  allocations a middle pass took 40 ms of CPU, at 20,000 over 150 ms).
"""

from __future__ import annotations

import gc

__all__ = ["OLD_THRESHOLD", "settle"]

#: Middle-generation collections before a full one is considered (CPython's default: 10).
OLD_THRESHOLD = 100


def settle() -> None:
    """Call once start-up is over, before serving: collect what start-up left behind,
    freeze what it built, and space out full collections."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, OLD_THRESHOLD)
