//! Sources: where change batches come from. Only Postgres so far.

pub mod postgres;
