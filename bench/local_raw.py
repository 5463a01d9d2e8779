"""Plain llama-cpp-python, the floor bench_local.py measures the app against.

    python bench/local_raw.py --model FILE [--n-ctx 2048] [--threads N]

It imports llama_cpp and nothing of ours (it is run as a file, so whichever llama_cpp
PYTHONPATH finds first is the build measured), loads the model once and then answers one
request at a time, speaking JSON lines: requests on stdin, results on stdout (llama.cpp's
own output goes to stderr).

  <- {"type": "ready", "pid", "llama_cpp", "llama_cpp_file", "system_info", "chat_format",
      "n_ctx", "threads", "load_ms"}
  -> {"type": "generate", "id", "messages": [{role, content}], "max_tokens",
      "sampling": {...}, "seed"}
  -> {"type": "cancel", "id"}   stops that generation between chunks (its result says "cut")
  <- {"type": "result", "id", "first_token_ms", "decode_s", "output_tokens", "tokens_per_s",
      "chunks", "text", "prompt_tokens", "finish_reason", "cut", "total_ms"}

A generation is `create_chat_completion(messages, stream=True, ...)` with the GGUF's own
chat template. Timed from just before that call: the first text chunk (first token), the last
one, and the output's token count (the text tokenized again afterwards, as the app's worker
counts it). Tokens/s = (tokens - 1) / (last chunk - first chunk).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from typing import Any, TextIO

import llama_cpp
from llama_cpp import Llama, llama_chat_format, llama_print_system_info


def load(model: str, *, n_ctx: int, threads: int) -> Llama:
    # The app's worker loads it the same way (conversations/local/worker.py).
    return Llama(model_path=model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                 chat_format="chat_template.default", verbose=False)


def prompt_tokens(llm: Llama, messages: list[dict]) -> int:
    """How many tokens the chat handler evaluated: its own formatter, run again untimed."""
    def text(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", "ignore") if token >= 0 else ""

    formatter = llama_chat_format.Jinja2ChatFormatter(
        llm.metadata["tokenizer.chat_template"], text(llm.token_eos()), text(llm.token_bos()))
    rendered = formatter(messages=messages)
    return len(llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special,
                            special=True))


def generate(llm: Llama, request: dict, cancelled: set) -> dict[str, Any]:
    sampling = request["sampling"]
    started = time.perf_counter()
    first = last = 0.0
    pieces: list[str] = []
    chunks = 0
    finish_reason = None
    for chunk in llm.create_chat_completion(
        request["messages"], stream=True, max_tokens=request["max_tokens"],
        temperature=sampling["temperature"], top_p=sampling["top_p"], top_k=sampling["top_k"],
        min_p=sampling["min_p"], repeat_penalty=sampling["repeat_penalty"],
        seed=request.get("seed"),
    ):
        if request["id"] in cancelled:  # the benchmark's time is up
            break
        choice = chunk["choices"][0]
        if piece := choice["delta"].get("content"):
            last = time.perf_counter()
            first = first or last
            pieces.append(piece)
            chunks += 1
        finish_reason = choice.get("finish_reason") or finish_reason
    ended = time.perf_counter()
    # Untimed from here on.
    reply = "".join(pieces)
    tokens = len(llm.tokenize(reply.encode("utf-8"), add_bos=False, special=False)) if reply else 0
    decode = last - first
    return {
        "type": "result",
        "id": request["id"],
        "first_token_ms": (first - started) * 1000 if first else None,
        "decode_s": decode,
        "output_tokens": tokens,
        "tokens_per_s": (tokens - 1) / decode if tokens > 1 and decode > 0 else None,
        "chunks": chunks,
        "text": reply,
        "prompt_tokens": prompt_tokens(llm, request["messages"]),
        "finish_reason": finish_reason,
        "cut": request["id"] in cancelled,
        "total_ms": (ended - started) * 1000,
    }


def send(out: TextIO, message: dict) -> None:
    out.write(json.dumps(message, ensure_ascii=False) + "\n")
    out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 8))
    args = parser.parse_args()

    # The protocol keeps the real stdout; anything native code prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    started = time.monotonic()
    llm = load(args.model, n_ctx=args.n_ctx, threads=args.threads)
    send(out, {"type": "ready", "pid": os.getpid(), "llama_cpp": llama_cpp.__version__,
               "llama_cpp_file": llama_cpp.__file__,
               "system_info": llama_print_system_info().decode(errors="replace").strip(),
               "chat_format": llm.chat_format, "n_ctx": args.n_ctx, "threads": args.threads,
               "load_ms": round((time.monotonic() - started) * 1000)})
    requests: queue.Queue[dict | None] = queue.Queue()
    cancelled: set = set()  # ids; a cancel may come before its generation starts

    def read() -> None:
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("type") == "cancel":
                cancelled.add(request.get("id"))
            elif request.get("type") == "generate":
                requests.put(request)
        requests.put(None)  # stdin closed: the benchmark is done (or gone)

    threading.Thread(target=read, daemon=True).start()
    while (request := requests.get()) is not None:
        send(out, generate(llm, request, cancelled))


if __name__ == "__main__":
    main()
