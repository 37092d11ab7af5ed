// @generated automatically by Diesel CLI.

diesel::table! {
    mentions (mentioned, room, message_id) {
        mentioned -> Text,
        room -> Text,
        message_id -> BigInt,
    }
}

diesel::table! {
    messages (room, id) {
        room -> Text,
        id -> BigInt,
        sender -> Text,
        body -> Text,
        created_at -> Text,
        idempotency_key -> Nullable<Text>,
    }
}

diesel::table! {
    pending_mentions (id) {
        id -> Integer,
        recipient -> Text,
        room -> Text,
        message_id -> BigInt,
        sender -> Text,
        body -> Text,
    }
}

diesel::table! {
    read_cursors (reader, room) {
        reader -> Text,
        room -> Text,
        last_read -> BigInt,
    }
}

diesel::table! {
    rooms (name) {
        name -> Text,
        created_at -> Text,
        last_id -> BigInt,
    }
}

diesel::joinable!(messages -> rooms (room));
diesel::joinable!(read_cursors -> rooms (room));

diesel::allow_tables_to_appear_in_same_query!(
    mentions,
    messages,
    pending_mentions,
    read_cursors,
    rooms,
);
