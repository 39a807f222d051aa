"""The project's settings plus the benchmark-only URL (`/bench/bare-sse`, the baseline)."""

from amodal_site.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.urls"
