import uuid

from django.conf import settings
from django.db import models

# The generation settings a conversation keeps, each with its "unset" value (None / ""),
# which means: the model's default. The one list of them; forms, checks and payloads use it.
# catalogue.py says which models take which; payloads.py where each goes in a request
# (generation_config, or response_format for the image options).
GENERATION_SETTINGS = {
    "temperature": None, "thinking_level": "", "max_output_tokens": None,
    "top_p": None, "seed": None, "stop_sequences": None,  # stop_sequences: a list of strings
    "thinking_summaries": "",  # "auto" or "none"
    "aspect_ratio": "", "image_size": "", "image_output": "",  # image_output: "" or "image"
}


def default_generation_settings() -> dict:
    return dict(GENERATION_SETTINGS)


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, default="", blank=True)
    model = models.CharField(max_length=100)
    system_instruction = models.TextField(blank=True)
    generation_settings = models.JSONField(default=default_generation_settings, blank=True)
    stateful = models.BooleanField(default=True)
    # Tools switched on for this conversation, by name (catalogue.TOOLS), e.g. ["google_search"].
    tools = models.JSONField(default=list, blank=True)
    # A JSON Schema the reply must follow (structured output); null: free text.
    response_schema = models.JSONField(null=True, blank=True)
    # The end of the branch on screen: a new turn, or the version the person switched to.
    # Every tab and a reload open this branch first (null: the newest turn).
    branch_leaf = models.ForeignKey("Turn", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    # A read-only link for signed-in teammates (/shared/<token>/); empty: not shared.
    share_token = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated"]
        constraints = [
            models.UniqueConstraint(fields=["share_token"], condition=~models.Q(share_token=""),
                                    name="conversation_unique_share_token")
        ]
        indexes = [models.Index(fields=["owner", "-updated"], name="conversation_owner_updated")]
        permissions = [("review_conversation", "Can review any user's conversations")]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.id}"


class Turn(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        REQUIRES_ACTION = "requires_action"
        INCOMPLETE = "incomplete"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    # Chosen by the browser so that a resend after a reconnect does not create a second turn.
    client_id = models.CharField(max_length=64)
    input = models.JSONField(default=list)
    interaction_id = models.CharField(max_length=255, blank=True)
    previous_interaction_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # The model asked (the conversation's when the turn was sent): usage is counted per model.
    model = models.CharField(max_length=100, blank=True)
    steps = models.JSONField(default=list, blank=True)
    # The message's and the reply's text, for search (written with the input, then the reply).
    text = models.TextField(blank=True)
    usage = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    # Structured output: how the reply fared against the conversation's JSON Schema, checked
    # when the turn ends: {"valid": bool, "error": str | None}. Null: no schema was sent.
    output_check = models.JSONField(null=True, blank=True)
    last_event_id = models.CharField(max_length=255, blank=True)
    # The last websocket frame number that `steps` includes.
    seq = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"], name="turn_unique_client_id"
            )
        ]
        indexes = [
            models.Index(fields=["conversation", "created"], name="turn_conversation_created"),
            # Running turns are few among many: the limits count them on every new turn.
            models.Index(fields=["status"], name="turn_running",
                         condition=models.Q(status__in=["queued", "in_progress"])),
            # The usage page sums the turns of a date range, across every conversation.
            models.Index(fields=["created"], name="turn_created"),
        ]

    def __str__(self) -> str:
        return f"Turn {self.id} ({self.status})"


# A turn in one of these is still being written (or waits to be).
RUNNING_STATUSES = (Turn.Status.QUEUED, Turn.Status.IN_PROGRESS)


def attachment_path(attachment: "Attachment", filename: str) -> str:
    # One file per owner and content: the same bytes uploaded twice share it.
    return f"attachments/{attachment.owner_id}/{attachment.sha256[:2]}/{attachment.sha256}"


class Attachment(models.Model):
    """A file a person uploaded or a model generated, stored once per owner by SHA-256.

    A turn refers to it from its input (or a step's content block) as
    `{"type": <kind>, "mime_type": ..., "attachment": {"id", "url", "name", "size"}}`;
    payloads resolve that to inline `data` or a Files API `uri` when a request is sent.
    """

    class Source(models.TextChoices):
        UPLOAD = "upload"
        GENERATED = "generated"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments"
    )
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to=attachment_path, max_length=255)
    # Taken from the content (magic bytes), never from the browser's claim or the name.
    mime_type = models.CharField(max_length=100)
    # image, audio, video, document or text: the content block type it is sent as.
    kind = models.CharField(max_length=20)
    name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.UPLOAD)
    # The Files API copy (Gemini keeps uploads for 48 h): its name (`files/abc`), uri and
    # expiry. An expired or missing copy is uploaded again before a turn is sent.
    remote_name = models.CharField(max_length=255, blank=True)
    remote_uri = models.CharField(max_length=500, blank=True)
    remote_expires = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "sha256"], name="attachment_unique_sha256")
        ]

    def __str__(self) -> str:
        return self.name or f"Attachment {self.id}"


class SpentUsage(models.Model):
    """What a deleted turn had spent: its owner, model, time and usage, nothing it said.
    Kept so that deleting a conversation gives nothing back: the quota, the message rate
    and the usage page count these rows as they count turns (services.conversation_delete
    writes them; a reply that ends after its conversation was deleted writes its usage
    here)."""

    turn_id = models.UUIDField(primary_key=True)  # the deleted turn's
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="+")
    model = models.CharField(max_length=100, blank=True)
    usage = models.JSONField(null=True, blank=True)
    created = models.DateTimeField()  # the turn's: the windows count from it

    class Meta:
        indexes = [
            models.Index(fields=["owner", "created"], name="spent_usage_owner_created"),
            models.Index(fields=["created"], name="spent_usage_created"),
        ]

    def __str__(self) -> str:
        return f"Spent by deleted turn {self.turn_id}"


class ReviewLog(models.Model):
    """A reviewer opened a conversation: who, which, when, from where. Superusers read it;
    nobody edits or deletes it through the app, and it outlives the conversation."""

    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                 related_name="+")
    reviewer_name = models.CharField(max_length=150)
    conversation_id = models.UUIDField()
    conversation_title = models.CharField(max_length=200, blank=True)
    owner_name = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.reviewer_name} reviewed {self.conversation_id} at {self.at:%Y-%m-%d %H:%M}"


class AccessPolicy(models.Model):
    """What its users and its groups' members may use. A user's own policies apply if there
    are any, else those of the user's groups; of several, the most generous wins. With none,
    the site's defaults (settings) apply. Empty lists mean: every model / tool."""

    name = models.CharField(max_length=100, unique=True)
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="access_policies")
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                   related_name="access_policies")
    daily_tokens = models.PositiveBigIntegerField(null=True, blank=True,
                                                  help_text="Empty: no limit.")
    messages_per_hour = models.PositiveIntegerField(null=True, blank=True,
                                                    help_text="Empty: no limit.")
    allowed_models = models.JSONField(default=list, blank=True,
                                      help_text="Model ids; empty: all.")
    allowed_tools = models.JSONField(default=list, blank=True,
                                     help_text="Tool names; empty: all.")

    class Meta:
        verbose_name_plural = "access policies"

    def __str__(self) -> str:
        return self.name
