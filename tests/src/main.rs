//! End-to-end tests: the real `medic` binary against real services on loopback.

mod support;

mod alerts;
mod cli;
mod command_target;
mod dashboard;
mod deploy;
mod docker;
mod exposure;
mod fleet;
mod launchd;
mod service;
