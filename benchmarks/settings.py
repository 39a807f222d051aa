"""The project's settings plus the benchmark-only URL (`/bench/bare-sse`, the baseline), served by the
same ASGI handler as the chat (amodal_site.handlers: async middleware only), so the two differ only by
what the chat does."""

from amodal_site.settings import *  # noqa: F403
from amodal_site.settings import AMODAL_ASYNC_PATHS

ROOT_URLCONF = "benchmarks.urls"
AMODAL_ASYNC_PATHS = (*AMODAL_ASYNC_PATHS, "/bench/bare-sse")  # type: ignore[assignment]  # one path more
