from django.urls import path

from conversations import export_views, files_views, review, views

urlpatterns = [
    path("", views.index, name="index"),
    path("c/new", views.conversation_new, name="conversation_new"),
    path("c/search", views.conversation_search, name="conversation_search"),
    path("c/export", export_views.conversations_export, name="conversations_export"),
    path("c/import", export_views.conversations_import, name="conversations_import"),
    path("c/<uuid:conversation_id>/", views.chat, name="chat"),
    path("c/<uuid:conversation_id>/rename", views.conversation_rename, name="conversation_rename"),
    path("c/<uuid:conversation_id>/delete", views.conversation_delete, name="conversation_delete"),
    path("c/<uuid:conversation_id>/export", export_views.conversation_export,
         name="conversation_export"),
    path(
        "c/<uuid:conversation_id>/settings",
        views.conversation_settings,
        name="conversation_settings",
    ),
    path("files/", files_views.upload, name="file_upload"),
    path("files/<uuid:attachment_id>/", files_views.serve, name="file"),
    path("c/<uuid:conversation_id>/share", review.share, name="conversation_share"),
    path("c/<uuid:conversation_id>/unshare", review.unshare, name="conversation_unshare"),
    path("shared/<str:token>/", review.shared, name="shared"),
    path("shared/<str:token>/files/<uuid:attachment_id>/", files_views.serve_shared,
         name="shared_file"),
    # Always routed: the view answers 404 while ALLOW_SIGNUP is off, so the switch
    # takes effect without reloading the URLconf.
    path("accounts/signup/", views.signup, name="signup"),
]
