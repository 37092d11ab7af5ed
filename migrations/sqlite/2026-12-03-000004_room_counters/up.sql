-- Each room's latest message id, kept in its row: the transaction that
-- stores a room's messages takes the next ids from it and writes the last
-- one back. Postgres numbers messages the same way (migrations/postgres),
-- where several writers share one database and the row's lock is what
-- keeps ids gapless and in commit order; one rule for both stores.
ALTER TABLE rooms ADD COLUMN last_id BIGINT NOT NULL DEFAULT 0;
UPDATE rooms SET last_id = (SELECT MAX(id) FROM messages WHERE messages.room = rooms.name)
WHERE EXISTS (SELECT 1 FROM messages WHERE messages.room = rooms.name);
