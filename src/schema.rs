// @generated automatically by Diesel CLI.

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
    rooms (name) {
        name -> Text,
        created_at -> Text,
    }
}

diesel::joinable!(messages -> rooms (room));

diesel::allow_tables_to_appear_in_same_query!(messages, pending_mentions, rooms,);
