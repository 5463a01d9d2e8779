"""The offline model's own process: `python -m conversations.local.worker --model FILE`.

llama.cpp is native code that can crash, abort or hang; it runs here, never in the web
server. The process loads the model once and then answers one request at a time, speaking
JSON lines: requests on stdin, events on stdout (llama.cpp's own output goes to stderr).

  -> {"type": "generate", "id", "system", "history": [{role, content}], "params": {...}}
  -> {"type": "cancel", "id"}
  <- {"type": "ready", "pid", "model", "template", "system_info", "load_ms"}
  <- {"type": "fatal", "message"}   the model could not be loaded; the process exits
  <- {"type": "start", "id", "input_tokens"}
  <- {"type": "text", "id", "text"}
  <- {"type": "done", "id", "status", "output_tokens", "reason"}   reason: stop|length|loop|cancel
  <- {"type": "error", "id", "message"}

It exits when stdin closes, so a server that dies (even by SIGKILL) leaves no orphan.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import queue
import signal
import sys
import threading
import time
from typing import Any, TextIO

from .prompt import ChatTemplate, fit_prompt, tokenize
from .repetition import LoopDetector


class Worker:
    def __init__(self, llm: Any, out: TextIO, *, n_ctx: int) -> None:
        self.llm = llm
        self.template = ChatTemplate(llm)
        self.n_ctx = n_ctx
        self.out = out
        self.requests: queue.Queue[dict] = queue.Queue()
        self.cancelled: set[str] = set()

    def send(self, **message: Any) -> None:
        self.out.write(json.dumps(message, ensure_ascii=False) + "\n")
        self.out.flush()

    def read(self, stream: TextIO) -> None:
        """Reader thread: requests go to the queue, cancels take effect between tokens."""
        for line in stream:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("type") == "cancel":
                self.cancelled.add(message.get("id"))
            elif message.get("type") == "generate":
                self.requests.put(message)
        os._exit(0)  # the server closed our stdin: it is gone or stopping us

    def serve(self) -> None:
        while True:
            request = self.requests.get()
            try:
                self.generate(request)
            except Exception as exc:  # noqa: BLE001 - the server must always get an ending
                self.send(type="error", id=request["id"], message=str(exc))
                self.send(type="done", id=request["id"], status="failed", output_tokens=0,
                          reason="error")
            self.cancelled.discard(request["id"])

    def generate(self, request: dict) -> None:
        job_id, params = request["id"], request["params"]
        tokens, stop = fit_prompt(self.template, request.get("system"), request["history"],
                                  n_ctx=self.n_ctx, max_tokens=params["max_tokens"])
        self.send(type="start", id=job_id, input_tokens=len(tokens))
        chunks = self.llm.create_completion(
            tokens, stream=True, stop=stop + list(params.get("stop") or []),
            max_tokens=params["max_tokens"], temperature=params["temperature"],
            top_p=params["top_p"], top_k=params["top_k"], min_p=params["min_p"],
            repeat_penalty=params["repeat_penalty"], seed=params.get("seed"),
        )
        loops, pieces, status, reason = LoopDetector(), [], "completed", "stop"
        try:
            for chunk in chunks:
                if job_id in self.cancelled:  # checked between tokens, so a stop is prompt
                    status, reason = "cancelled", "cancel"
                    break
                choice = chunk["choices"][0]
                if piece := choice["text"]:
                    pieces.append(piece)
                    self.send(type="text", id=job_id, text=piece)
                    if loops.feed(piece):
                        reason = "loop"
                        break
                if choice.get("finish_reason") == "length":
                    status, reason = "incomplete", "length"
        finally:
            chunks.close()
        reply = "".join(pieces)
        self.send(type="done", id=job_id, status=status, reason=reason,
                  output_tokens=len(tokenize(self.llm, reply)) if reply else 0)


def default_threads() -> int:
    """Every core but one, up to 8: the web server needs a core too, and llama.cpp's threads
    wait for each other, so one that is descheduled stalls all (measured on 2 cores with one
    busy neighbour: 2 threads fell from 84 to 30 tokens/s, 1 thread stayed at 62)."""
    return max(1, min((os.cpu_count() or 1) - 1, 8))


def load(model: str, *, n_ctx: int, threads: int) -> Any:
    from llama_cpp import Llama  # imported here: the protocol help above stays cheap

    return Llama(model_path=model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                 verbose=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args(argv)

    # The protocol keeps the real stdout; anything native code prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    faulthandler.enable()  # a crash leaves a Python traceback in the server's log
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server, which stops us

    started = time.monotonic()
    try:
        llm = load(args.model, n_ctx=args.n_ctx, threads=args.threads)
        worker = Worker(llm, out, n_ctx=args.n_ctx)
    except Exception as exc:  # noqa: BLE001 - said to the server, which tells the user
        out.write(json.dumps({"type": "fatal", "message": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        sys.exit(1)
    from llama_cpp import llama_print_system_info

    worker.send(type="ready", pid=os.getpid(), model=llm.metadata.get("general.name", ""),
                template=worker.template.source, n_ctx=args.n_ctx,
                system_info=llama_print_system_info().decode(errors="replace").strip(),
                load_ms=round((time.monotonic() - started) * 1000))
    threading.Thread(target=worker.read, args=(sys.stdin,), daemon=True).start()
    worker.serve()


if __name__ == "__main__":
    main()
