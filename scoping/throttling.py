"""DRF throttling of the JSON API views (scoping.api.ScopedAPIView): the rate limits of scoping.ratelimits.
DRF checks throttles after authentication and permissions, so a request counts against the caller's API
key and the scope the scope policy resolved."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from scoping.authentication import Caller
from scoping.ratelimits import check_request


class RateLimitThrottle(BaseThrottle):
    """Requests per API key and per scope, counted together. Over a limit it raises
    core.errors.RateLimited (429 `rate_limited`, Retry-After) instead of returning False, so the answer
    names the limit; DRF's own Throttled could not."""

    def allow_request(self, request: Request, view: Any) -> bool:  # a ScopedAPIView: `view.resolved` is set
        caller = request.user
        assert isinstance(caller, Caller)  # BearerAuthentication made it
        check_request(caller, view.resolved.scope_id)
        return True
