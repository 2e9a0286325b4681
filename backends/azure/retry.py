"""A bounded retry policy for the Batch client's HTTP pipeline.

azure-core already retries 408, 429 and 5xx answers and honours ``Retry-After``; this policy adds
two things the sample needs on a busy account:

- a 429 (throttled) answer to a POST is retried too: the service refused the request without
  acting on it, so sending it again cannot create anything twice;
- a ``Retry-After`` longer than `max_retry_after` is cut down, so that no answer of the service
  can park the client for hours.

The number of attempts stays bounded by ``retry_total``.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import AsyncRetryPolicy

THROTTLED = 429


class BoundedRetryPolicy(AsyncRetryPolicy[Any, Any]):
    """azure-core's async retry policy, also retrying throttled POSTs, with a capped wait."""

    def __init__(self, *, max_retry_after: float = 60.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_retry_after = max_retry_after

    def _is_method_retryable(
        self,
        settings: dict[str, Any],
        request: Any,
        response: Any = None,
    ) -> bool:
        if response is not None and response.status_code == THROTTLED:
            return True
        return bool(super()._is_method_retryable(settings, request, response))

    def get_retry_after(self, response: PipelineResponse[Any, Any]) -> float | None:
        wait = super().get_retry_after(response)
        if wait is None:
            return None
        return min(wait, self.max_retry_after)
