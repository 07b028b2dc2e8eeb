"""One writer per folder on S3: the lease taken by a conditional PUT, renewed while held, taken over lapsed."""

from __future__ import annotations

import json
import threading
import time

from stages import s3_lock, storage


def hold(folder: str, seconds: float, lease: float, events: list, name: str) -> None:
    with s3_lock.held(folder, lease=lease, poll=0.05):
        events.append((name, "in", time.monotonic()))
        time.sleep(seconds)
        events.append((name, "out", time.monotonic()))


def test_a_second_writer_waits_for_the_first_even_past_one_lease(s3_root):
    folder = f"{s3_root}/segment/abc/test/shard-00000"
    events: list = []
    first = threading.Thread(target=hold, args=(folder, 2.0, 0.9, events, "first"))
    first.start()
    while not events:
        time.sleep(0.01)
    second = threading.Thread(target=hold, args=(folder, 0.0, 0.9, events, "second"))
    second.start()
    first.join(30)
    second.join(30)
    order = [(name, what) for name, what, _ in events]
    # held 2 s with a 0.9 s lease: only renewal keeps the second writer out that long
    assert order == [("first", "in"), ("first", "out"), ("second", "in"), ("second", "out")], order
    assert not storage.exists(s3_lock.lock_uri(folder))  # released


def test_a_lapsed_lease_of_a_dead_writer_is_taken_over(s3_root):
    folder = f"{s3_root}/tile/abc/test/shard-00001"
    storage.write_bytes(s3_lock.lock_uri(folder), json.dumps({"owner": "gone", "expires": time.time() - 1}).encode())
    started = time.monotonic()
    with s3_lock.held(folder, lease=5, poll=0.05):
        assert json.loads(storage.read_bytes(s3_lock.lock_uri(folder)))["owner"] != "gone"
    assert time.monotonic() - started < 5


def test_a_live_lease_is_not_taken(s3_root):
    folder = f"{s3_root}/tile/abc/test/shard-00002"
    storage.write_bytes(s3_lock.lock_uri(folder), json.dumps({"owner": "alive", "expires": time.time() + 60}).encode())
    taken = threading.Event()

    def contender():
        with s3_lock.held(folder, lease=5, poll=0.05):
            taken.set()

    thread = threading.Thread(target=contender, daemon=True)
    thread.start()
    assert not taken.wait(1.5)
    storage.remove(s3_lock.lock_uri(folder))  # the holder finishes
    assert taken.wait(10)
