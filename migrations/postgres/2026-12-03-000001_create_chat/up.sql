-- walkie's tables on Postgres: the same tables as on SQLite (see
-- migrations/sqlite), plus each room's id counter. Timestamps stay RFC 3339
-- text, written by walkie, so both stores hand out the same `ts`.

-- Rooms and direct conversations. A direct conversation's name starts with
-- '@' (`@alice+bob`), which no room name can, so the two never collide.
-- `last_id` is the room's latest message id: the transaction that stores a
-- room's messages takes the next ids from it (the UPDATE locks the row until
-- that transaction ends), so several writers on one database number a
-- room's messages 1, 2, 3... with no hole, in commit order. Names compare
-- byte by byte ("C"), as on SQLite, so rooms sort the same on both.
CREATE TABLE rooms (
    name TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    last_id BIGINT NOT NULL DEFAULT 0
);

-- Every stored message; `id` is its position in its room.
CREATE TABLE messages (
    room TEXT COLLATE "C" NOT NULL REFERENCES rooms (name),
    id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT,
    PRIMARY KEY (room, id)
);

-- Exactly-once sending: one message per (sender, idempotency_key).
CREATE UNIQUE INDEX messages_by_idempotency_key
    ON messages (sender, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Mentions of users who were offline, delivered right after `welcome` on
-- their next connection and then deleted.
CREATE TABLE pending_mentions (
    id SERIAL PRIMARY KEY,
    recipient TEXT NOT NULL,
    room TEXT COLLATE "C" NOT NULL,
    message_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX pending_mentions_by_recipient ON pending_mentions (recipient, id);

-- Where each user has read up to, in every room they ever joined and every
-- direct conversation they are in. A row also records "has joined".
CREATE TABLE read_cursors (
    reader TEXT NOT NULL,
    room TEXT COLLATE "C" NOT NULL REFERENCES rooms (name),
    last_read BIGINT NOT NULL,
    PRIMARY KEY (reader, room)
);

-- Who each room message mentions, written with the message, so unread
-- mentions are an index range count.
CREATE TABLE mentions (
    mentioned TEXT NOT NULL,
    room TEXT COLLATE "C" NOT NULL,
    message_id BIGINT NOT NULL,
    PRIMARY KEY (mentioned, room, message_id)
);
