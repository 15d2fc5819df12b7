//! Sinks: where encoded messages go. Kafka for real runs.

pub mod kafka;
