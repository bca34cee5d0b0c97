"""Which Bot API failures are worth another try, and how long to wait before it.

Telegram answers 429 with `retry_after` when a bot sends too fast: wait exactly that.
5xx answers, timeouts and lost connections are passing: back off exponentially (with
jitter, up to `max_backoff`). A refusal (403: the customer blocked the bot; 400: a chat
that does not exist, a message Telegram will never take; a file that is gone) will
not change by waiting.
"""

from __future__ import annotations

import datetime as dt
import random
import warnings

from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter

__all__ = ["backoff", "is_permanent", "retry_after"]


def retry_after(exc: BaseException) -> float | None:
    """Seconds Telegram asked us to wait (a 429), else None."""
    if not isinstance(exc, RetryAfter):
        return None
    with warnings.catch_warnings():  # an int today, a timedelta in the next major version
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def is_permanent(exc: BaseException) -> bool:
    """A refusal that waiting will not change."""
    return isinstance(exc, Forbidden | BadRequest | InvalidToken | FileNotFoundError)


def backoff(attempt: int, max_backoff: float) -> float:
    """Seconds before attempt number `attempt + 1`: 0.5, 1, 2, 4 ... up to `max_backoff`,
    each with up to 25% jitter so that many retries do not fall on the same instant."""
    base = min(max_backoff, 0.5 * 2 ** max(0, attempt - 1))
    return base * (1 + random.random() / 4)
