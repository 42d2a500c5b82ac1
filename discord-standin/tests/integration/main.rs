//! Integration tests: a real stand-in on 127.0.0.1:0, spoken to with raw HTTP and a plain
//! WebSocket client, answers parsed with twilight-model (and a copy of twilight-http's errors).

mod support;

mod control;
mod gateway;
mod rest;
mod twilight;
