from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.index, name="index"),
    path("c/new", views.conversation_new, name="conversation_new"),
    path("c/search", views.conversation_search, name="conversation_search"),
    path("c/<uuid:conversation_id>/", views.chat, name="chat"),
    path("c/<uuid:conversation_id>/rename", views.conversation_rename, name="conversation_rename"),
    path("c/<uuid:conversation_id>/delete", views.conversation_delete, name="conversation_delete"),
    path(
        "c/<uuid:conversation_id>/settings",
        views.conversation_settings,
        name="conversation_settings",
    ),
    path("files/<uuid:attachment_id>/", views.attachment_file, name="attachment_file"),
    # Always routed: the view answers 404 while ALLOW_SIGNUP is off, so the switch
    # takes effect without reloading the URLconf.
    path("accounts/signup/", views.signup, name="signup"),
]
