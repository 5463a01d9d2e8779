from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path

from conversations import usage

# Password reset mails a link: without email configured its pages would fail (or, worse,
# try an SMTP server on localhost), so they exist only with EMAIL_HOST set.
account_urls = [url for url in auth_urls.urlpatterns
                if settings.PASSWORD_RESET_ENABLED or not url.name.startswith("password_reset")]

# conversations.urls also routes accounts/signup/ (404 unless ALLOW_SIGNUP is on).
urlpatterns = [
    # Before the admin's own URLs, which would answer 404 for a path they do not know.
    path("admin/usage/", admin.site.admin_view(usage.usage_page), name="admin_usage"),
    path("admin/", admin.site.urls),
    path("accounts/", include(account_urls)),
    path("", include("conversations.urls")),
]
if settings.OIDC_ENABLED:
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))
