"""The offline model's waiting line: bounded, and served round-robin across users."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_REMEMBERED_USERS = 1000  # users whose last turn is remembered, for fairness


class QueueFull(Exception):
    """No room for another waiting reply; the message says why and what to do."""


class FairQueue(Generic[T]):
    """Items wait per user; `pop` serves the waiting user served least recently, so one
    user's burst delays someone else's reply by at most the one already running.
    Not thread-safe: the caller locks."""

    def __init__(self, *, limit: int, per_user: int) -> None:
        self.limit = limit
        self.per_user = per_user
        self._users: OrderedDict[Hashable, deque[T]] = OrderedDict()  # in order of arrival
        self._served: OrderedDict[Hashable, int] = OrderedDict()  # user -> when last served
        self._turn = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[T]:
        for items in self._users.values():
            yield from items

    def push(self, user: Hashable, item: T, *, enforce: bool = True) -> None:
        """Add an item; with `enforce`, refuse it (QueueFull) when a limit is reached."""
        if enforce and (refusal := self._refusal(user)):
            raise QueueFull(refusal)
        self._users.setdefault(user, deque()).append(item)
        self._count += 1

    def _refusal(self, user: Hashable) -> str | None:
        mine = len(self._users.get(user, ()))
        if mine >= self.per_user:
            return (f"You already have {_replies(mine)} waiting for the offline model (the "
                    f"limit is {self.per_user}). Wait for one to finish, then try again.")
        if self._count >= self.limit:
            return (f"The offline model is busy: {_replies(self._count)} already waiting for "
                    "it, the most this server allows. Try again in a minute.")
        return None

    def pop(self) -> T | None:
        """The next item, from the user whose turn it is; None when nothing waits."""
        if not self._users:
            return None
        user = min(self._users, key=lambda u: self._served.get(u, -1))  # ties: first come
        items = self._users[user]
        item = items.popleft()
        if not items:
            del self._users[user]
        self._count -= 1
        self._turn += 1
        self._served[user] = self._turn
        self._served.move_to_end(user)
        while len(self._served) > _REMEMBERED_USERS:
            self._served.popitem(last=False)
        return item

    def remove(self, item: T) -> bool:
        for user, items in self._users.items():
            if item in items:
                items.remove(item)
                if not items:
                    del self._users[user]
                self._count -= 1
                return True
        return False

    def clear(self) -> list[T]:
        items = list(self)
        self._users.clear()
        self._count = 0
        return items


def _replies(n: int) -> str:
    return "1 reply" if n == 1 else f"{n} replies"
