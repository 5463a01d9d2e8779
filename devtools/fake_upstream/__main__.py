"""Run the fake upstream in the foreground: `python -m devtools.fake_upstream --port N`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from devtools.fake_upstream.server import FakeUpstream


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--api-key", default=None, help="require this key (default: any key)")
    parser.add_argument("--delta-interval", type=float, default=0.0, help="seconds per delta")
    parser.add_argument("--deltas", type=int, default=None, help="text deltas per echo reply")
    parser.add_argument("--emit-timestamps", action="store_true", help='add "_emitted" to events')
    parser.add_argument("--stamp-text", action="store_true", help='end text deltas with "[n:time]"')
    args = parser.parse_args(argv)
    server = FakeUpstream(args.host, args.port, api_key=args.api_key,
                          delta_interval=args.delta_interval, deltas=args.deltas,
                          emit_timestamps=args.emit_timestamps, stamp_text=args.stamp_text)

    async def run() -> None:
        task = asyncio.ensure_future(server.serve_forever())
        while server.port == 0 and not task.done():
            await asyncio.sleep(0.01)
        print(f"fake upstream listening on {server.base_url}", flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
