"""What bench/bench_relay.py runs and measures, one concern a module.

bare.py, naive.py   the relays chatsite is compared against (run as `python -m bench.relays.*`)
common.py           what those two relays share: the upstream stream, frames, a daphne runner
clients.py          the websocket client worker processes
servers.py          the relay servers under test: how to start each and reach its conversations
processes.py        starting and stopping processes, their CPU from /proc
step.py             one step of the ladder: run, measure, summarize
report.py           the result tables, the capacities and the target checks
"""
