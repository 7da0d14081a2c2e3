//! End-to-end tests: the real `medic` binary against real services on loopback.

mod support;

mod alerts;
mod cli;
mod command_target;
mod dashboard;
mod deploy;
mod docker;
mod doctor;
mod engine_restarts;
mod launchd;
mod podman;
mod service;
mod systemd;
