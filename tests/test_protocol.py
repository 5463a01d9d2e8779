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
