//! Greenlight: continuous delivery in the pull-request thread.
//!
//! A signed webhook is verified and stored ([`server`]), a worker claims it from the durable
//! queue ([`store`], [`worker`]) and the release engine turns it into forge effects.

pub mod clock;
pub mod config;
pub mod engine;
pub mod forge;
pub mod listing;
pub mod metrics;
pub mod redeliver;
pub mod release;
pub mod render;
pub mod retention;
pub mod server;
pub mod setup;
pub mod starter;
pub mod store;
pub mod telemetry;
pub mod worker;
