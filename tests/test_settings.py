"""Settings are read at import time, so each case imports them in a fresh interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
SHOW = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SECRET_KEY": settings.SECRET_KEY,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "ENGINE": db["ENGINE"],
    "DB_OPTIONS": db.get("OPTIONS", {}),
    "LAYER": settings.CHANNEL_LAYERS["default"],
    "STATIC": settings.STORAGES["staticfiles"]["BACKEND"],
    "ALLOW_SIGNUP": settings.ALLOW_SIGNUP,
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
}))
"""
# What the developer's shell or pytest itself might have set must not leak in.
CLEARED = (
    "SECRET_KEY", "DEBUG", "PYTEST_VERSION", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS",
    "ALLOW_SIGNUP", "USE_HTTPS", "REDIS_CHANNEL_LAYER",
)


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CLEARED}
    clean.update({"DJANGO_SETTINGS_MODULE": "chatsite.settings",
                  "ENV_FILE": str(tmp_path / "missing.env"), **env})
    return subprocess.run([sys.executable, "-c", SHOW], cwd=BASE_DIR, env=clean,
                          capture_output=True, text=True, timeout=60)


def show(tmp_path: Path, **env: str) -> dict:
    result = run(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_it_requires_a_secret_key_when_debug_is_off(tmp_path):
    result = run(tmp_path, DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_it_runs_without_a_secret_key_in_debug(tmp_path):
    shown = show(tmp_path, DEBUG="1")
    assert shown["DEBUG"] is True
    assert shown["SECRET_KEY"].startswith("django-insecure")
    assert shown["STATIC"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_it_has_safe_defaults(tmp_path):
    shown = show(tmp_path, SECRET_KEY="x" * 50)
    assert shown["DEBUG"] is False
    assert shown["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1"]
    assert shown["ALLOW_SIGNUP"] is False
    assert shown["STATIC"] == "chatsite.storage.StaticFilesStorage"
    assert "InMemoryChannelLayer" in shown["LAYER"]["BACKEND"]
    assert shown["LAYER"]["CONFIG"]["capacity"] == 10000


def test_it_makes_sqlite_wait_for_locks(tmp_path):
    shown = show(tmp_path, DEBUG="1")
    assert shown["ENGINE"] == "django.db.backends.sqlite3"
    assert "journal_mode=WAL" in shown["DB_OPTIONS"]["init_command"]
    assert shown["DB_OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert shown["DB_OPTIONS"]["timeout"] > 0


def test_it_reads_the_database_url(tmp_path):
    shown = show(tmp_path, DEBUG="1", DATABASE_URL="postgres://u:p@db.example:5432/chat")
    assert shown["ENGINE"] == "django.db.backends.postgresql"
    assert "init_command" not in shown["DB_OPTIONS"]


def test_it_uses_redis_when_configured(tmp_path):
    shown = show(tmp_path, DEBUG="1", REDIS_URL="redis://localhost:6379/0")
    assert shown["LAYER"]["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    [host] = shown["LAYER"]["CONFIG"]["hosts"]
    assert host["address"] == "redis://localhost:6379/0"
    # Longer than channels_redis's 5 s blocking reads, or idle sockets die (see test_team.py).
    assert host["socket_timeout"] > 5


def test_it_offers_the_classic_redis_layer(tmp_path):
    shown = show(tmp_path, DEBUG="1", REDIS_URL="redis://localhost:6379/0",
                 REDIS_CHANNEL_LAYER="classic")
    assert shown["LAYER"]["BACKEND"] == "conversations.layers.TidyRedisChannelLayer"
    [host] = shown["LAYER"]["CONFIG"]["hosts"]
    assert host["address"] == "redis://localhost:6379/0" and host["socket_timeout"] > 5


def test_an_unknown_redis_layer_is_refused_by_name(tmp_path):
    result = run(tmp_path, DEBUG="1", REDIS_URL="redis://localhost:6379/0",
                 REDIS_CHANNEL_LAYER="streams")
    assert result.returncode != 0
    assert "REDIS_CHANNEL_LAYER='streams': use classic or pubsub" in result.stderr


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False)])
def test_it_reads_booleans(tmp_path, value, expected):
    assert show(tmp_path, DEBUG="1", ALLOW_SIGNUP=value)["ALLOW_SIGNUP"] is expected


def test_it_sets_secure_cookies_only_behind_https(tmp_path):
    key = "x" * 50
    assert show(tmp_path, SECRET_KEY=key)["SESSION_COOKIE_SECURE"] is False
    assert show(tmp_path, SECRET_KEY=key, USE_HTTPS="1")["SESSION_COOKIE_SECURE"] is True


def test_it_reads_the_env_file_without_overriding_the_environment(tmp_path):
    env_file = tmp_path / "test.env"
    env_file.write_text("# comment\nSECRET_KEY='from-file'\nALLOWED_HOSTS=chat.example\n")
    shown = show(tmp_path, ENV_FILE=str(env_file), ALLOWED_HOSTS="other.example")
    assert shown["SECRET_KEY"] == "from-file"
    assert shown["ALLOWED_HOSTS"] == ["other.example"]


def test_single_sign_on_half_configured_says_what_is_missing(tmp_path):
    result = run(tmp_path, DEBUG="1", OIDC_CLIENT_ID="chatsite",
                 OIDC_AUTHORIZATION_URL="https://id.example/authorize")
    assert result.returncode != 0
    assert "OIDC_TOKEN_URL, OIDC_USERINFO_URL, OIDC_JWKS_URL" in result.stderr
