//! Handlers, grouped by the part of SPEC they implement.

pub mod account;
pub mod assets;
pub mod check;
pub mod dev;
pub mod headless;
pub mod health;
pub mod logout;
pub mod oidc;
pub mod passkeys;
pub mod signin;
pub mod verify;
