"""Settings of the demo service. The database comes from the libpq environment
(PGHOST, PGPORT, PGDATABASE, PGUSER), as printed by scripts/pg-cluster.sh env."""
import os

SECRET_KEY = "pytrace-bpf-demo-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = ["recipes"]
MIDDLEWARE = []
ROOT_URLCONF = "recipesite.urls"
WSGI_APPLICATION = "recipesite.wsgi.application"
TEMPLATES = []

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "pytrace"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "/tmp/pytrace-pg"),
        "PORT": os.environ.get("PGPORT", "54329"),
        # One connection per worker thread, kept across requests.
        "CONN_MAX_AGE": int(os.environ.get("DEMO_CONN_MAX_AGE", "60")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = False
TIME_ZONE = "UTC"
USE_I18N = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "ERROR"}},
}

# bench/requests_overhead.py: DEMO_SENTRY=1 turns on sentry-sdk's Django tracing (every request a
# transaction, every query a span) with a transport that drops the events: the in-process cost
# without the network.
if os.environ.get("DEMO_SENTRY") == "1":
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.transport import Transport

    class _DropTransport(Transport):
        def capture_event(self, event):
            pass

        def capture_envelope(self, envelope):
            pass

    sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", integrations=[DjangoIntegration()],
                    traces_sample_rate=1.0, transport=_DropTransport)
