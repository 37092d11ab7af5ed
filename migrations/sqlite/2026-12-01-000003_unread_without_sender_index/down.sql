-- The cursor moves of up.sql stay: they are what sending does.
CREATE INDEX messages_by_room_id_sender ON messages (room, id, sender);
