//! An incident's evidence, held once: the failures that wrote it stay shared
//! with their probes' slots, and the merged map is built only when an alert,
//! a log line or an escalation carries it (issue #13: at 10,000 failing
//! services a copy per incident, and one per failure, cost megabytes).

use std::sync::Arc;

use serde_json::Value;

use super::millis;
use crate::observation::{Evidence, Observation};

/// Where a counted failure's latency goes in the evidence.
const LATENCY_MS: &str = "latency_ms";

/// What an incident's evidence was written from, oldest first. Reading it
/// gives exactly what extending one map with each write in turn gave: a later
/// write of a key wins.
#[derive(Debug, Clone, Default)]
pub(super) struct IncidentEvidence {
    layers: Vec<Layer>,
}

/// One write into an incident's evidence.
#[derive(Debug, Clone)]
enum Layer {
    /// A counted failure: its observation's evidence, then its latency as `latency_ms`.
    Failure(Arc<Observation>),
    /// Keys medic adds itself (a deploy's evidence, who is expected to restart it).
    Added(Evidence),
}

impl Layer {
    /// The map this write extends with, and the latency it then sets as `latency_ms`.
    fn parts(&self) -> (&Evidence, Option<u64>) {
        match self {
            Layer::Failure(observation) => {
                (&observation.evidence, Some(millis(observation.latency)))
            }
            Layer::Added(evidence) => (evidence, None),
        }
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        let (evidence, latency) = self.parts();
        let latency = latency.map(|_| LATENCY_MS);
        evidence.keys().map(String::as_str).chain(latency)
    }

    /// Whether this write sets `key`.
    fn writes(&self, key: &str) -> bool {
        let (evidence, latency) = self.parts();
        (key == LATENCY_MS && latency.is_some()) || evidence.contains_key(key)
    }

    /// The value this write gives `key`, if it sets it.
    fn get(&self, key: &str) -> Option<Value> {
        match self.parts() {
            (_, Some(latency)) if key == LATENCY_MS => Some(latency.into()),
            (evidence, _) => evidence.get(key).cloned(),
        }
    }

    fn write_into(&self, all: &mut Evidence) {
        let (evidence, latency) = self.parts();
        all.extend(evidence.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(latency) = latency {
            all.insert(LATENCY_MS.into(), latency.into());
        }
    }
}

impl IncidentEvidence {
    /// Evidence medic adds itself (a failed deploy's), as the first write.
    pub(super) fn added(evidence: Evidence) -> Self {
        let mut all = Self::default();
        all.add(evidence);
        all
    }

    /// A counted failure, shared with its probe's slot rather than copied.
    pub(super) fn failure(&mut self, observation: Arc<Observation>) {
        self.push(Layer::Failure(observation));
    }

    /// Keys medic adds itself; they overwrite what came before, as `extend` did.
    pub(super) fn add(&mut self, evidence: Evidence) {
        self.push(Layer::Added(evidence));
    }

    /// The merged value of one key, without building the map.
    pub(super) fn get(&self, key: &str) -> Option<Value> {
        self.layers.iter().rev().find_map(|layer| layer.get(key))
    }

    /// The merged map, for what carries it out (alerts, log lines, escalations).
    pub(super) fn merged(&self) -> Evidence {
        let mut all = Evidence::new();
        for layer in &self.layers {
            layer.write_into(&mut all);
        }
        all
    }

    /// Adds a write, then drops every older one whose keys later writes all
    /// set: it no longer shows, and a failing service would otherwise keep
    /// each of its failures. Every write kept but the newest sets some key
    /// last, so an incident holds no more writes than keys, plus one.
    fn push(&mut self, layer: Layer) {
        // Usually one write stays: room for it and the next, not Vec's four.
        self.layers.reserve_exact(1);
        self.layers.push(layer);
        let mut i = 0;
        while i + 1 < self.layers.len() {
            let (older, newer) = self.layers.split_at(i + 1);
            if older[i]
                .keys()
                .all(|key| newer.iter().any(|l| l.writes(key)))
            {
                self.layers.remove(i);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
