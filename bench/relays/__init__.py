"""The relays bench_relay.py compares chatsite against, and the websocket client workers it runs."""
