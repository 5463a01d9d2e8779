"""chatsite settings: everything comes from the environment (see .env.example)."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from chatsite import logs

BASE_DIR = Path(__file__).resolve().parent.parent

# pytest sets PYTEST_VERSION for the whole session (and for servers it starts).
TESTING = "PYTEST_VERSION" in os.environ


def _load_env_file(path: Path) -> None:
    """Read KEY=VALUE lines into os.environ; variables already set win."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)


# Tests must not pick up a developer's .env (a real API key, another database).
if not TESTING:
    _load_env_file(Path(os.getenv("ENV_FILE", BASE_DIR / ".env")))


def envbool(name: str, default: str) -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    return int(os.getenv(name, default))


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "False")

SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment or in .env "
            "(`make run` writes a random one to .env), or set DEBUG=1 for development."
        )
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "channels",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "conversations",
]

MIDDLEWARE = [
    "chatsite.middleware.RequestIdMiddleware",
    # Before the host check and the HTTPS redirect: load balancers ask by IP, over HTTP.
    "chatsite.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "chatsite.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
WSGI_APPLICATION = "chatsite.wsgi.application"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "conversations.views.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Persistent connections: the runner's database work runs on one thread, and
        # opening and closing a connection around each write was half of its CPU.
        conn_max_age=envint("DB_CONN_MAX_AGE", "600"),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while the runner writes; IMMEDIATE + a busy timeout make
    # concurrent writers wait for the lock instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.getenv("REDIS_URL", "")
# Which of channels_redis's layers carries the frames between processes (docs/deployment.md
# has the measurements): "pubsub" (Redis PUBLISH: one message per frame, however many
# processes follow the conversation; nothing is kept for a process while its Redis
# connection is down, and the frames' sequence numbers make its clients resync) or
# "classic" (lists in Redis: about 2.5x the CPU per frame, and one process falls behind and
# drops frames past ~400 frames a second, about 20 streaming replies).
REDIS_CHANNEL_LAYER = os.getenv("REDIS_CHANNEL_LAYER", "pubsub")
if REDIS_CHANNEL_LAYER not in ("classic", "pubsub"):
    raise ImproperlyConfigured(
        f"REDIS_CHANNEL_LAYER={REDIS_CHANNEL_LAYER!r}: use classic or pubsub")
redis_host = {
    "address": REDIS_URL,
    # redis-py times a read out after 5 s by default, and channels_redis's blocking reads
    # also last 5 s: an idle socket's read then fails and the socket is closed with 1011
    # (channels_redis #422). Reads return within 5 s on a healthy connection, so 30 s only
    # catches a dead one.
    "socket_timeout": 30,
    "socket_keepalive": True,
}
if REDIS_URL and REDIS_CHANNEL_LAYER == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_host]},
        }
    }
elif REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's, letting go of closed sockets' late frames (conversations/layers.py)
            "BACKEND": "conversations.layers.TidyRedisChannelLayer",
            # The default capacity (100) drops group messages silently under a burst.
            "CONFIG": {"hosts": [redis_host], "capacity": 10000},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "conversations.layers.StreamingInMemoryChannelLayer",
            "CONFIG": {"capacity": 10000},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sign-in throttling (django-axes): LOGIN_FAILURE_LIMIT wrong passwords in a row for one
