import json

from conversations import protocol


def turn(n: int, size: int) -> dict:
    return {"id": f"t{n}", "input": [{"type": "text", "text": "é" * size}]}


def test_a_snapshot_is_cut_into_frames_under_the_limit():
    turns = [turn(n, 30_000) for n in range(10)]  # 60 kB of UTF-8 each

    frames = list(protocol.snapshot_frames({"id": "c"}, turns, limit=200_000))

    decoded = [json.loads(f) for f in frames]
    assert all(len(f.encode()) <= 200_000 for f in frames)
    assert [d["type"] for d in decoded] == ["snapshot"] + ["snapshot.part"] * (len(frames) - 1)
    assert [d["complete"] for d in decoded] == [False] * (len(frames) - 1) + [True]
    assert decoded[0]["conversation"] == {"id": "c"}
    assert [t for d in decoded for t in d["turns"]] == turns
    assert len(frames) == 4  # three turns a frame


def test_a_small_snapshot_is_one_frame():
    [frame] = protocol.snapshot_frames({"id": "c"}, [turn(1, 10)])
    assert json.loads(frame) == {"type": "snapshot", "conversation": {"id": "c"},
                                 "turns": [turn(1, 10)], "complete": True}


def test_a_turn_larger_than_the_limit_goes_alone():
    turns = [turn(1, 10), turn(2, 50_000), turn(3, 10)]
    frames = [json.loads(f) for f in protocol.snapshot_frames({}, turns, limit=50_000)]
    assert [[t["id"] for t in f["turns"]] for f in frames] == [["t1"], ["t2"], ["t3"]]


def test_other_kinds_of_turn_lists_are_cut_the_same_way():
    turns = [turn(n, 30_000) for n in range(4)]
    frames = [json.loads(f) for f in protocol.turn_frames("history", {"turn_id": "t9"}, turns,
                                                          limit=130_000)]
    assert [f["type"] for f in frames] == ["history", "history.part"]
    assert frames[0]["turn_id"] == "t9" and "turn_id" not in frames[1]
    assert [t for f in frames for t in f["turns"]] == turns
