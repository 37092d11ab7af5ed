-- Exactly-once sending: one message per (sender, idempotency_key). The
-- database enforces it, so two sessions resending at once still store one.
CREATE UNIQUE INDEX messages_by_idempotency_key
    ON messages (sender, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Counting unread messages ("after my cursor, not sent by me") walks this
-- index alone: the range (room, id > cursor) with the sender in the index,
-- so no message row is read, however long the history.
CREATE INDEX messages_by_room_id_sender ON messages (room, id, sender);

-- Where each user has read up to, in every room they ever joined and every
-- direct conversation they are in. A row also records "has joined".
CREATE TABLE read_cursors (
    reader TEXT NOT NULL,
    room TEXT NOT NULL REFERENCES rooms (name),
    last_read BIGINT NOT NULL,
    PRIMARY KEY (reader, room)
);

-- Who each room message mentions, written by the notification worker, so
-- unread mentions are an index range count too.
CREATE TABLE mentions (
    mentioned TEXT NOT NULL,
    room TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    PRIMARY KEY (mentioned, room, message_id)
);

-- Direct conversations stored before cursors existed get one for each of
-- their two users, so they stay in both inboxes. Names cannot contain '+',
-- so it always separates the two.
INSERT OR IGNORE INTO read_cursors (reader, room, last_read)
    SELECT substr(name, 2, instr(name, '+') - 2), name, 0 FROM rooms
    WHERE name LIKE '@%' AND EXISTS (SELECT 1 FROM messages WHERE messages.room = rooms.name);
INSERT OR IGNORE INTO read_cursors (reader, room, last_read)
    SELECT substr(name, instr(name, '+') + 1), name, 0 FROM rooms
    WHERE name LIKE '@%' AND EXISTS (SELECT 1 FROM messages WHERE messages.room = rooms.name);
