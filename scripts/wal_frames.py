#!/usr/bin/env python3
"""WAL pages a commit writes in the rooms workload's shape, per schema.

A model of walkie's writer (docs/performance.md, items 10 and 11), with
Python's own sqlite3: 500 rooms of 10 members, each with a read cursor;
every batch inserts BATCH messages, each from the next member of a
different room, and moves the sender's cursor, in one transaction. It
prints WAL frames per commit (each frame is one 4 KiB page written, then
checkpointed) and CPU time per commit (Python's overhead included, so
compare schemas, not absolute times).

    python3 scripts/wal_frames.py                # all schemas
    BATCH=60 python3 scripts/wal_frames.py final

Schemas: `sender_index` (issue 6: rowid table, primary key index and
messages_by_room_id_sender), `final` (migration 3: without that index),
`without_rowid` (the primary key as the table, tried and rejected).
The tables mirror migrations/; keep them in step when those change.
"""
import os
import sqlite3
import sys
import tempfile
import time

ROOMS, MEMBERS = 500, 10
BATCH = int(os.environ.get("BATCH", "30"))
MESSAGES = """CREATE TABLE messages (room TEXT NOT NULL REFERENCES rooms (name),
    id BIGINT NOT NULL, sender TEXT NOT NULL, body TEXT NOT NULL,
    created_at TEXT NOT NULL, idempotency_key TEXT, PRIMARY KEY (room, id))"""
SCHEMAS = {
    "sender_index": MESSAGES + ";\nCREATE INDEX messages_by_room_id_sender ON messages (room, id, sender);",
    "final": MESSAGES + ";",
    "without_rowid": MESSAGES + " WITHOUT ROWID;",
}
COMMON = """CREATE UNIQUE INDEX messages_by_idempotency_key ON messages (sender, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE read_cursors (reader TEXT NOT NULL, room TEXT NOT NULL REFERENCES rooms (name),
    last_read BIGINT NOT NULL, PRIMARY KEY (reader, room));"""


def run(schema, directory):
    path = os.path.join(directory, schema + ".db")
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "wal_autocheckpoint = 0"):
        db.execute("PRAGMA " + pragma)
    db.executescript("CREATE TABLE rooms (name TEXT NOT NULL PRIMARY KEY, created_at TEXT NOT NULL);")
    db.executescript(SCHEMAS[schema] + "\n" + COMMON)
    db.execute("BEGIN")
    for room in range(ROOMS):
        db.execute("INSERT INTO rooms VALUES (?, 't')", (f"r{room}",))
    for member in range(ROOMS * MEMBERS):
        db.execute("INSERT INTO read_cursors VALUES (?, ?, 0)", (f"u{member}", f"r{member // MEMBERS}"))
    db.execute("COMMIT")
    last_ids, member = {}, 0

    def commit():
        nonlocal member
        db.execute("BEGIN IMMEDIATE")
        for _ in range(BATCH):
            # A stride coprime with the member count visits them all.
            member = (member + 7919) % (ROOMS * MEMBERS)
            sender, room = f"u{member}", f"r{member // MEMBERS}"
            last_ids[room] = message_id = last_ids.get(room, 0) + 1
            db.execute(
                "INSERT INTO messages (room, id, sender, body, created_at) VALUES (?, ?, ?, ?, ?)",
                (room, message_id, sender, "x" * 100, "2026-12-01T00:00:00.000Z"),
            )
            db.execute(
                "UPDATE read_cursors SET last_read = ? WHERE reader = ? AND room = ? AND last_read < ?",
                (message_id, sender, room, message_id),
            )
        db.execute("COMMIT")

    for _ in range(2000):  # a history to write into
        commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    commits = 400
    started = time.process_time()
    for _ in range(commits):
        commit()
    cpu = time.process_time() - started
    frames = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    print(f"{schema:14} {frames / commits:6.1f} WAL frames per {BATCH}-message commit, "
          f"{cpu / commits * 1000:.2f} ms CPU per commit")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        for name in sys.argv[1:] or SCHEMAS:
            run(name, directory)
