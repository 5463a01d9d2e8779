"""The deployment files: `check --deploy` with the documented production environment, and
what the Dockerfile, compose file and nginx site must say. Docker itself does not run here;
docker-compose and nginx do when they are installed (skipped otherwise)."""

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
NGINX = (ROOT / "deploy" / "nginx" / "chatsite.conf").read_text()
SETTINGS = (ROOT / "chatsite" / "settings.py").read_text()
# What settings.py reads: os.getenv("NAME", ...), envbool("NAME", ...) and the like.
SETTING_NAMES = set(re.findall(r'(?:getenv|envbool|envint|envlist)\(\s*"([A-Z0-9_]+)"', SETTINGS))
UPLOAD_MAX_BYTES_DEFAULT = 2 * 1024**3  # the uploads' limit (UPLOAD_MAX_BYTES) by default


def production_env() -> dict[str, str]:
    """The `.env for production` block of docs/deployment.md, placeholders filled in."""
    docs = (ROOT / "docs" / "deployment.md").read_text()
    block = re.search(r"```sh\n# \.env for production.*?\n(.*?)```", docs, re.S).group(1)
    env = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["POSTGRES_PASSWORD"] = secrets.token_hex(24)
    # What docker-compose.yml sets beside .env.
    env.update(COMPOSE["x-app"]["environment"])
    env["DATABASE_URL"] = env["DATABASE_URL"].replace(
        "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", env["POSTGRES_PASSWORD"])
    return env


def test_check_deploy_is_clean_with_the_documented_production_environment(tmp_path):
    env = production_env()
    assert env["USE_HTTPS"] == "1" and "DEBUG" not in env
    clean = {k: v for k, v in os.environ.items()
             if k not in SETTING_NAMES and k != "PYTEST_VERSION"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**clean, **env, "ENV_FILE": str(tmp_path / "none")},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_every_setting_is_documented_in_the_env_example():
    example = (ROOT / ".env.example").read_text()
    missing = sorted(name for name in SETTING_NAMES if f"# {name}=" not in example)
    assert not missing, f"settings.py reads these, .env.example does not document them: {missing}"


def test_the_documented_production_environment_names_only_real_settings():
    unknown = set(production_env()) - SETTING_NAMES - {"POSTGRES_PASSWORD"}
    assert not unknown


# -- Dockerfile -----------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    text = re.sub(r"^\s*#.*\n", "", DOCKERFILE, flags=re.M).replace("\\\n", " ")
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip()]


def test_the_image_is_multi_stage_and_runs_as_a_non_root_user():
    instructions = dockerfile_instructions()
    assert sum(1 for name, _ in instructions if name == "FROM") >= 2
    users = [args.strip() for name, args in instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    # Nothing runs after the switch that needs root, and the entry point comes after it.
    last_user = max(i for i, (name, _) in enumerate(instructions) if name == "USER")
    assert all(name != "RUN" for name, _ in instructions[last_user:])


def test_the_image_collects_static_files_and_checks_its_health():
    runs = " ".join(args for name, args in dockerfile_instructions() if name == "RUN")
    assert "manage.py collectstatic --noinput" in runs
    [health] = [args for name, args in dockerfile_instructions() if name == "HEALTHCHECK"]
    assert "/healthz" in health


def test_the_engine_is_built_with_the_makefiles_portable_flags_never_natively():
    code = " ".join(args for name, args in dockerfile_instructions())
    assert "-march=native" not in DOCKERFILE and "GGML_NATIVE=ON" not in code
    portable = re.search(r"^PORTABLE_X86_64 := (.+)$", (ROOT / "Makefile").read_text(),
                         re.M).group(1)
    assert f'flags="{portable}"' in code
    assert ("ARG", "OFFLINE_MODEL=1") in dockerfile_instructions()  # the model may be left out


def test_the_image_leaves_secrets_and_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".git", ".venv", "*.sqlite3", "/media"):
        assert entry in ignored


def test_the_entrypoint_is_valid_shell():
    entrypoint = ROOT / "deploy" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    subprocess.run(["sh", "-n", str(entrypoint)], check=True)
    assert "chatsite.asgi:application" in entrypoint.read_text()


# -- docker-compose.yml ---------------------------------------------------------------------

def test_compose_runs_several_web_processes_on_postgres_redis_and_nginx():
    services = COMPOSE["services"]
    assert {"web", "db", "redis", "nginx", "migrate"} <= set(services)
    assert services["web"]["deploy"]["replicas"] >= 2
    assert services["web"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"
    # Only the proxy is reachable from outside.
    assert [name for name, service in services.items() if "ports" in service] == ["nginx"]


def test_the_web_processes_share_the_media_volume_and_name_real_settings():
    for name in ("web", "migrate"):
        service = COMPOSE["services"][name]
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379/")
        assert f"media:{env['MEDIA_ROOT']}" in service["volumes"]
        assert set(env) <= SETTING_NAMES
        assert service["env_file"] == ".env"
    assert {"pgdata", "media"} <= set(COMPOSE["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in COMPOSE["services"]["db"]["volumes"]


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file(tmp_path):
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=example\n")
    result = subprocess.run(["docker-compose", "config", "--quiet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (tmp_path / ".env").write_text("")
    refused = subprocess.run(["docker-compose", "config", "--quiet"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "set POSTGRES_PASSWORD in .env" in refused.stderr


# -- deploy/nginx/chatsite.conf -----------------------------------------------------------

def location(path: str) -> str:
    """A location of the HTTPS server (the port-80 one only redirects)."""
    https = NGINX[NGINX.index("listen 443"):]
    return re.search(r"location " + re.escape(path) + r" \{(.*?)\n    \}", https, re.S).group(1)


def seconds(value: str) -> int:
    return int(value[:-1]) * {"s": 1, "m": 60, "h": 3600}[value[-1]]


def test_nginx_upgrades_websockets_and_keeps_them_open():
    sockets = location("/ws/")
    assert "proxy_set_header Upgrade $http_upgrade;" in sockets
    assert "proxy_set_header Connection $connection_upgrade;" in sockets
    assert seconds(re.search(r"proxy_read_timeout (\w+);", sockets).group(1)) >= 3600
    assert "proxy_http_version 1.1;" in NGINX


def test_nginx_streams_unbuffered_and_forwards_what_the_app_trusts():
    assert re.search(r"^\s*proxy_buffering off;", NGINX, re.M)
    # A location with its own proxy_set_header inherits none: each must set them all.
    for path in ("/ws/", "/"):
        block = location(path)
        for header in ("Host $http_host", "X-Forwarded-Proto $scheme", "X-Request-ID"):
            assert f"proxy_set_header {header}" in block, (path, header)


def test_nginx_takes_uploads_as_large_as_the_app_does():
    from django.conf import settings

    limit = getattr(settings, "UPLOAD_MAX_BYTES", UPLOAD_MAX_BYTES_DEFAULT)
    size = re.search(r"client_max_body_size (\d+)([kmg]?);", NGINX)
    body = int(size.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[size.group(2)]
    assert limit < body <= limit + 16 * 1024**2  # room for the multipart envelope, no more
