-- Rooms and direct conversations. A direct conversation's name starts with
-- '@' (`@alice+bob`), which no room name can, so the two never collide.
CREATE TABLE rooms (
    name TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL
);

-- Every stored message. `id` is the message's position in its room: 1, 2,
-- 3... with no holes, assigned by the single writer inside the transaction
-- that stores it. The primary key (room, id) is also the index every
-- history query walks.
CREATE TABLE messages (
    room TEXT NOT NULL REFERENCES rooms (name),
    id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT,
    PRIMARY KEY (room, id)
);

-- Mentions of users who were offline, delivered right after `welcome` on
-- their next connection and then deleted.
CREATE TABLE pending_mentions (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    room TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX pending_mentions_by_recipient ON pending_mentions (recipient, id);
