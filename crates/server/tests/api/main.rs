//! HTTP-level stories against the real server: the app is started on a
//! random port over a fresh database (a SQLite file, or a new database on
//! the PostgreSQL server the test script started), with a simulated clock
//! and gateway, and driven through its API like a client would. Every
//! story runs on both engines.
#![allow(clippy::unwrap_used)]

mod access;
mod audit;
mod authorization;
mod channels;
mod children;
mod concurrency;
mod console;
mod contract;
mod disputes;
mod email;
mod entitlements;
mod errors;
mod helpers;
mod hostile;
mod idempotency;
mod language;
mod lifecycle;
mod money;
mod operations;
mod portal;
mod query_plans;
mod security;
