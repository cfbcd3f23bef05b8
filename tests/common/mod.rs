//! The one harness the integration tests share: each module owns one part of a test's setup,
//! so a change to how kiroku is opened, served or driven is made once, here.
#![allow(dead_code)] // each test binary uses its own subset

pub mod app;
pub mod audit;
pub mod browser;
pub mod candidates;
pub mod cdp;
pub mod cli;
pub mod files;
pub mod fixtures;
pub mod garage;
pub mod garage_cluster;
pub mod interviews;
pub mod media;
pub mod postgres;
pub mod probe;
pub mod proxy;
pub mod serve;
pub mod server;
pub mod softhsm;
pub mod whip;
pub mod ws;
