"""The /_control/ API, so a separate process (bench, browser tests) can script the fake."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from devtools.fake_upstream import transcripts as tr
from devtools.fake_upstream.wire import Request, Response, error

if TYPE_CHECKING:
    from devtools.fake_upstream.server import FakeUpstream


def control(server: FakeUpstream, req: Request) -> Response:
    """The /_control/ API, so a separate process can be scripted (no API key needed)."""
    action = (req.method, req.path.removeprefix("/_control/").strip("/"))
    body = req.json if req.json is not None else {}
    try:
        handler = CONTROL[action]
    except KeyError:
        return error(404, f"Unknown control endpoint {req.method} {req.path}")
    try:
        return Response(200, handler(server, body))
    except (TypeError, ValueError, KeyError) as exc:
        return error(400, f"Bad control request: {exc}")


def _control_script(server: FakeUpstream, body: Any) -> dict[str, Any]:
    items = body if isinstance(body, list) else body.get("items") or []
    if isinstance(body, dict):
        items += [body["name"]] if "name" in body else []
        items += body.get("names", [])
        items += [body["events"]] if "events" in body else []
        items += [body["interaction"]] if "interaction" in body else []
        if "long_text" in body:
            items.append(tr.long_text(int(body["long_text"])))
    server.script(*items)
    return {"queued": len(server._scripts)}


def _control_fault(server: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    server.fault(body.pop("kind"), **body)
    return {"faults": len(server._faults)}


def _control_config(server: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    return dataclasses.asdict(server.configure(**body))


def _control_reset(server: FakeUpstream, body: Any) -> dict[str, Any]:
    server.reset()
    return {}


def _control_clear_requests(server: FakeUpstream, body: Any) -> dict[str, Any]:
    server.clear_requests()
    return {}


CONTROL = {
    ("GET", "health"): lambda s, b: {"ok": True, "base_url": s.base_url},
    ("GET", "config"): lambda s, b: dataclasses.asdict(s.config),
    ("POST", "config"): _control_config,
    ("POST", "script"): _control_script,
    ("POST", "fault"): _control_fault,
    ("GET", "requests"): lambda s, b: {"requests": [r.to_dict() for r in s.requests]},
    ("DELETE", "requests"): _control_clear_requests,
    ("GET", "interactions"): lambda s, b: {k: r.resource(timeline=True)
                                           for k, r in s.interactions.items()},
    ("POST", "reset"): _control_reset,
}
