//! Integration tests: a real server on 127.0.0.1:0, real WebSocket clients, real HTTP.
//! The modules follow `../shared/BAD-INPUTS.md` where they cover its rows.

mod services;
mod support;

mod abuse;
mod allocator;
mod chat;
mod cluster;
mod discord;
mod faults;
mod handshake;
mod identity;
mod moderation;
mod pages;
mod protocol_input;
mod rooms;
mod shared_rooms;
mod shutdown;
mod store;
