DROP INDEX pending_mentions_by_recipient;
DROP TABLE pending_mentions;
DROP TABLE messages;
DROP TABLE rooms;
