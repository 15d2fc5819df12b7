//! Confluent `AvroConverter` output: the Connect schema becomes the Avro schema AvroData would
//! register ([`schema`]), and each row becomes the serializer's framing (magic byte 0, the
//! registry's 4-byte big-endian schema id) followed by the Avro binary body ([`binary`]),
//! written straight from the envelope's Arrow columns.
//!
//! The schema id comes from the registry, which this module never talks to: register
//! [`AvroEncoder::schema_json`] under the subject, then [`AvroEncoder::set_schema_id`].

mod binary;
mod schema;

use datafusion::arrow::array::{Array, StructArray};

pub use schema::{AvroSchema, AvroSchemaError};

use super::{EncodeError, EncodedColumn};
use crate::connect::Schema;
use binary::{Column, TopShape};

/// Confluent wire format version 0: a zero byte before the schema id.
const MAGIC: u8 = 0;

#[derive(Debug, Clone)]
pub struct AvroEncoder {
    schema: AvroSchema,
    root: TopShape,
    /// Magic byte and schema id, once the id is known.
    header: Option<[u8; 5]>,
}

impl AvroEncoder {
    /// Compile the encoder for a key or value whose Connect schema is a struct.
    pub fn new(schema: &Schema) -> Result<Self, EncodeError> {
        let root = TopShape::compile(schema)?;
        let avro = AvroSchema::from_connect(schema)?;
        Ok(AvroEncoder {
            schema: avro,
            root,
            header: None,
        })
    }

    pub fn avro_schema(&self) -> &AvroSchema {
        &self.schema
    }

    /// The compact schema text to register (what AvroConverter registers for this schema).
    pub fn schema_json(&self) -> &str {
        self.schema.canonical()
    }

    /// The registry's id for [`Self::schema_json`] under this topic's subject.
    pub fn set_schema_id(&mut self, id: u32) {
        let be = id.to_be_bytes();
        self.header = Some([MAGIC, be[0], be[1], be[2], be[3]]);
    }

    pub fn schema_id(&self) -> Option<u32> {
        self.header
            .map(|h| u32::from_be_bytes([h[1], h[2], h[3], h[4]]))
    }

    /// Encode every row; null rows (tombstones, null keys) become `None`. On error the column
    /// keeps the rows before the failing one.
    pub fn encode(&self, rows: &StructArray, out: &mut EncodedColumn) -> Result<(), EncodeError> {
        let header = self.header.ok_or(EncodeError::NoSchemaId)?;
        let fields = Column::bind_fields(&self.root.fields, rows)?;
        let branch = self.root.branch;
        for row in 0..rows.len() {
            if rows.is_null(row) {
                out.push_null();
                continue;
            }
            let buf = out.buf();
            let start = buf.len();
            buf.extend_from_slice(&header);
            if let Some(b) = branch {
                buf.push(b);
            }
            for f in &fields {
                if let Err(e) = f.write(row, buf) {
                    buf.truncate(start);
                    return Err(e);
                }
            }
            out.end();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
