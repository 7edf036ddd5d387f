from .base import *  # noqa: F401,F403
from .base import env

DEBUG = False
SECRET_KEY = "rollgate-test-only"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The suite runs against a real PostgreSQL (make test sets DATABASE_URL); Redis db 1 keeps tests off dev data.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/1")
# Live events (issue 7): the pub/sub layer sends one PUBLISH per group and each server process fans out to its own
# sockets, instead of one Redis list push and pop per socket (docs/PERFORMANCE.md, "Live updates"). Live events
# need no persistence: pages re-render when their socket reconnects.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}
CELERY_BROKER_URL = REDIS_URL
ROLLGATE_CREDENTIALS_KEY = "rollgate-test-credentials-key"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                      "KEY_PREFIX": "rollgate-test"}}
# Tests check the header counts right after a change: no sharing window.
ROLLGATE_FLEET_SUMMARY_CACHE_SECONDS = 0
