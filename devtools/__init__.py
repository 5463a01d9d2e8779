"""Development tools shared by the tests and the benchmarks (never imported by the app):
the fake Interactions server, loopback port helpers, /proc readings, the team deployment,
a client's view of turns and the team soak."""
