"""What the soak does: how long, how many sockets, how much traffic."""

from __future__ import annotations

from dataclasses import dataclass

# What each conversation does, round after round: mostly a message; a stop (sent from the
# other process's socket), a socket closed and opened again between replies, and a socket
# that leaves mid-reply and joins again.
ROUNDS = ("send", "stop", "send", "reconnect", "send", "rejoin", "send", "send", "send", "send")

# Growth per minute of a daphne process's resident memory, as a least-squares slope over the
# second half of the run, above which the soak fails (see bench/soak_team.py).
MAX_GROWTH_MIB_PER_MINUTE = 0.25


@dataclass
class Plan:
    seconds: float = 600.0
    idle: int = 20  # sockets that only listen, spread over the processes
    chats: int = 4  # conversations with traffic, a socket on each process
    pause: tuple[float, float] = (2.0, 6.0)  # seconds between a chat's rounds
    deltas: int = 40  # text deltas per reply
    delta_interval: float = 0.05  # seconds between deltas: a reply streams for 2 s
    sample_every: float = 5.0  # seconds between memory samples
    warmup: float = 120.0  # seconds of traffic before the memory figures start
    turn_timeout: float = 30.0  # seconds a reply may take to reach every socket
    seed: int = 1
