"""Benchmark: what one channel-layer hop costs, on the three layers chatsite can run on.

Per streamed delta the turn runner calls `group_send("conv.<id>", {"type": "turn.frame",
"text": <frame>})` and every websocket consumer in the group gets it from `receive(channel)`.
This measures exactly that, with a ~200-byte frame, on:
  memory  — conversations.layers.StreamingInMemoryChannelLayer (the embedded default);
  classic — conversations.layers.TidyRedisChannelLayer (channels_redis's RedisChannelLayer);
  pubsub  — channels_redis.pubsub.RedisPubSubChannelLayer.
configured as chatsite/settings.py configures them, but built directly (no Django settings).

  hop      one sender, one receiver channel in the group, one message at a time (send, wait
           for it, send the next): p50/p99 of group_send -> receive, after a warm-up. For
           the Redis layers also with the receiver in a second process (this script with
           `--role receiver`), which acks each message so the next is sent only then; the
           time reported is one way, from a time.time() stamp in the message (one machine,
           one clock), and round trip / 2 is kept in the JSON for comparison.
  load     --groups groups of one receiver channel each and as many senders, each sending
           --rate messages a second for --seconds (like that many streaming conversations),
           all in this process: CPU seconds of this process and of redis-server (INFO cpu)
           per 1,000 messages, p50/p99 latency, and messages lost (must be 0).

Redis database 9 (--redis) is emptied (FLUSHDB) before each measurement.

    .venv/bin/python bench/bench_layers.py [--messages 2000] [--groups 100] [--rate 20]
                                           [--seconds 10] [--layers memory,classic,pubsub]
                                           [--redis redis://127.0.0.1:6379/9]

Raw results go to bench/results/layers-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from channels_redis.pubsub import RedisPubSubChannelLayer  # noqa: E402

from bench.relays.step import percentile  # noqa: E402
from conversations.layers import (  # noqa: E402
    StreamingInMemoryChannelLayer,
    TidyRedisChannelLayer,
)

RESULTS = ROOT / "bench" / "results"
LAYERS = ("memory", "classic", "pubsub")
WARMUP = 200  # messages before a hop measurement starts
SETTLE = 0.2  # seconds for pubsub subscriptions to take effect (Redis confirms them later)
TIMEOUT = 30.0  # seconds to wait for one message before giving up on a layer
DRAIN = 5.0  # seconds without a message after which the rest under load counts as lost

# A turn.update frame as the runner serializes it, about 200 bytes.
FRAME = json.dumps({
    "type": "turn.update", "turn_id": str(uuid.UUID(int=1)), "seq": 1234,
    "ops": [{"op": "append", "path": "steps/0/text",
             "text": "The quick brown fox jumps over the lazy dog, and then some more " * 2}],
}, separators=(",", ":"))[:200]


def make_layer(name: str, redis_url: str, max_connections: int | None = None):
    """The layer `name`, configured as chatsite/settings.py configures it."""
    host = {"address": redis_url, "socket_timeout": 30, "socket_keepalive": True}
    if max_connections:  # not in the app's settings: redis-py's default pool holds 100
        host["max_connections"] = max_connections
    if name == "memory":
        return StreamingInMemoryChannelLayer(capacity=10000)
    if name == "classic":
        return TidyRedisChannelLayer(hosts=[host], capacity=10000)
    return RedisPubSubChannelLayer(hosts=[host])


async def close_layer(layer) -> None:
    """Close the layer's Redis connections, so the next measurement starts from none."""
    if isinstance(layer, TidyRedisChannelLayer):
        await layer.close_pools()
    else:
        await layer.flush()


def message(seq: int) -> dict:
    """The runner's envelope, plus the sequence number and send time this benchmark needs."""
    return {"type": "turn.frame", "text": FRAME, "seq": seq, "sent": time.time()}


def new_group() -> str:
    return f"conv.{uuid.uuid4().hex}"


async def receive(layer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), TIMEOUT)


