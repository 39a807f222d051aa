"""Test settings: the project's settings with development defaults and a test-only scoped model."""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("AMODAL_DEMO_API", "1")
os.environ.setdefault("FINANCE_API_URL", "http://127.0.0.1:8000/demo/finance-api")
os.environ.setdefault("AMODAL_JWT_SECRET", "test-jwt-secret-0123456789abcdef0123456789")

from amodal_site.settings import *  # noqa: E402,F403
from amodal_site.settings import INSTALLED_APPS  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "tests.scopetest"]

# Hashing demo passwords slowly buys nothing in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# In-process tests run each async test in its own event loop (asyncio.run), and a Redis channel layer's
# connections belong to the loop that opened them: it would hang across loops. The Redis layer is
# tested where it is used for real, in daphne processes started by tests/e2e (they read REDIS_URL).
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# SQLite tests use a file (one per xdist worker, pytest-django adds the suffix), as production does: an
# in-memory database is shared between connections in SQLite's shared-cache mode, which locks whole
# tables and fails at once ("database table is locked") where a file in WAL mode waits its turn, and the
# chat's database threads each have a connection.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import hashlib
    import tempfile
    from pathlib import Path

    _checkout = hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:12]  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"amodal-test-{_checkout}.sqlite3")}  # noqa: F405
