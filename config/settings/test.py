from .base import *  # noqa: F401,F403
from .base import env

DEBUG = False
SECRET_KEY = "rollgate-test-only"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The suite runs against a real PostgreSQL (make test sets DATABASE_URL); Redis db 1 keeps tests off dev data.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/1")
# Live events per deployment (base.py derives the prefix from the database). Tests start workers and servers with
# DATABASE_URL naming pytest-django's test database ("test_" + name): they must share the prefix of the process
# that started them, so the "test_" is not part of what the prefix is derived from.
if not env.str("ROLLGATE_CHANNEL_PREFIX", default=""):
    import hashlib

    _db = DATABASES["default"]  # noqa: F405 (from base)
    _where = f"{_db.get('HOST', '')}:{_db.get('PORT', '')}/{str(_db['NAME']).removeprefix('test_')}"
    ROLLGATE_CHANNEL_PREFIX = "rollgate-test." + hashlib.sha256(_where.encode()).hexdigest()[:12]
CHANNEL_LAYERS = channel_layers(REDIS_URL, ROLLGATE_CHANNEL_PREFIX)  # noqa: F405 (from base)
CELERY_BROKER_URL = REDIS_URL
ROLLGATE_CREDENTIALS_KEY = "rollgate-test-credentials-key"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                      "KEY_PREFIX": "rollgate-test"}}

ROLLGATE_METRICS_OPEN = True  # tests/routing/test_metrics_closed.py checks the production default
# The demo agent's models are priced (routing/prices.py) unless ROLLGATE_MODEL_PRICES says otherwise.
if "ROLLGATE_MODEL_PRICES" not in env.ENVIRON:
    ROLLGATE_MODEL_PRICES = DEMO_MODEL_PRICES  # noqa: F405 (from base)
# Tests check the header counts right after a change: no sharing window.
ROLLGATE_FLEET_SUMMARY_CACHE_SECONDS = 0
