//! `cdcql explain`: what a pipeline will do, for people. Never shows secrets.

use std::fmt::Write;

use crate::envelope::debezium::DebeziumTable;
use crate::plan::{redact_url, Encoding, Envelope, PipelinePlan};

pub fn explain(p: &PipelinePlan) -> String {
    let mut out = String::new();
    let Envelope::Debezium(opts) = &p.envelope;
    let Encoding::Json { schemas } = p.encoding;
    let _ = writeln!(out, "PIPELINE {}", p.name);
    let _ = writeln!(
        out,
        "  from:     {} ({}), database {}",
        p.postgres.name,
        redact_url(p.postgres.url.expose()),
        p.database
    );
    let _ = writeln!(
        out,
        "  into:     {} (brokers {})",
        p.kafka.name, p.kafka.brokers
    );
    for (k, v) in &p.kafka.client_options {
        let shown = if k.contains("password") || k.contains("secret") {
            "****"
        } else {
            v
        };
        let _ = writeln!(out, "            '{k}' = '{shown}'");
    }
    let _ = writeln!(
        out,
        "  format:   JSON ({})",
        if schemas {
            "schema + payload"
        } else {
            "payload only"
        }
    );
    let _ = writeln!(
        out,
        "  envelope: DEBEZIUM (server name `{}`, tombstones {})",
        opts.server_name,
        if opts.tombstones { "on" } else { "off" }
    );
    let _ = writeln!(out, "  snapshot: {:?}", p.snapshot);
    let ts = &p.topic_settings;
    let _ = writeln!(
        out,
        "  topics:   {} partition(s), replication {}, cleanup.policy {}",
        ts.partitions,
        if ts.replication_factor < 0 {
            "broker default".to_string()
        } else {
            ts.replication_factor.to_string()
        },
        ts.cleanup_policy.as_deref().unwrap_or("broker default")
    );
    for w in &p.warnings {
        let _ = writeln!(out, "  warning:  {w}");
    }
    for t in &p.tables {
        let _ = writeln!(out, "  TABLE {} → topic {}", t.table, t.topic);
        let read: Vec<&str> = t.read_columns.iter().map(|c| c.name.as_str()).collect();
        let _ = writeln!(out, "    reads:   {}", read.join(", "));
        let key: Vec<&str> = t.key.iter().map(|&i| t.output[i].name.as_str()).collect();
        let _ = writeln!(
            out,
            "    key:     {}",
            if key.is_empty() {
                "(none: null key)".to_string()
            } else {
                key.join(", ")
            }
        );
        let _ = writeln!(out, "    columns:");
        for c in &t.output {
            let _ = writeln!(
                out,
                "      {} {}{}",
                c.name,
                c.pg_type,
                if c.nullable { "" } else { " not null" }
            );
        }
        match &t.logical_plan {
            Some(lp) => {
                let _ = writeln!(out, "    plan:");
                for line in lp.display_indent().to_string().lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
            None => {
                let _ = writeln!(out, "    plan:    every row and column, unchanged");
            }
        }
        let env = DebeziumTable::new(t, opts, &p.database);
        let s = env.schemas();
        let _ = writeln!(
            out,
            "    key schema:   {}",
            s.key
                .as_ref()
                .map(|k| k.to_connect_json())
                .unwrap_or_else(|| "null".into())
        );
        // The row schema is the interesting part of the envelope; the rest is fixed.
        if let Some(after) = s.value.fields().iter().find(|f| f.name == "after") {
            let _ = writeln!(
                out,
                "    value schema: {}.Envelope with before/after = {}",
                t.topic,
                after.schema.to_connect_json()
            );
        }
    }
    out
}
