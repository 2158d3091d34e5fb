"""The retry policy: urllib3's Retry, limited to what this API asks for, with a replaceable sleep."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Self

from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

RETRIED_STATUSES = frozenset({429, 503})
# urllib3 starts an error with the connection's repr: "HTTPConnectionPool(host=..., port=...): Read timed out."
CONNECTION_REPR = re.compile(r"^HTTPS?Connection(?:Pool)?\(.*?\): ")


class RetryPolicy(Retry):
    """Retries 429, 503 and connection failures on every method (every route of this API is safe to
    repeat), waiting what ``Retry-After`` asks or else an exponential backoff with jitter.

    ``total`` counts retries, so a request is attempted at most ``1 + total`` times. ``on_retry`` hears
    of each retry before it is made (why, and when), e.g. to tell a person why nothing happens yet.
    """

    # urllib3 would also retry a 413 that carries Retry-After; a too-large body never gets smaller.
    RETRY_AFTER_STATUS_CODES = RETRIED_STATUSES

    def __init__(
        self,
        *args: Any,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.sleep_function = sleep
        self.on_retry = on_retry

    @classmethod
    def for_api(
        cls,
        max_retries: int,
        *,
        backoff_factor: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str], None] | None = None,
    ) -> RetryPolicy:
        return cls(
            total=max_retries,
            allowed_methods=None,  # None means every method
            status_forcelist=RETRIED_STATUSES,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_factor,
            raise_on_status=False,  # hand back the last 503 so the caller sees the API's message
            respect_retry_after_header=True,
            sleep=sleep,
            on_retry=on_retry,
        )

    def new(self, **kw: Any) -> Self:
        # urllib3 makes a fresh Retry after each attempt and knows nothing of our sleep.
        retry = super().new(**kw)
        retry.sleep_function = self.sleep_function
        retry.on_retry = self.on_retry
        return retry

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        delay = self.get_retry_after(response) if response is not None else None
        if not delay:
            delay = self.get_backoff_time()
        if self.on_retry is not None:
            self.on_retry(self._retry_message(response, delay))
        if delay > 0:
            self.sleep_function(delay)

    def _retry_message(self, response: BaseHTTPResponse | None, delay: float) -> str:
        """E.g. "Connection refused: attempt 3 of 6 in 1.0 s"."""
        last = self.history[-1] if self.history else None
        if response is not None:
            reason = f"answered {response.status}"
        elif last is not None and last.error is not None:
            reason = CONNECTION_REPR.sub("", str(last.error))
        else:
            reason = "failed"
        made = len(self.history)
        when = f"in {delay:.1f} s" if delay > 0 else "now"
        return f"{reason}: attempt {made + 1} of {made + 1 + (self.total or 0)} {when}"
