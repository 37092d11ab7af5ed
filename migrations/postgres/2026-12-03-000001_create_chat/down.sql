DROP TABLE mentions;
DROP TABLE read_cursors;
DROP TABLE pending_mentions;
DROP TABLE messages;
DROP TABLE rooms;
