DROP TABLE mentions;
DROP TABLE read_cursors;
DROP INDEX messages_by_room_id_sender;
DROP INDEX messages_by_idempotency_key;
