//! The `postern` binary's library: configuration loading, the CLI and the
//! wiring of a running server. `main.rs` stays a few lines over this, and
//! black-box tests build the same [`serve::Application`] the binary runs.

pub mod cli;
pub mod commands;
pub mod config;
pub mod openapi;
pub mod ops;
pub mod serve;
