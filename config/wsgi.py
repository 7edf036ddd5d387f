import os

from django.core.wsgi import get_wsgi_application

# Production unless told otherwise: `make run`/`make test` choose local/test settings themselves.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()
