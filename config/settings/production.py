from .base import *  # noqa: F401,F403
from .base import BASE_DIR
from .base import env, env_secret

DEBUG = False
SECRET_KEY = env_secret("SECRET_KEY")  # no default: refuse to start without one
if not SECRET_KEY:
    raise RuntimeError("SECRET_KEY (or SECRET_KEY_FILE) must be set in production")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = False
