//! `cdcql explain`: what a pipeline will do, for people. Never shows secrets.

use std::fmt::Write;

use crate::connect::Schema;
use crate::envelope::{transaction, TableEnvelope};
use crate::plan::{redact_url, Encoding, Envelope, PipelinePlan};

pub fn explain(p: &PipelinePlan) -> String {
    let mut out = String::new();
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
        let shown = if is_secret_option(k) { "****" } else { v };
        let _ = writeln!(out, "            '{k}' = '{shown}'");
    }
    let format = match &p.encoding {
        Encoding::Json { schemas: true } => "JSON (schema + payload)".to_string(),
        Encoding::Json { schemas: false } => "JSON (payload only)".to_string(),
        Encoding::Avro(a) => format!(
            "AVRO (registry {}, subjects by {:?}, auto_register {}, use_latest {}{})",
            p.kafka
                .schema_registry
                .as_ref()
                .map(|r| redact_url(r.url.expose()))
                .unwrap_or_default(),
            a.subject_strategy,
            a.auto_register,
            a.use_latest,
            a.compatibility
                .as_deref()
                .map(|c| format!(", compatibility {c}"))
                .unwrap_or_default()
        ),
    };
    let _ = writeln!(out, "  format:   {format}");
    let envelope = match &p.envelope {
        Envelope::Debezium(opts) => format!(
            "DEBEZIUM (server name `{}`, tombstones {}{})",
            opts.server_name,
            if opts.tombstones { "on" } else { "off" },
            opts.transaction_topic
                .as_deref()
                .map(|t| format!(", transaction metadata → topic {t}"))
                .unwrap_or_default()
        ),
        Envelope::Native(opts) => format!(
            "NATIVE (row + __op/__version/__source_ts_ms/__deleted, deleted_marker {})",
            if opts.deleted_marker { "on" } else { "off" }
        ),
    };
    let _ = writeln!(out, "  envelope: {envelope}");
    let _ = writeln!(out, "  snapshot: {:?}", p.snapshot);
    // Shown only when set, so that the common case stays short.
    match p.errors.on_error {
        crate::plan::OnError::Fail => {}
        crate::plan::OnError::Skip => {
            let _ = writeln!(
                out,
                "  on_error: skip (rows that cannot be delivered are dropped and counted)"
            );
        }
        crate::plan::OnError::DeadLetter => {
            let _ = writeln!(
                out,
                "  on_error: dead_letter (rows that cannot be delivered go to '{}' as JSON)",
                p.errors.dead_letter_template
            );
        }
    }
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
        if let Some(dlq) = p.dead_letter_topic(t) {
            let _ = writeln!(out, "    dead letters → topic {dlq}");
        }
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
        let env = TableEnvelope::new(p, t);
        let s = env.schemas();
        let _ = writeln!(
            out,
            "    key schema:   {}",
            s.key
                .as_ref()
                .map(|k| k.to_connect_json())
                .unwrap_or_else(|| "null".into())
        );
        // The row schema is the interesting part of the Debezium envelope; the rest is fixed.
        match s.value.fields().iter().find(|f| f.name == "after") {
            Some(after) => {
                let _ = writeln!(
                    out,
                    "    value schema: {}.Envelope with before/after = {}",
                    t.topic,
                    after.schema.to_connect_json()
                );
            }
            None => {
                let _ = writeln!(out, "    value schema: {}", s.value.to_connect_json());
            }
        }
        explain_avro(&mut out, p, &t.topic, s.key.as_ref(), &s.value);
    }
    if let Envelope::Debezium(opts) = &p.envelope {
        if let Some(topic) = &opts.transaction_topic {
            let (key, value) = (transaction::key_schema(), transaction::value_schema());
            let _ = writeln!(
                out,
                "  TRANSACTIONS → topic {topic} (BEGIN and END records)"
            );
            let _ = writeln!(out, "    key schema:   {}", key.to_connect_json());
            let _ = writeln!(out, "    value schema: {}", value.to_connect_json());
            explain_avro(&mut out, p, topic, Some(&key), &value);
        }
    }
    out
}

/// For Avro pipelines: a topic's Avro schemas and the subjects they are registered under.
fn explain_avro(
    out: &mut String,
    p: &PipelinePlan,
    topic: &str,
    key: Option<&Schema>,
    value: &Schema,
) {
    let Encoding::Avro(opts) = &p.encoding else {
        return;
    };
    let parts = [("key", key, true), ("value", Some(value), false)];
    for (what, schema, is_key) in parts {
        let Some(schema) = schema else { continue };
        match crate::encode::avro::AvroSchema::from_connect(schema) {
            Ok(avro) => {
                let subject = crate::registry::subject_name(
                    opts.subject_strategy,
                    topic,
                    is_key,
                    avro.full_name()
                        .or(schema.name.as_deref())
                        .unwrap_or_default(),
                );
                let _ = writeln!(out, "    avro {what}: subject {subject}");
                let _ = writeln!(out, "      {}", avro.canonical());
            }
            Err(e) => {
                let _ = writeln!(out, "    avro {what}: cannot be written in Avro: {e}");
            }
        }
    }
}

/// librdkafka options whose values are credentials or key material.
fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "oauthbearer.config",
        "key.pem",
        "token",
        "credential",
    ]
    .iter()
    .any(|p| k.contains(p))
}

#[cfg(test)]
mod tests {
    #[test]
    fn credential_options_are_hidden() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "ssl.key.pem",
            "sasl.jaas.config",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.client.secret",
        ] {
            assert!(super::is_secret_option(k), "{k}");
        }
        for k in [
            "linger.ms",
            "compression.type",
            "sasl.mechanism",
            "ssl.ca.location",
        ] {
            assert!(!super::is_secret_option(k), "{k}");
        }
    }
}
