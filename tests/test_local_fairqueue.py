import pytest

from conversations.local.fairqueue import FairQueue, QueueFull


def drain(queue: FairQueue) -> list:
    items = []
    while (item := queue.pop()) is not None:
        items.append(item)
    return items


def test_it_serves_users_in_turn_not_in_order_of_arrival():
    queue = FairQueue(limit=10, per_user=5)
    for item in ("a1", "a2", "a3"):
        queue.push("ann", item)
    queue.push("bob", "b1")
    queue.push("cat", "c1")

    assert drain(queue) == ["a1", "b1", "c1", "a2", "a3"]


def test_a_user_served_last_waits_behind_one_never_served():
    queue = FairQueue(limit=10, per_user=5)
    queue.push("ann", "a1")
    assert queue.pop() == "a1"
    queue.push("ann", "a2")
    queue.push("bob", "b1")

    assert drain(queue) == ["b1", "a2"]


def test_it_refuses_past_the_limit_per_user_and_overall():
    queue = FairQueue(limit=3, per_user=2)
    queue.push("ann", 1)
    queue.push("ann", 2)
    with pytest.raises(QueueFull, match="You already have 2 replies waiting"):
        queue.push("ann", 3)
    queue.push("bob", 4)
    with pytest.raises(QueueFull, match="busy: 3 replies already waiting"):
        queue.push("cat", 5)
    assert len(queue) == 3


def test_it_removes_and_clears():
    queue = FairQueue(limit=5, per_user=5)
    queue.push("ann", 1)
    queue.push("bob", 2)

    assert queue.remove(1) and not queue.remove(1)
    assert list(queue) == [2] and len(queue) == 1
    assert queue.clear() == [2] and len(queue) == 0 and queue.pop() is None
