//! End-to-end tests: the real `medic` binary against real services on loopback.

mod support;

mod action_life;
mod alerts;
mod cli;
mod command_target;
mod compose;
mod dashboard;
mod deploy;
mod docker;
mod docs;
mod doctor;
mod edges;
mod engine_restarts;
mod exposure;
mod flapping;
mod fleet;
mod formats;
mod hung_engine;
mod installed;
mod launchd;
mod packaging;
mod podman;
mod report;
mod rules;
mod service;
mod storm;
mod systemd;
mod systemd_units;
mod writers;
