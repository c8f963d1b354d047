"""Client-side pacing under an API's requests-per-minute and tokens-per-minute limits.

Waiting before a request is cheaper than a 429 and its back-off: the limiter keeps the last
minute of requests and holds the next one until it fits both budgets.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Sliding one-minute window over requests and tokens; ``None`` means no limit."""

    def __init__(
        self,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.window_seconds = window_seconds
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[tuple[float, int]] = deque()  # (time, tokens) of requests in the window
        self._window_tokens = 0
        self._lock = threading.Lock()

    def acquire(self, tokens: int) -> float:
        """Block until a request of ``tokens`` fits both budgets, record it; seconds waited."""
        if self.tokens_per_minute is not None and tokens > self.tokens_per_minute:
            raise ValueError(
                f"one request of {tokens} tokens exceeds the limit of {self.tokens_per_minute} tokens per "
                "minute; lower the batch size or raise AI_ASSETS_OPENAI_TOKENS_PER_MINUTE"
            )
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                self._forget_before(now - self.window_seconds)
                delay = self._delay_until_fits(tokens, now)
                if delay <= 0:
                    self._sent.append((now, tokens))
                    self._window_tokens += tokens
                    return waited
                self._sleep(delay)
                waited += delay

    def _forget_before(self, cutoff: float) -> None:
        while self._sent and self._sent[0][0] <= cutoff:
            self._window_tokens -= self._sent.popleft()[1]

    def _delay_until_fits(self, tokens: int, now: float) -> float:
        """How long until enough of the window has expired for this request to fit."""
        delay = 0.0
        if self.requests_per_minute is not None and len(self._sent) >= self.requests_per_minute:
            oldest_to_expire = self._sent[len(self._sent) - self.requests_per_minute][0]
            delay = max(delay, oldest_to_expire + self.window_seconds - now)
        if self.tokens_per_minute is not None and self._window_tokens + tokens > self.tokens_per_minute:
            excess = self._window_tokens + tokens - self.tokens_per_minute
            for sent_at, sent_tokens in self._sent:
                excess -= sent_tokens
                if excess <= 0:
                    delay = max(delay, sent_at + self.window_seconds - now)
                    break
        return delay
