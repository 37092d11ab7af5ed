//! Integration tests: one binary, one file per behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod databases;
mod support;

mod admin;
mod browser;
mod cluster;
mod connecting;
mod crash;
mod direct;
mod errors;
mod exactly_once;
mod flood;
mod history;
mod hostile;
mod http_api;
mod last_words;
mod lifecycle;
mod mentions;
mod ordering;
mod postgres;
mod read_state;
mod rooms;
mod say;
mod security;
mod slow_clients;
