from django.contrib import admin
from django.urls import include, path

# conversations.urls also routes accounts/signup/ (404 unless ALLOW_SIGNUP is on).
urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("conversations.urls")),
]