# username from one address lock that pair out for LOGIN_LOCKOUT_MINUTES (others, and the same
# user elsewhere, can still sign in). Admins see and clear lockouts under "Axes" in the admin.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Single sign-on (OpenID Connect), on when OIDC_CLIENT_ID is set; .env.example explains each.
OIDC_ENABLED = bool(os.getenv("OIDC_CLIENT_ID"))
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("chatsite.oidc.Backend")
    OIDC_RP_CLIENT_ID = os.getenv("OIDC_CLIENT_ID", "")
    OIDC_RP_CLIENT_SECRET = os.getenv("OIDC_CLIENT_SECRET", "")
    OIDC_OP_AUTHORIZATION_ENDPOINT = os.getenv("OIDC_AUTHORIZATION_URL", "")
    OIDC_OP_TOKEN_ENDPOINT = os.getenv("OIDC_TOKEN_URL", "")
    OIDC_OP_USER_ENDPOINT = os.getenv("OIDC_USERINFO_URL", "")
    OIDC_OP_JWKS_ENDPOINT = os.getenv("OIDC_JWKS_URL", "")
    missing = [name for name, value in (
        ("OIDC_AUTHORIZATION_URL", OIDC_OP_AUTHORIZATION_ENDPOINT),
        ("OIDC_TOKEN_URL", OIDC_OP_TOKEN_ENDPOINT), ("OIDC_USERINFO_URL", OIDC_OP_USER_ENDPOINT),
        ("OIDC_JWKS_URL", OIDC_OP_JWKS_ENDPOINT)) if not value]
    if missing:
        raise ImproperlyConfigured(f"OIDC_CLIENT_ID is set, so single sign-on needs "
                                   f"{', '.join(missing)} too (see .env.example).")
OIDC_PROVIDER_NAME = os.getenv("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_RP_SIGN_ALGO = os.getenv("OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.getenv("OIDC_SCOPES", "openid email profile")
OIDC_USE_PKCE = True
OIDC_CREATE_USER = envbool("OIDC_CREATE_USERS", "True")
OIDC_ALLOWED_DOMAINS = [d.lower() for d in envlist("OIDC_ALLOWED_DOMAINS", "")]
OIDC_REQUIRE_VERIFIED_EMAIL = envbool("OIDC_REQUIRE_VERIFIED_EMAIL", "True")
OIDC_TIMEOUT = 10
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"

AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", "15"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# Email, for password reset links: without EMAIL_HOST the reset pages do not exist.
EMAIL_HOST = os.getenv("EMAIL_HOST", "")
EMAIL_PORT = envint("EMAIL_PORT", "587")
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "True")
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "chatsite@localhost")
PASSWORD_RESET_ENABLED = bool(EMAIL_HOST)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
ALLOW_SIGNUP = envbool("ALLOW_SIGNUP", "False")
# Used by `manage.py ensure_admin` to create the first superuser.
ADMIN_USERNAME = os.getenv("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.getenv("ADMIN_PASSWORD", "")

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Tests serve static files from the sources only (whitenoise warns about a missing root).
STATIC_ROOT = None if TESTING else BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.getenv("MEDIA_ROOT", BASE_DIR / "media"))

# Hashed, compressed files need `collectstatic`; development and tests serve the sources.
_static_backend = (
    "django.contrib.staticfiles.storage.StaticFilesStorage"
    if DEBUG or TESTING
    else "chatsite.storage.StaticFilesStorage"
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": _static_backend},
}
# pytest-django turns DEBUG off, yet live-server tests still need the source static files.
WHITENOISE_USE_FINDERS = DEBUG or TESTING

GEMINI_API_KEY = os.getenv("GEMINI_API_KEY", "")
GEMINI_API_BASE_URL = os.getenv("GEMINI_API_BASE_URL", "https://generativelanguage.googleapis.com")
# Tools (catalogue.TOOLS) nobody on this site may switch on, e.g. "google_maps,code_execution";
# they are also stripped from requests of conversations that had them on before.
DISABLED_TOOLS = envlist("DISABLED_TOOLS", "")
# The largest JSON Schema a conversation may hold for structured output, in bytes of JSON.
MAX_RESPONSE_SCHEMA_BYTES = envint("MAX_RESPONSE_SCHEMA_BYTES", "32768")

# How files reach Gemini (.env.example explains each): inline while the request stays this
# small (bytes, base64 and JSON included), else through the Files API, whose copy is reused
# until this many seconds before it expires; processing may take this long (seconds).
INLINE_MEDIA_MAX_BYTES = envint("INLINE_MEDIA_MAX_BYTES", str(16 * 1024 * 1024))
FILES_API_REUSE_MARGIN = envint("FILES_API_REUSE_MARGIN", "3600")
FILES_API_ACTIVE_TIMEOUT = envint("FILES_API_ACTIVE_TIMEOUT", "600")

