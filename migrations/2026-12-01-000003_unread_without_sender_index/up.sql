-- Unread counts no longer need the sender in an index.
--
-- Sending a message moves its sender's cursor to it in the same
-- transaction, and cursors never move back, so a user's own messages are
-- never after their cursor: "messages after last_read not sent by me" is
-- "messages after last_read", a range count over the primary key's index
-- alone. That makes messages_by_room_id_sender, which every message had to
-- update (a page of its own per message with many busy rooms, written to
-- the WAL and checkpointed: docs/performance.md), unnecessary.
--
-- Cursors made for conversations stored before cursors existed (migration
-- 2's backfill) start at 0 and may be behind their user's own messages:
-- move them to it first, as sending would have.
UPDATE read_cursors SET last_read = (
    SELECT MAX(m.id) FROM messages m
    WHERE m.room = read_cursors.room AND m.sender = read_cursors.reader
)
WHERE last_read < (
    SELECT MAX(m.id) FROM messages m
    WHERE m.room = read_cursors.room AND m.sender = read_cursors.reader
);
DROP INDEX messages_by_room_id_sender;
