"""Development tools shared by the tests and the benchmarks (never imported by the app):
the fake Interactions server and loopback port helpers."""