# What one user or socket may ask at once (.env.example explains each).
MAX_RUNNING_TURNS_PER_USER = envint("MAX_RUNNING_TURNS_PER_USER", "3")
MAX_SOCKETS_PER_USER = envint("MAX_SOCKETS_PER_USER", "30")
SOCKET_FRAMES_PER_SECOND = envint("SOCKET_FRAMES_PER_SECOND", "5")
SOCKET_FRAME_BURST = envint("SOCKET_FRAME_BURST", "20")
# Bytes that may wait for a client that has stopped reading before its socket is dropped.
SOCKET_SEND_BUFFER_BYTES = envint("SOCKET_SEND_BUFFER_BYTES", str(16 * 1024 * 1024))
# Access policies (admin: Access policies) set each user's or group's daily tokens and
# messages an hour; these apply to users no policy names. 0: no limit.
DEFAULT_DAILY_TOKENS = envint("DEFAULT_DAILY_TOKENS", "0")
DEFAULT_MESSAGES_PER_HOUR = envint("DEFAULT_MESSAGES_PER_HOUR", "0")
# Turns of a branch sent at a time: on opening (the newest ones) and per "earlier" request.
TURNS_PAGE = envint("TURNS_PAGE", "30")
# Uploads (.env.example explains each): the largest file (2 GiB: the Files API's own limit
# per file), and how many files one message may carry.
UPLOAD_MAX_BYTES = envint("UPLOAD_MAX_BYTES", str(2 * 1024**3))
MAX_ATTACHMENTS_PER_MESSAGE = envint("MAX_ATTACHMENTS_PER_MESSAGE", "10")
# Admin review and shared links (.env.example explains each): turns of every branch per
# read-only page, and the longest date range of the usage page.
REVIEW_TURNS_PAGE = envint("REVIEW_TURNS_PAGE", "500")
USAGE_MAX_DAYS = envint("USAGE_MAX_DAYS", "366")
# Conversations a search lists (the best matches); more are summed up with a hint to narrow it.
SEARCH_RESULTS = envint("SEARCH_RESULTS", "50")
# Exports and imports of conversations as files (.env.example explains each).
EXPORT_MAX_CONVERSATIONS = envint("EXPORT_MAX_CONVERSATIONS", "500")
IMPORT_MAX_BYTES = envint("IMPORT_MAX_BYTES", str(50 * 1024 * 1024))

# The offline model (.env.example explains each): a GGUF file, run in its own process.
LOCAL_MODEL_PATH = os.getenv("LOCAL_MODEL_PATH", "")  # empty: the shipped SmolLM2 135M
LOCAL_MODEL_NAME = os.getenv("LOCAL_MODEL_NAME", "")  # empty: named after the file
LOCAL_MODEL_CONTEXT = envint("LOCAL_MODEL_CONTEXT", "2048")
LOCAL_MODEL_THREADS = envint("LOCAL_MODEL_THREADS", "0")  # 0: every core but one, up to 8
LOCAL_MODEL_TIMEOUT = envint("LOCAL_MODEL_TIMEOUT", "30")
LOCAL_MODEL_LOAD_TIMEOUT = envint("LOCAL_MODEL_LOAD_TIMEOUT", "120")
LOCAL_MODEL_QUEUE_LIMIT = envint("LOCAL_MODEL_QUEUE_LIMIT", "8")
LOCAL_MODEL_QUEUE_PER_USER = envint("LOCAL_MODEL_QUEUE_PER_USER", "3")

X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Only behind HTTPS: a reverse proxy that terminates TLS and sets X-Forwarded-Proto.
USE_HTTPS = envbool("USE_HTTPS", "False")
if USE_HTTPS and not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "False")
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "False")
    # A plain-HTTP request that reaches us anyway (a proxy sending port 80 through) is
    # redirected; off for a proxy that does its own redirect and forwards both ports.
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "True")

# Seconds /healthz waits for the database and the channel layer before answering 503.
HEALTHZ_TIMEOUT = envint("HEALTHZ_TIMEOUT", "2")

# LOG_FORMAT=json: one JSON object per line, with the request, turn and conversation ids.
try:
    LOGGING = logs.logging_config(os.getenv("LOG_FORMAT", "plain").strip().lower(),
                                  os.getenv("LOG_LEVEL", "INFO"))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
