"""The branch on screen: which turns a socket gets on opening, on switching versions and on
scrolling up (selectors.branch_*), on SQLite and, in test_team.py's database, PostgreSQL."""

import pytest

from conversations import selectors, services
from conversations.models import Turn


def send(conversation, client_id, parent=None):
    turn, _ = services.turn_create(conversation=conversation, client_id=client_id,
                                   input=[{"type": "text", "text": client_id}], parent=parent)
    services.turn_finish(turn_id=turn.pk, status=Turn.Status.COMPLETED, steps=[], seq=1)
    return Turn.objects.get(pk=turn.pk)


def chain(conversation, n, parent=None, prefix="t"):
    turns = []
    for i in range(n):
        parent = send(conversation, f"{prefix}{i}", parent)
        turns.append(parent)
    return turns


def ids(turns):
    return [t["client_id"] for t in turns]


@pytest.fixture
def tree(conversation):
    """a0 ─ a1 ─ a2 ─ a3      (a1 has a second version, b0, with b1 below it)
       └ b0 ─ b1"""
    a = chain(conversation, 4, prefix="a")
    b = chain(conversation, 2, parent=a[0], prefix="b")
    conversation.refresh_from_db()
    return a, b


def test_an_empty_conversation_has_no_branch(conversation):
    assert selectors.branch_tail(conversation=conversation, limit=10) == []


def test_the_newest_turn_ends_the_branch_on_screen(tree, conversation):
    assert ids(selectors.branch_tail(conversation=conversation, limit=10)) == ["a0", "b0", "b1"]


def test_opening_sends_only_the_newest_page_of_a_long_branch(conversation,
                                                             django_assert_max_num_queries):
    chain(conversation, 60)
    conversation.refresh_from_db()
    with django_assert_max_num_queries(3):  # the leaf is remembered: walk, turns, siblings
        tail = selectors.branch_tail(conversation=conversation, limit=25)
    assert ids(tail) == [f"t{i}" for i in range(35, 60)]


def test_each_turn_lists_its_siblings_oldest_first(tree, conversation):
    a, b = tree
    turns = selectors.turns_with_siblings(conversation=conversation,
                                          ids=[a[0].pk, a[1].pk, b[0].pk, a[3].pk])
    assert [t["siblings"] for t in turns] == [
        [str(a[0].pk)], [str(a[1].pk), str(b[0].pk)], [str(a[1].pk), str(b[0].pk)],
        [str(a[3].pk)]]


def test_root_versions_are_siblings_too(conversation):
    first, second = send(conversation, "x"), send(conversation, "y")
    [turn] = selectors.turns_with_siblings(conversation=conversation, ids=[second.pk])
    assert turn["siblings"] == [str(first.pk), str(second.pk)]


def test_switching_to_a_version_follows_its_newest_turns_down(tree, conversation):
    a, b = tree
    send(conversation, "a2-older-sibling-is-not-newest", parent=a[1])  # now newest under a1
    assert ids(selectors.branch_from(turn=a[1])) == ["a1", "a2-older-sibling-is-not-newest"]
    assert ids(selectors.branch_from(turn=b[1])) == ["b1"]


def test_the_branch_shown_is_remembered(tree, conversation):
    a, b = tree
    services.conversation_show_branch(conversation=conversation, leaf_id=a[3].pk)
    conversation.refresh_from_db()
    assert ids(selectors.branch_tail(conversation=conversation, limit=10)) == [
        "a0", "a1", "a2", "a3"]
    new = send(conversation, "c", parent=a[0])  # a new version is shown
    conversation.refresh_from_db()
    assert conversation.branch_leaf_id == new.pk


def test_scrolling_up_gets_the_page_above(conversation):
    turns = chain(conversation, 12)
    assert ids(selectors.branch_before(turn=turns[7], limit=5)) == [f"t{i}" for i in range(2, 7)]
    assert ids(selectors.branch_before(turn=turns[2], limit=5)) == ["t0", "t1"]
    assert selectors.branch_before(turn=turns[0], limit=5) == []


def test_the_cost_of_opening_does_not_grow_with_the_tree(conversation,
                                                         django_assert_max_num_queries):
    turns = chain(conversation, 300)
    for turn in turns[::10]:  # versions everywhere
        send(conversation, f"v{turn.client_id}", parent=turn)
    services.conversation_show_branch(conversation=conversation, leaf_id=turns[-1].pk)
    conversation.refresh_from_db()
    with django_assert_max_num_queries(3):
        tail = selectors.branch_tail(conversation=conversation, limit=20)
    assert len(tail) == 20 and tail[-1]["id"] == str(turns[-1].pk)