def flush_redis(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()


def redis_answers(redis_url: str) -> bool:
    try:
        with redis.Redis.from_url(redis_url, socket_connect_timeout=2) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def redis_cpu(redis_url: str) -> float:
    """CPU seconds redis-server has used so far (all clients', not only ours); 0 when no
    Redis answers (the in-memory layer is then measured alone)."""
    try:
        with redis.Redis.from_url(redis_url, socket_connect_timeout=2) as client:
            info = client.info("cpu")
    except redis.ConnectionError:
        return 0.0
    return info["used_cpu_sys"] + info["used_cpu_user"]


async def redis_background(redis_url: str) -> float:
    """redis-server's CPU seconds per second while we send nothing: other clients' share."""
    before = redis_cpu(redis_url)
    await asyncio.sleep(1)
    return redis_cpu(redis_url) - before


def percentiles(seconds: list[float]) -> dict:
    """p50 and p99 in microseconds (as bench_relay.py takes them)."""
    return {f"p{q}": None if value is None else round(value * 1e6, 1)
            for q in (50, 99) for value in [percentile(seconds, q)]}


def micros(seconds: list[float]) -> list[int]:
    return [round(s * 1e6) for s in seconds]


# --- one hop at a time ---------------------------------------------------------------------

async def hop_same_process(name: str, args: argparse.Namespace) -> dict:
    """Sender and receiver in this process: group_send, receive, next."""
    layer = make_layer(name, args.redis, args.max_connections)
    channel = await layer.new_channel()
    group = new_group()
    await layer.group_add(group, channel)
    await asyncio.sleep(SETTLE)
    latencies = []
    for seq in range(WARMUP + args.messages):
        await layer.group_send(group, message(seq))
        received = await receive(layer, channel)
        if seq >= WARMUP:
            latencies.append(time.time() - received["sent"])
    await close_layer(layer)
    return {**percentiles(latencies), "samples_us": micros(latencies)}


async def hop_across_processes(name: str, args: argparse.Namespace) -> dict:
    """The receiver in a second process, acking each message on our reply channel."""
    layer = make_layer(name, args.redis, args.max_connections)
    reply = await layer.new_channel()
    group = new_group()
    count = WARMUP + args.messages
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--role", "receiver", "--layers", name, "--redis", args.redis,
         "--group", group, "--reply", reply, "--messages", str(count),
         "--max-connections", str(args.max_connections or 0)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ready = await asyncio.wait_for(layer.receive(reply), 60)  # its startup and joins
        assert ready["type"] == "ready", ready
        round_trips = []
        for seq in range(count):
            start = time.time()
            await layer.group_send(group, message(seq))
            ack = await receive(layer, reply)
            assert ack["seq"] == seq, (ack, seq)
            if seq >= WARMUP:
                round_trips.append(time.time() - start)
        out, _ = await asyncio.to_thread(receiver.communicate, timeout=60)
    finally:
        if receiver.poll() is None:
            receiver.kill()
        await close_layer(layer)
    one_way = json.loads(out)[WARMUP:]
    half = [rtt / 2 for rtt in round_trips]
    return {**percentiles(one_way), "round_trip_half": percentiles(half),
            "samples_us": micros(one_way)}


async def run_receiver(args: argparse.Namespace) -> None:
    """--role receiver: join the group, say ready, ack each message; print the one-way times."""
    layer = make_layer(args.layers, args.redis, args.max_connections)
    channel = await layer.new_channel()
    await layer.group_add(args.group, channel)
    await asyncio.sleep(SETTLE)
    await layer.send(args.reply, {"type": "ready"})
    one_way = []
    for _ in range(args.messages):
        received = await receive(layer, channel)
        one_way.append(time.time() - received["sent"])
        await layer.send(args.reply, {"type": "ack", "seq": received["seq"]})
    await close_layer(layer)
    print(json.dumps(one_way))


# --- many streams at once ------------------------------------------------------------------

async def drain(consumers: list[asyncio.Task], latencies: list[float]) -> None:
    """Wait for the receivers until all are done, or none got anything for DRAIN seconds:
    a layer that fell behind is still catching up, and only what never comes is lost."""
    seen, last_progress = -1, time.monotonic()
    while time.monotonic() - last_progress < DRAIN:
        _, pending = await asyncio.wait(consumers, timeout=0.5)
        if not pending:
            return
        if len(latencies) > seen:
            seen, last_progress = len(latencies), time.monotonic()


async def under_load(name: str, args: argparse.Namespace) -> dict:
    """--groups streams at --rate messages/s for --seconds, receivers in this process."""
    layer = make_layer(name, args.redis, args.max_connections)
    pairs = []
    for _ in range(args.groups):
        group, channel = new_group(), await layer.new_channel()
        await layer.group_add(group, channel)
        pairs.append((group, channel))
    await asyncio.sleep(SETTLE)
    for group, channel in pairs:  # warm-up: opens the connections, fills the caches
        await layer.group_send(group, message(-1))
        await receive(layer, channel)

    loop = asyncio.get_running_loop()
    per_stream = round(args.rate * args.seconds)
    latencies: list[float] = []
    errors: list[str] = []

    async def consume(channel: str) -> None:
        for _ in range(per_stream):
            received = await layer.receive(channel)
            latencies.append(time.time() - received["sent"])

    async def stream(group: str, offset: float) -> None:
        start = loop.time() + offset
        for seq in range(per_stream):
            await asyncio.sleep(max(0.0, start + seq / args.rate - loop.time()))
            try:
                await layer.group_send(group, message(seq))
            except Exception as error:  # e.g. redis-py's pool is out of connections: lost
                errors.append(f"{type(error).__name__}: {error}")

    background = await redis_background(args.redis)
    consumers = [asyncio.create_task(consume(channel)) for _, channel in pairs]
    redis_before, cpu_before, wall_before = redis_cpu(args.redis), time.process_time(), \
        time.perf_counter()
    # Streams start spread over one interval, as conversations do not tick in step.
    await asyncio.gather(*(stream(group, k / (args.groups * args.rate))
                           for k, (group, _) in enumerate(pairs)))
    send_seconds = time.perf_counter() - wall_before
    await drain(consumers, latencies)
    cpu = time.process_time() - cpu_before
    redis_used = redis_cpu(args.redis) - redis_before
    wall = time.perf_counter() - wall_before
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    await close_layer(layer)
    background = (background + await redis_background(args.redis)) / 2
    redis_net = max(0.0, redis_used - background * wall)

    sent = per_stream * len(pairs) - len(errors)
    thousands = max(len(latencies), 1) / 1000
    return {
        **percentiles(latencies), "sent": sent, "received": len(latencies),
        "send_errors": len(errors), "first_error": errors[0] if errors else None,
        "lost": sent + len(errors) - len(latencies), "send_seconds": round(send_seconds, 2),
        "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 3),
        "redis_cpu_seconds": round(redis_used, 3),
        "redis_background_per_second": round(background, 4),
        "redis_cpu_net_seconds": round(redis_net, 3),
        "cpu_per_1000": round(cpu / thousands, 4),
        "redis_cpu_per_1000": round(redis_net / thousands, 4),
        "samples_us": micros(latencies),
    }


# --- report --------------------------------------------------------------------------------

def us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def pair(result: dict | None) -> str:
    return "-" if result is None else f"{us(result['p50'])} / {us(result['p99'])}"


def print_table(results: dict[str, dict]) -> None:
    header = (f"{'layer':<8} {'hop p50/p99 µs':>18} {'across procs µs':>18} "
              f"{'CPU s/1k app':>13} {'Redis s/1k':>11} {'load p50/p99 µs':>24} {'lost':>6}")
    print(header)
    print("-" * len(header))
    for name, result in results.items():
        load = result["load"]
        redis_per_1000 = "-" if name == "memory" else f"{load['redis_cpu_per_1000']:.4f}"
        print(f"{name:<8} {pair(result['hop']):>18} {pair(result['hop_across']):>18} "
              f"{load['cpu_per_1000']:>13.4f} {redis_per_1000:>11} {pair(load):>24} "
              f"{load['lost']:>6}")


def print_ratios(results: dict[str, dict]) -> None:
    def app(name: str) -> float:
        return results[name]["load"]["cpu_per_1000"]

    def total(name: str) -> float:
        return app(name) + (results[name]["load"]["redis_cpu_per_1000"] if name != "memory"
                            else 0.0)

    comparisons = [(name, "memory") for name in ("classic", "pubsub")]
    comparisons.append(("pubsub", "classic"))
    for name, base in comparisons:
        if name in results and base in results and app(base) > 0:
            print(f"{name} vs {base}: CPU per 1,000 messages {app(name) / app(base):.2f}x in "
                  f"the app process, {total(name) / total(base):.2f}x with redis-server's")


def print_details(results: dict[str, dict], args: argparse.Namespace) -> None:
    for name, result in results.items():
        load = result["load"]
        across = result["hop_across"]
        rtt = f"; across procs, round trip / 2: {pair(across['round_trip_half'])} µs" \
            if across else ""
        others = " (all of it other clients': this layer uses no Redis)" \
            if name == "memory" else ""
        print(f"  {name}: load sent {load['sent']:,} in {load['send_seconds']} s "
              f"(scheduled {args.seconds:g} s), received {load['received']:,}; app CPU "
              f"{load['cpu_seconds']} s, redis-server CPU {load['redis_cpu_seconds']} s"
              f"{others}, of which other clients' (idle rate x time) "
              f"{load['redis_cpu_seconds'] - load['redis_cpu_net_seconds']:.3f} s{rtt}")
        if load["send_errors"]:
            print(f"    {load['send_errors']:,} group_sends failed (counted as lost), the "
                  f"first with {load['first_error']}")
        for error, count in result["background_errors"].items():
            print(f"    {count:,} of the layer's own background tasks failed with {error}")


# --- main ----------------------------------------------------------------------------------

async def measure(name: str, args: argparse.Namespace) -> dict:
    """All measurements of one layer, each from an empty Redis database."""
    result: dict = {"hop_across": None}
    redis_used = name != "memory"
    if redis_used:
        flush_redis(args.redis)
    result["hop"] = await hop_same_process(name, args)
    if redis_used:  # the in-memory layer has one process only: there is no across
        flush_redis(args.redis)
        result["hop_across"] = await hop_across_processes(name, args)
        flush_redis(args.redis)
    result["load"] = await under_load(name, args)
    load = result["load"]
    print(f"  {name:<8} hop {pair(result['hop'])} µs, across {pair(result['hop_across'])} µs, "
          f"load {pair(load)} µs, {load['cpu_per_1000']:.4f} CPU s/1k, lost {load['lost']}",
          flush=True)
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="messages per hop test")
    parser.add_argument("--groups", type=int, default=100, help="concurrent streams under load")
    parser.add_argument("--rate", type=float, default=20, help="messages/s per stream")
    parser.add_argument("--seconds", type=float, default=10, help="how long the load lasts")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9",
                        help="Redis URL (its database is emptied)")
    parser.add_argument("--layers", default=",".join(LAYERS), help="comma-separated: "
                        + ",".join(LAYERS))
    parser.add_argument("--max-connections", type=int, help="the Redis layers' connection "
                        "pool size (default: as the app, redis-py's default of 100)")
    # The receiver process of the hop across processes.
    parser.add_argument("--role", choices=("bench", "receiver"), default="bench",
                        help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--reply", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "bench":
        args.layers = args.layers.split(",")
        unknown = set(args.layers) - set(LAYERS)
        if unknown:
            parser.error(f"unknown layers: {', '.join(sorted(unknown))}")
    return args


def counting(errors: Counter[str]):
    """An event-loop exception handler that counts each error in `errors`."""
    def handle(_loop: asyncio.AbstractEventLoop, context: dict) -> None:
        errors[repr(context.get("exception") or context["message"])] += 1
    return handle


async def bench(args: argparse.Namespace) -> dict[str, dict]:
    """Measure each layer; errors of the layers' own background tasks are counted, not
    printed (channels_redis's backup cleanup fails like group_send when the pool is out)."""
    results: dict[str, dict] = {}
    loop = asyncio.get_running_loop()
    for name in args.layers:
        errors: Counter[str] = Counter()
        loop.set_exception_handler(counting(errors))
        results[name] = await measure(name, args)
        results[name]["background_errors"] = dict(errors)
    return results


def main() -> None:
    args = parse_args()
    if args.role == "receiver":
        asyncio.run(run_receiver(args))
        return
    cores = os.cpu_count() or 1
    print(f"channel-layer benchmark: {cores} cores, Python {platform.python_version()}; "
          f"hop: {args.messages} messages after {WARMUP} warm-up; load: {args.groups} streams "
          f"x {args.rate:g}/s x {args.seconds:g} s; Redis {args.redis} "
          f"(load average now: {', '.join(f'{x:.1f}' for x in os.getloadavg())})", flush=True)
    if not redis_answers(args.redis):
        args.layers = [name for name in args.layers if name == "memory"]
        print(f"Redis does not answer at {args.redis}: only the in-memory layer is measured.")
    if not args.layers:
        return
    results = asyncio.run(bench(args))
    print()
    print_table(results)
    print()
    print_ratios(results)
    print()
    print("hop: group_send -> receive, one at a time, one way (time.time() stamp in the message); "
          "across procs: the receiver in a second process, which acks each message.")
    print("load: all in this process; CPU = time.process_time() of this process and "
          "redis-server's INFO used_cpu_sys + used_cpu_user, per 1,000 messages received;\n"
          "      Redis's less what it used per second, idle, just before and after (other "
          "clients share this server).")
    print_details(results, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"layers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "machine": {"cores": cores, "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg": os.getloadavg()},
        "config": {**{k: v for k, v in vars(args).items() if k not in ("group", "reply")},
                   "warmup": WARMUP, "frame_bytes": len(FRAME)},
        "results": results,
    }))
    print(f"\nraw results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
