from .base import *  # noqa: F401,F403
from .base import env, env_secret

# DEBUG shows stack traces and settings: only when asked for (DEBUG=1), never by default.
DEBUG = env.bool("DEBUG", default=False)
# Local runs work with no variables set; production.py has no default.
SECRET_KEY = env_secret("SECRET_KEY", default="rollgate-local-development-only-not-secret")
# Deploy target credentials are encrypted with this key; local runs only (production has no default).
ROLLGATE_CREDENTIALS_KEY = env_secret("ROLLGATE_CREDENTIALS_KEY", default="rollgate-local-credentials-key-not-secret")

# The demo's private Prometheus scrapes /metrics/traces on 127.0.0.1 without a token.
ROLLGATE_METRICS_OPEN = env.bool("ROLLGATE_METRICS_OPEN", default=True)
# The demo agent's models are priced (routing/prices.py) unless ROLLGATE_MODEL_PRICES says otherwise.
if "ROLLGATE_MODEL_PRICES" not in env.ENVIRON:
    ROLLGATE_MODEL_PRICES = DEMO_MODEL_PRICES  # noqa: F405 (from base)

# Logs for people at a terminal (same fields as the JSON lines production writes); ROLLGATE_LOG_FORMAT=json to see those.
from config.logs import logging_config  # noqa: E402

ROLLGATE_LOG_FORMAT = env.str("ROLLGATE_LOG_FORMAT", default="console")
LOGGING = logging_config(fmt=ROLLGATE_LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
