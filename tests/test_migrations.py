"""Data migrations, run forwards on rows made with the models as they were before."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


@pytest.fixture
def latest_after():
    """Leave the database as every other test expects it: fully migrated."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_after")
def test_0006_gives_old_turns_their_model_and_search_text():
    old = migrate(("conversations", "0005_attachment_tools"))
    user = old.get_model("auth", "User").objects.create(username="old")
    chat = old.get_model("conversations", "Conversation").objects.create(
        owner=user, model="gemini-3.5-flash")
    old.get_model("conversations", "Turn").objects.create(
        conversation=chat, client_id="c1", status="completed",
        input=[{"type": "text", "text": "Where do otters sleep?"}],
        steps=[{"type": "model_output", "content": [{"type": "text", "text": "In holts."}]}])

    new = migrate(("conversations", "0006_team"))
    turn = new.get_model("conversations", "Turn").objects.get()

    assert turn.model == "gemini-3.5-flash"
    assert turn.text == "Where do otters sleep?\nIn holts."


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_after")
@pytest.mark.parametrize("before, text, query", [
    ("0008_review", "Otters sleep in holts.", "holts"),  # 0009: the index
    ("0009_search", "Un café, s'il vous plaît.", "cafe plait"),  # 0010: without accents
])
def test_the_search_migrations_make_the_turns_before_them_searchable(before, text, query):
    from conversations import search

    old = migrate(("conversations", before))
    user = old.get_model("auth", "User").objects.create(username="old")
    chat = old.get_model("conversations", "Conversation").objects.create(
        owner=user, model="local", title="Old")
    old.get_model("conversations", "Turn").objects.create(
        conversation=chat, client_id="c1", status="completed", text=text)

    migrate(("conversations", "0010_search_unaccent"))  # search reads 0010's configuration
    connection.__dict__.pop("_chatsite_fts5", None)  # the index may have come back: look again

    assert list(search.conversation_ids(query)) == [chat.pk]
