from io import StringIO

from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory


def sign_in(username: str, password: str):
    """As the login page does (django-axes needs the request)."""
    return authenticate(RequestFactory().post("/accounts/login/"), username=username,
                        password=password)


def run(*args: str) -> str:
    out = StringIO()
    call_command("ensure_admin", *args, stdout=out)
    return out.getvalue()


def test_it_creates_a_superuser_and_prints_its_password(db, settings, django_user_model):
    settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD = "admin", ""
    output = run()
    password = output.split("password: ")[1].split()[0]
    user = sign_in("admin", password)
    assert user is not None and user.is_superuser and user.is_staff


def test_it_uses_the_configured_credentials(db, settings):
    settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD = "boss", "s3cret-Passphrase"
    output = run()
    assert "s3cret" not in output
    assert sign_in("boss", "s3cret-Passphrase").is_superuser


def test_it_is_idempotent(db, settings, django_user_model):
    settings.ADMIN_PASSWORD = ""
    run()
    assert run() == ""
    assert django_user_model.objects.count() == 1


def test_it_does_nothing_when_users_exist(alice, django_user_model):
    assert run() == ""
    assert not django_user_model.objects.filter(is_superuser=True).exists()


def test_it_says_where_to_sign_in_next_to_the_password(db, settings):
    settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD = "admin", ""
    lines = run("--url", "http://127.0.0.1:8000/").splitlines()
    assert lines[0].startswith("Created superuser 'admin' with password: ")
    assert lines[-1] == "Sign in at http://127.0.0.1:8000/"
    assert run("--url", "http://127.0.0.1:8000/") == "chatsite is at http://127.0.0.1:8000/\n"
