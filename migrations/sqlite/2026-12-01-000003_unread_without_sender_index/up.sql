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
-- Cursors made before this migration may be behind their user's own
-- messages: those backfilled at 0 by migration 2 for older conversations,
-- and room cursors that started at a join's position while the user's own
-- message was still being committed. Move each to its user's latest own
-- message, as sending does (other users' earlier messages become read, as
-- they would have). One pass over the messages, grouped.
UPDATE read_cursors SET last_read = own.last_id
FROM (SELECT room, sender, MAX(id) AS last_id FROM messages GROUP BY room, sender) AS own
WHERE own.room = read_cursors.room AND own.sender = read_cursors.reader
    AND own.last_id > read_cursors.last_read;
DROP INDEX messages_by_room_id_sender;
