//! Encoders: Connect-model columns (from an envelope) → message bytes. They know Connect
//! types and their wire format, nothing about Postgres or envelopes.

pub mod avro;
pub mod json;

use datafusion::arrow::array::StructArray;

use crate::connect::Schema;
use crate::plan::Encoding;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode Arrow type {arrow} as Connect {connect}: this is a bug in cdcql, please report it")]
    TypeMismatch { arrow: String, connect: String },
    #[error("{0} is not available in this build yet")]
    NotAvailable(&'static str),
    #[error(transparent)]
    AvroSchema(#[from] avro::AvroSchemaError),
    #[error(
        "Avro encoder used before its schema id was set (register the schema first): this is a \
         bug in cdcql, please report it"
    )]
    NoSchemaId,
    #[error("`{field}` is null, but its schema is not optional and has no default")]
    NullNotAllowed { field: String },
    #[error(
        "a key or value schema must be a struct to be encoded as a record, not {0}: this is a \
         bug in cdcql, please report it"
    )]
    NotAStruct(&'static str),
}

/// Encoded messages of one batch, in one buffer. A row without bytes is `None` (a null key,
/// or a tombstone value).
#[derive(Debug, Default, Clone)]
pub struct EncodedColumn {
    data: Vec<u8>,
    ends: Vec<usize>,
    present: Vec<bool>,
}

impl EncodedColumn {
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        self.present.clear();
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if !self.present[i] {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.data[start..self.ends[i]])
    }

    pub fn push_null(&mut self) {
        self.ends.push(self.data.len());
        self.present.push(false);
    }

    /// Append bytes to the message being written; finish it with [`Self::end`].
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    pub(crate) fn end(&mut self) {
        self.ends.push(self.data.len());
        self.present.push(true);
    }

    /// Total encoded bytes.
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }
}

/// A configured encoder for one topic's keys or values.
#[derive(Debug, Clone)]
pub enum Encoder {
    Json(json::JsonEncoder),
    Avro(avro::AvroEncoder),
}

impl Encoder {
    pub fn new(encoding: &Encoding, schema: &Schema) -> Result<Self, EncodeError> {
        match encoding {
            Encoding::Json { schemas } => {
                Ok(Encoder::Json(json::JsonEncoder::new(schema, *schemas)))
            }
            // Subject naming, registration and compatibility are the registry's business;
            // the encoder only needs the id it gets back.
            Encoding::Avro(_) => Ok(Encoder::Avro(avro::AvroEncoder::new(schema)?)),
        }
    }

    /// The registry's id for [`Self::avro_schema`]; JSON has no schema id, so a no-op there.
    pub fn set_schema_id(&mut self, id: u32) {
        match self {
            Encoder::Json(_) => {}
            Encoder::Avro(e) => e.set_schema_id(id),
        }
    }

    /// The compact Avro schema to register, or `None` for JSON.
    pub fn avro_schema(&self) -> Option<&str> {
        match self {
            Encoder::Json(_) => None,
            Encoder::Avro(e) => Some(e.schema_json()),
        }
    }

    /// Encode every row; rows that are null (tombstones) become `None`.
    pub fn encode(&self, rows: &StructArray, out: &mut EncodedColumn) -> Result<(), EncodeError> {
        match self {
            Encoder::Json(e) => e.encode(rows, out),
            Encoder::Avro(e) => e.encode(rows, out),
        }
    }
}
