"""The rate limit settings are checked at start-up: a bad value stops it with a message naming the variable."""

from __future__ import annotations

import pytest

from tests.test_site import PRODUCTION, start_django


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"AMODAL_RATE_LIMIT_KEY": "600"},
            "AMODAL_RATE_LIMIT_KEY must be a number of requests per second, minute, hour or day "
            "(e.g. '600/minute'), or 0 for no limit; not '600'.",
        ),
        ({"AMODAL_RATE_LIMIT_SCOPE": "120/min"}, "AMODAL_RATE_LIMIT_SCOPE must be a number of requests per second"),
        ({"AMODAL_RATE_LIMIT_SCOPE": "-5/minute"}, "not '-5/minute'"),
        (
            {"AMODAL_STREAMS_PER_KEY": "ten"},
            "AMODAL_STREAMS_PER_KEY must be a whole number of streams (0 for no limit), not 'ten'.",
        ),
        ({"AMODAL_STREAMS_PER_SCOPE": "-1"}, "AMODAL_STREAMS_PER_SCOPE must be a whole number of streams"),
        ({"AMODAL_STREAMS_PER_SCOPE": "2.5"}, "not '2.5'"),
    ],
)
def test_bad_rate_limit_settings_stop_start_up(overrides, message):
    result = start_django({**PRODUCTION, **overrides})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_rate_limit_settings_are_read_and_normalised():
    code = (
        "from django.conf import settings as s; "
        "print(repr((s.AMODAL_RATE_LIMIT_KEY, s.AMODAL_RATE_LIMIT_SCOPE, s.AMODAL_STREAMS_PER_KEY, "
        "s.AMODAL_STREAMS_PER_SCOPE)))"
    )
    env = {
        **PRODUCTION,
        "AMODAL_RATE_LIMIT_KEY": " 600 / minute ",
        "AMODAL_RATE_LIMIT_SCOPE": "0",
        "AMODAL_STREAMS_PER_KEY": "20",
        "AMODAL_STREAMS_PER_SCOPE": "",
    }
    result = start_django(env, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('600/minute', '', 20, 0)"
