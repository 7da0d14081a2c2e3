//! Helpers shared by the end-to-end tests.

pub mod browser;
pub mod compose;
pub mod docker;
pub mod env;
pub mod fault_proxy;
pub mod https;
pub mod launchd;
pub mod medic;
pub mod mount;
pub mod server;
pub mod skip;
pub mod systemd_machine;
