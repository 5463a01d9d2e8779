"""devtools/screen.py: a client's view of turns, as the soak keeps it for each socket."""

from devtools.screen import Screen


def turn(turn_id="t1", seq=0, status="queued", text=None) -> dict:
    steps = [] if text is None else [{"type": "model_output",
                                      "content": [{"type": "text", "text": text}]}]
    return {"id": turn_id, "client_id": "c1", "seq": seq, "status": status, "steps": steps}


def update(seq, text, turn_id="t1", **fields) -> dict:
    ops = [["step", 0, {"type": "model_output"}]] if seq == 1 else []
    return {"type": "turn.update", "turn_id": turn_id, "seq": seq,
            "ops": ops + [["text", 0, 0, text]], **fields}


def test_frames_in_order_make_the_reply():
    screen = Screen()
    screen.feed({"type": "turn.created", "turn": turn()})
    for frame in (update(1, "Echo: ", status="in_progress"), update(2, "hi "),
                  update(3, "there", status="completed")):
        screen.feed(frame)
    assert screen.done("t1") and screen.text("t1") == "Echo: hi there"
    assert screen.gaps == 0


def test_a_gap_on_a_socket_that_saw_the_turn_created_is_counted_and_held():
    screen = Screen()
    screen.feed({"type": "turn.created", "turn": turn()})
    screen.feed(update(1, "a "))
    screen.feed(update(3, "c", status="completed"))
    assert screen.gaps == 1 and screen.stuck("t1") and not screen.done("t1")
    screen.feed(update(2, "b "))
    assert screen.done("t1") and screen.text("t1") == "a b c"


def test_a_socket_that_joined_mid_reply_fills_in_from_turn_sync_without_a_gap():
    screen = Screen()
    screen.feed({"type": "snapshot", "turns": [turn(seq=1, status="in_progress", text="a ")],
                 "complete": True})
    screen.feed(update(4, "d", status="completed"))  # live frames may come before the sync
    assert screen.stuck("t1") and screen.gaps == 0
    screen.feed({"type": "turn.sync", "turn": turn(seq=3, status="in_progress",
                                                    text="a b c ")})
    assert screen.done("t1") and screen.text("t1") == "a b c d"


def test_frames_already_included_and_older_copies_are_dropped():
    screen = Screen()
    screen.feed({"type": "turn.sync", "turn": turn(seq=2, status="in_progress", text="a b ")})
    screen.feed(update(2, "b "))
    screen.feed({"type": "snapshot", "turns": [turn(seq=1, status="in_progress", text="a ")],
                 "complete": True})
    screen.feed(update(3, "c", status="completed"))
    assert screen.done("t1") and screen.text("t1") == "a b c"
