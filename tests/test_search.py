"""Search over what was said (conversations/search.py), on SQLite (FTS5, or the `icontains`
fallback) and on PostgreSQL (full-text search): the last test runs this file (and the
exports' and migrations' tests) there."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from conversations import search, services
from conversations.models import Conversation, Turn

ROOT = Path(__file__).resolve().parents[1]
JSON = {"HTTP_ACCEPT": "application/json"}


def chat(owner, message: str, reply: str = "", title: str = "") -> Conversation:
    """A conversation with one finished turn, written the way the runner writes it."""
    conversation = services.conversation_create(owner=owner, model="local", title=title)
    turn, _ = services.turn_create(conversation=conversation, client_id="1", parent=None,
                                   input=[{"type": "text", "text": message}])
    steps = [{"type": "model_output", "content": [{"type": "text", "text": reply}]}]
    services.turn_finish(turn_id=turn.pk, status="completed", steps=steps, seq=1)
    return conversation


def found(query: str, owner) -> list[str]:
    return [c.title for c in search.search(query, owner=owner).conversations]


@pytest.fixture
def words_only():
    """SQLite without FTS5, as search sees it: the `icontains` fallback."""
    if connection.vendor != "sqlite":
        pytest.skip("the fallback stands in for SQLite's FTS5")
    connection._chatsite_fts5 = False
    yield
    del connection._chatsite_fts5


def test_it_finds_a_word_of_a_reply(alice_client, alice):
    chat(alice, "How do plants eat?", "By photosynthesis, mostly.", title="Plants")
    chat(alice, "Something else", "Nothing to see.", title="Other")
    response = alice_client.get("/c/search", {"q": "photosynthesis"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Plants" in html and "Other" not in html
    assert "<mark>photosynthesis</mark>" in html


def test_it_never_shows_another_users_conversations(alice_client, alice, bob):
    chat(alice, "mine", "a shared word: quokka", title="Alice's")
    bobs = chat(bob, "his", "quokka again", title="Bob's")
    items = alice_client.get("/c/search", {"q": "quokka"}, **JSON).json()["conversations"]
    assert [c["title"] for c in items] == ["Alice's"]
    assert "<mark>quokka</mark>" in items[0]["snippet"]
    assert bobs.pk not in set(search.conversation_ids("quokka", owner=alice))


def test_reviewers_search_everyones_conversations_as_a_subquery(alice, bob):
    mine, his = chat(alice, "wombat facts", title="A"), chat(bob, "wombat", title="B")
    chat(bob, "nothing here", title="C")
    matching = Conversation.objects.filter(pk__in=search.conversation_ids("wombat"))
    assert set(matching) == {mine, his}


def test_it_escapes_the_snippet_before_marking_it(alice):
    chat(alice, "payload", 'a marmot <img src=x onerror="alert(1)"> <b>bold</b>', title="XSS")
    snippet = search.search("marmot", owner=alice).conversations[0].snippet
    assert "<img" not in snippet and "<b>" not in snippet
    assert "&lt;" in snippet and "<mark>marmot</mark>" in snippet


def test_marks_are_always_balanced():
    assert search.mark("\x02a\x02b\x03\x03c\x02d") == "<mark>ab</mark>c<mark>d</mark>"
    assert search.mark("<\x03x") == "&lt;x"


def test_a_script_tag_does_not_hide_the_words_after_it(alice):
    chat(alice, "explain", "Put <script> first, then the capybara loader.", title="HTML")
    assert found("capybara", alice) == ["HTML"]


def test_the_word_being_typed_matches_as_a_prefix(alice):
    chat(alice, "tax question", "Your return is due in April.", title="Taxes")
    assert found("tax retu", alice) == ["Taxes"]
    assert found("tax retu ", alice) == []  # a finished word is matched whole


def test_it_takes_web_search_syntax(alice):
    chat(alice, "the fat rat sat", title="Rat")
    chat(alice, "a sad cat", title="Cat")
    chat(alice, "a fat cat", title="Fat cat")
    assert sorted(found('"fat rat"', alice)) == ["Rat"]
    assert sorted(found("fat -cat", alice)) == ["Rat"]
    assert sorted(found("rat or sad", alice)) == ["Cat", "Rat"]
    assert sorted(found("cat", alice)) == ["Cat", "Fat cat"]


@pytest.mark.parametrize("query", ['"', "*", "(", ")", "AND", "NOT x", "a:b", "'", "-",
                                   "NEAR(a b)", "^", "col:umn*", '"unclosed phrase'])
def test_query_syntax_characters_never_break_it(alice, query):
    chat(alice, "plain text about a b and x", title="Plain")
    assert isinstance(found(query, alice), list)
    assert isinstance(list(search.conversation_ids(query)), list)


def test_title_matches_come_first_then_the_most_relevant(alice):
    chat(alice, "one mention of lemur among many other words in a long message", title="Once")
    chat(alice, "lemur lemur lemur", title="Thrice")
    chat(alice, "no match here", title="Lemur notes")
    assert found("lemur", alice) == ["Lemur notes", "Thrice", "Once"]


def test_a_reply_is_searchable_once_it_finishes_and_gone_once_deleted(alice):
    conversation = chat(alice, "first", "the narwhal answer", title="Sea")
    assert found("narwhal", alice) == ["Sea"]
    services.conversation_delete(conversation=conversation)
    assert found("narwhal", alice) == []
    assert list(search.conversation_ids("narwhal")) == []


def test_it_lists_at_most_search_results_and_says_so(alice_client, alice, settings):
    settings.SEARCH_RESULTS = 2
    for n in range(3):
        chat(alice, f"ibis number {n}", title=f"Ibis {n}")
    response = alice_client.get("/c/search", {"q": "ibis"})
    html = response.content.decode()
    assert html.count('class="conv"') == 2
    assert "Only the 2 best matches are shown" in html
    assert alice_client.get("/c/search", {"q": "ibis"}, **JSON).json()["more"] is True


def test_the_chat_page_sidebar_shows_message_matches(alice_client, alice):
    conversation = chat(alice, "hello", "an okapi appears", title="Zoo")
    response = alice_client.get(f"/c/{conversation.id}/", {"q": "okapi"})
    assert "<mark>okapi</mark>" in response.content.decode()


def test_accents_are_ignored_whichever_side_has_them(alice):
    chat(alice, "Un café crème", "Tiếng Việt, déjà vu", title="Accents")
    chat(alice, "plain resume", title="Plain")
    assert found("cafe creme", alice) == ["Accents"]
    assert found("tieng viet", alice) == ["Accents"]  # two marks on one letter: ệ
    assert found("caf", alice) == ["Accents"]  # the word being typed, as a prefix
    assert found("résumé", alice) == ["Plain"]
    assert found('"deja vu"', alice) == ["Accents"]
    snippet = search.search("cafe", owner=alice).conversations[0].snippet
    assert "<mark>café</mark>" in snippet  # the word as written is marked


@pytest.mark.parametrize("fallback", [False, True])
def test_a_query_of_only_excluded_words_lists_the_chats_that_never_say_them(
        request, alice, bob, fallback):
    if fallback:
        request.getfixturevalue("words_only")
    both = chat(alice, "a cat", title="Both")
    services.turn_create(conversation=both, client_id="2", parent=Turn.objects.get(
        conversation=both), input=[{"type": "text", "text": "no animal here"}])
    chat(alice, "a dog", title="Dog")
    chat(alice, "the fat cat sat", title="Fat cat")
    chat(alice, "a bird", title="Cat notes")  # the title says it
    bobs = chat(bob, "another dog", title="Bob's")
    assert found("-cat", alice) == ["Dog"]
    assert found('-"fat cat"', alice) == ["Cat notes", "Dog", "Both"]  # newest first
    assert found("-dog -bird", alice) == ["Fat cat", "Both"]
    assert set(search.conversation_ids("-cat")) == {
        *Conversation.objects.filter(title="Dog").values_list("pk", flat=True), bobs.pk}
    assert search.search("-cat", owner=alice).conversations[0].snippet == ""


def test_the_fallback_finds_every_word_without_fts5(alice, words_only):
    chat(alice, "the Aardvark", "digs at NIGHT", title="Digger")
    chat(alice, "aardvark by day", title="Day")
    assert found("aardvark night", alice) == ["Digger"]
    assert sorted(found("aardvark -night", alice)) == ["Day"]
    snippet = search.search("night", owner=alice).conversations[0].snippet
    assert "<mark>NIGHT</mark>" in snippet


def test_the_fts5_index_follows_every_change_to_a_turn(alice):
    if search._backend() != "fts5":
        pytest.skip("SQLite's FTS5 index")
    conversation = chat(alice, "before", title="Edit")
    Turn.objects.filter(conversation=conversation).update(text="after the dugong")
    assert found("dugong", alice) == ["Edit"] and found("before", alice) == []
    with connection.cursor() as cursor:  # raises when the index and its content disagree
        cursor.execute(f"INSERT INTO {search.FTS_TABLE}({search.FTS_TABLE}) "
                       "VALUES ('integrity-check')")


def test_postgresql_uses_the_gin_index(alice):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's GIN index")
    chat(alice, "a gazelle", title="G")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a tiny table is otherwise scanned
    plan = search._matching_turns("gazelle café").explain()
    assert "turn_text_search" in plan


@pytest.mark.timeout(660)
@pytest.mark.skipif(os.getenv("DATABASE_URL", "").startswith("postgres"),
                    reason="already running on PostgreSQL")
def test_search_exports_and_migrations_run_on_postgresql():
    from devtools.team import POSTGRES, reachable, team_database

    if not reachable(POSTGRES):
        pytest.skip("needs PostgreSQL on 5432")
    with team_database() as database:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/test_search.py", "tests/test_exports.py",
             "tests/test_migrations.py", "-q", "-rs", "-p", "no:randomly",
             "-p", "no:cacheprovider"],
            cwd=ROOT, env=dict(os.environ, DATABASE_URL=database), capture_output=True,
            text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "PostgreSQL's GIN index" not in run.stdout  # that test ran there, not skipped
