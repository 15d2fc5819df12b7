//! Postgres' binary values straight into Arrow builders: [`ColumnDecoder`] decodes one column's
//! values in the binary send format, which binary `COPY` and binary pgoutput tuples share;
//! [`CopyDecoder`] splits a `COPY ... TO STDOUT (FORMAT binary)` stream into rows for them.
//! No row objects, no text parsing. COPY input arrives in arbitrary chunks; a tuple split across
//! chunks is carried over until it is complete, so a builder never sees half a row.
//!
//! Arrow forms are those of [`PgType::arrow_type`]. Types Debezium reads as Postgres' text
//! (inet, ranges, tsvector, ...) are printed from the binary value by [`super::pgtext`].
//! Multi-dimensional arrays are rejected per value: Debezium's ARRAY schema has one level and
//! flattening would lose the shape.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use datafusion::arrow::array::{
    new_null_array, ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder,
    Decimal128Builder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    IntervalMonthDayNanoBuilder, ListArray, MapBuilder, MapFieldNames, NullBufferBuilder,
    RecordBatch, StringBuilder, StructArray, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, IntervalMonthDayNano, SchemaRef};

use super::pgtext::{self, exact, utf8, Reader};
use super::SourceError;
use crate::catalog::Column;
use crate::types::{
    decimal128_fits, point_fields, sparsevec_fields, DecimalHandling, PgType, RangeType,
    MONEY_SCALE, PG_EPOCH_DAYS, PG_EPOCH_MICROS,
};

pub use super::pgtext::{numeric_text, numeric_to_i128};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A value that could not be decoded. Its row holds a NULL in that column, so that the batch
/// stays whole; the runtime sets such rows aside (`on_error`) instead of stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row: in the batch it belongs to (see [`CopyDecoder::take_row_errors`]).
    pub row: usize,
    /// Index of the column among the decoded ones.
    pub column: usize,
    pub message: String,
    /// The value as Postgres prints it where cdcql can print it, else its binary form as hex
    /// (`\x...`, like bytea).
    pub raw: String,
    /// The value belongs to the old row image of a change (pgoutput), not the new one.
    pub old_image: bool,
}

/// How a value that could not be decoded is shown (dead letters, error messages).
pub fn raw_text(pg: &PgType, v: &[u8]) -> String {
    let mut text = String::new();
    let printed = match pg {
        PgType::Numeric(_) | PgType::NumericAs(_, _) => numeric_text(v, &mut text).is_ok(),
        PgType::Text
        | PgType::Varchar(_)
        | PgType::Bpchar(_)
        | PgType::Name
        | PgType::Citext
        | PgType::Json
        | PgType::Xml
        | PgType::Enum { .. } => match std::str::from_utf8(v) {
            Ok(s) => {
                text.push_str(s);
                true
            }
            Err(_) => false,
        },
        _ => false,
    };
    if printed {
        return text;
    }
    text.clear();
    text.push_str("\\x");
    for b in v {
        text.push_str(&format!("{b:02x}"));
    }
    text
}

/// Decodes one column's binary values into an Arrow array of `PgType::arrow_type()`.
///
/// `append` either appends the value, or returns an error after appending a NULL in its place,
/// so that [`len`](Self::len) always grows by one per call and columns stay aligned: a caller
/// that skips bad rows can drop that row from the finished batch.
pub struct ColumnDecoder {
    kind: Kind,
    /// Reused for values printed as text, so that no row allocates.
    scratch: String,
    /// A second buffer, for range bounds printed before they are quoted.
    scratch2: String,
}

enum Kind {
    Bool(BooleanBuilder),
    /// bit(1) / varbit(1): Debezium's BOOLEAN.
    BitBool(BooleanBuilder),
    BitText(StringBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    Oid(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, i8),
    NumericText(StringBuilder),
    NumericF64(Float64Builder),
    Money(Decimal128Builder),
    Text(StringBuilder),
    Char(StringBuilder),
    /// A format version byte (1) before the text: jsonb, ltree.
    Versioned(StringBuilder, &'static str),
    Uuid(StringBuilder),
    Bytea(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timetz(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Interval(IntervalMonthDayNanoBuilder),
    Inet(StringBuilder),
    Mac(StringBuilder, usize),
    Range(StringBuilder, RangeType),
    Tsvector(StringBuilder),
    Hstore(MapBuilder<StringBuilder, StringBuilder>),
    Point {
        x: Float64Builder,
        y: Float64Builder,
        nulls: NullBufferBuilder,
    },
    /// pgvector's vector (`half` false) and halfvec: a list of float4.
    FloatList {
        offsets: Vec<i32>,
        values: Float32Builder,
        nulls: NullBufferBuilder,
        half: bool,
    },
    Sparse {
        dims: Int32Builder,
        map: MapBuilder<Int32Builder, Float32Builder>,
        nulls: NullBufferBuilder,
    },
    List {
        field: FieldRef,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        child: Box<ColumnDecoder>,
    },
    /// The planner never reads these; kept so that a bug shows up as an error, not a panic.
    Unsupported(String, usize),
}

fn strings(capacity: usize, bytes_per_value: usize) -> StringBuilder {
    StringBuilder::with_capacity(capacity, capacity * bytes_per_value)
}

impl ColumnDecoder {
    pub fn new(pg: &PgType, capacity: usize) -> ColumnDecoder {
        let kind = match pg {
            PgType::Bool => Kind::Bool(BooleanBuilder::with_capacity(capacity)),
            PgType::Bit(1) | PgType::Varbit(Some(1)) => {
                Kind::BitBool(BooleanBuilder::with_capacity(capacity))
            }
            PgType::Bit(_) | PgType::Varbit(_) => Kind::BitText(strings(capacity, 16)),
            PgType::Int2 => Kind::I16(Int16Builder::with_capacity(capacity)),
            PgType::Int4 => Kind::I32(Int32Builder::with_capacity(capacity)),
            PgType::Int8 => Kind::I64(Int64Builder::with_capacity(capacity)),
            PgType::Oid => Kind::Oid(Int64Builder::with_capacity(capacity)),
            PgType::Float4 => Kind::F32(Float32Builder::with_capacity(capacity)),
            PgType::Float8 => Kind::F64(Float64Builder::with_capacity(capacity)),
            PgType::Numeric(Some((p, s))) if decimal128_fits(*p, *s) => Kind::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(*p as u8, *s as i8)
                    .expect("precision checked by decimal128_fits"),
                *s as i8,
            ),
            PgType::NumericAs(_, DecimalHandling::Double) => {
                Kind::NumericF64(Float64Builder::with_capacity(capacity))
            }
            PgType::Numeric(_) | PgType::NumericAs(_, _) => Kind::NumericText(strings(capacity, 8)),
            PgType::Money => Kind::Money(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(19, MONEY_SCALE)
                    .expect("valid precision"),
            ),
            PgType::Text
            | PgType::Varchar(_)
            | PgType::Bpchar(_)
            | PgType::Name
            | PgType::Citext
            | PgType::Json
            | PgType::Xml
            | PgType::Enum { .. } => Kind::Text(strings(capacity, 16)),
            PgType::Char => Kind::Char(strings(capacity, 1)),
            PgType::Jsonb => Kind::Versioned(strings(capacity, 16), "jsonb"),
            PgType::Ltree => Kind::Versioned(strings(capacity, 16), "ltree"),
            PgType::Uuid => Kind::Uuid(strings(capacity, 36)),
            // PostGIS sends EWKB, which is what Debezium's Geometry carries.
            PgType::Bytea | PgType::Geometry | PgType::Geography => {
                Kind::Bytea(BinaryBuilder::with_capacity(capacity, capacity * 16))
            }
            PgType::Vector | PgType::Halfvec => Kind::FloatList {
                offsets: {
                    let mut o = Vec::with_capacity(capacity + 1);
                    o.push(0);
                    o
                },
                values: Float32Builder::with_capacity(capacity * 8),
                nulls: NullBufferBuilder::new(capacity),
                half: matches!(pg, PgType::Halfvec),
            },
            PgType::Sparsevec => Kind::Sparse {
                dims: Int32Builder::with_capacity(capacity),
                map: MapBuilder::with_capacity(
                    Some(MapFieldNames {
                        entry: "entries".into(),
                        key: "keys".into(),
                        value: "values".into(),
                    }),
                    Int32Builder::with_capacity(capacity * 4),
                    Float32Builder::with_capacity(capacity * 4),
                    capacity,
                ),
                nulls: NullBufferBuilder::new(capacity),
            },
            PgType::Date => Kind::Date(Date32Builder::with_capacity(capacity)),
            PgType::Time(_) => Kind::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            PgType::Timetz(_) => Kind::Timetz(strings(capacity, 16)),
            PgType::Timestamp(_) => {
                Kind::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            PgType::Timestamptz(_) => Kind::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            PgType::Interval => {
                Kind::Interval(IntervalMonthDayNanoBuilder::with_capacity(capacity))
            }
            PgType::Inet | PgType::Cidr => Kind::Inet(strings(capacity, 16)),
            PgType::Macaddr => Kind::Mac(strings(capacity, 17), 6),
            PgType::Macaddr8 => Kind::Mac(strings(capacity, 23), 8),
            PgType::Range(r) => Kind::Range(strings(capacity, 24), *r),
            PgType::Tsvector => Kind::Tsvector(strings(capacity, 32)),
            PgType::Hstore => Kind::Hstore(MapBuilder::with_capacity(
                Some(MapFieldNames {
                    entry: "entries".into(),
                    key: "keys".into(),
                    value: "values".into(),
                }),
                strings(capacity * 2, 8),
                strings(capacity * 2, 8),
                capacity,
            )),
            PgType::Point => Kind::Point {
                x: Float64Builder::with_capacity(capacity),
                y: Float64Builder::with_capacity(capacity),
                nulls: NullBufferBuilder::new(capacity),
            },
            PgType::Array(elem) => match elem.arrow_type() {
                Some(dt) => {
                    let mut offsets = Vec::with_capacity(capacity + 1);
                    offsets.push(0);
                    Kind::List {
                        field: Arc::new(Field::new("item", dt, true)),
                        offsets,
                        nulls: NullBufferBuilder::new(capacity),
                        child: Box::new(ColumnDecoder::new(elem, capacity * 4)),
                    }
                }
                None => Kind::Unsupported(pg.to_string(), 0),
            },
            PgType::Unsupported { name, .. } => Kind::Unsupported(name.clone(), 0),
        };
        ColumnDecoder {
            kind,
            scratch: String::new(),
            scratch2: String::new(),
        }
    }

    pub fn len(&self) -> usize {
        match &self.kind {
            Kind::Bool(b) | Kind::BitBool(b) => b.len(),
            Kind::I16(b) => b.len(),
            Kind::I32(b) => b.len(),
            Kind::I64(b) | Kind::Oid(b) => b.len(),
            Kind::F32(b) => b.len(),
            Kind::F64(b) | Kind::NumericF64(b) => b.len(),
            Kind::Decimal(b, _) | Kind::Money(b) => b.len(),
            Kind::BitText(b)
            | Kind::NumericText(b)
            | Kind::Text(b)
            | Kind::Char(b)
            | Kind::Versioned(b, _)
            | Kind::Uuid(b)
            | Kind::Timetz(b)
            | Kind::Inet(b)
            | Kind::Mac(b, _)
            | Kind::Range(b, _)
            | Kind::Tsvector(b) => b.len(),
            Kind::Bytea(b) => b.len(),
            Kind::Date(b) => b.len(),
            Kind::Time(b) => b.len(),
            Kind::Timestamp(b) => b.len(),
            Kind::Interval(b) => b.len(),
            Kind::Hstore(b) => b.len(),
            Kind::Point { x, .. } => x.len(),
            Kind::FloatList { offsets, .. } => offsets.len() - 1,
            Kind::Sparse { dims, .. } => dims.len(),
            Kind::List { offsets, .. } => offsets.len() - 1,
            Kind::Unsupported(_, n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn append_null(&mut self) {
        match &mut self.kind {
            Kind::Bool(b) | Kind::BitBool(b) => b.append_null(),
            Kind::I16(b) => b.append_null(),
            Kind::I32(b) => b.append_null(),
            Kind::I64(b) | Kind::Oid(b) => b.append_null(),
            Kind::F32(b) => b.append_null(),
            Kind::F64(b) | Kind::NumericF64(b) => b.append_null(),
            Kind::Decimal(b, _) | Kind::Money(b) => b.append_null(),
            Kind::BitText(b)
            | Kind::NumericText(b)
            | Kind::Text(b)
            | Kind::Char(b)
            | Kind::Versioned(b, _)
            | Kind::Uuid(b)
            | Kind::Timetz(b)
            | Kind::Inet(b)
            | Kind::Mac(b, _)
            | Kind::Range(b, _)
            | Kind::Tsvector(b) => b.append_null(),
            Kind::Bytea(b) => b.append_null(),
            Kind::Date(b) => b.append_null(),
            Kind::Time(b) => b.append_null(),
            Kind::Timestamp(b) => b.append_null(),
            Kind::Interval(b) => b.append_null(),
            Kind::Hstore(b) => {
                let _ = b.append(false);
            }
            Kind::Point { x, y, nulls } => {
                // The struct's children are non-nullable: a NULL point keeps placeholder zeros.
                x.append_value(0.0);
                y.append_value(0.0);
                nulls.append_null();
            }
            Kind::FloatList {
                offsets,
                values,
                nulls,
                ..
            } => {
                offsets.push(values.len() as i32);
                nulls.append_null();
            }
            Kind::Sparse { dims, map, nulls } => {
                dims.append_value(0);
                let _ = map.append(true);
                nulls.append_null();
            }
            Kind::List {
                offsets,
                nulls,
                child,
                ..
            } => {
                offsets.push(child.len() as i32);
                nulls.append_null();
            }
            Kind::Unsupported(_, n) => *n += 1,
        }
    }

    /// Append one value in Postgres' binary send format.
    pub fn append(&mut self, v: &[u8]) -> Result<(), String> {
        let before = self.len();
        let result = self.append_value(v);
        if result.is_err() && self.len() == before {
            self.append_null();
        }
        result
    }

    /// Appends the value, or returns an error; the list and point arms may leave a NULL row
    /// behind them, every other arm appends nothing on error.
    fn append_value(&mut self, v: &[u8]) -> Result<(), String> {
        let text = &mut self.scratch;
        text.clear();
        match &mut self.kind {
            Kind::Bool(b) => b.append_value(exact::<1>(v)?[0] != 0),
            Kind::BitBool(b) => {
                pgtext::bits_text(v, text)?;
                b.append_value(text.starts_with('1'));
            }
            Kind::BitText(b) => {
                pgtext::bits_text(v, text)?;
                b.append_value(text.as_str());
            }
            Kind::I16(b) => b.append_value(i16::from_be_bytes(exact(v)?)),
            Kind::I32(b) => b.append_value(i32::from_be_bytes(exact(v)?)),
            Kind::I64(b) => b.append_value(i64::from_be_bytes(exact(v)?)),
            Kind::Oid(b) => b.append_value(u32::from_be_bytes(exact(v)?) as i64),
            Kind::F32(b) => b.append_value(f32::from_be_bytes(exact(v)?)),
            Kind::F64(b) => b.append_value(f64::from_be_bytes(exact(v)?)),
            Kind::Decimal(b, scale) => b.append_value(numeric_to_i128(v, *scale)?),
            Kind::NumericText(b) => {
                numeric_text(v, text)?;
                b.append_value(text.as_str());
            }
            Kind::NumericF64(b) => {
                // Through the exact text: Rust's parse rounds correctly, as BigDecimal's
                // doubleValue does, and reads NaN / Infinity / -Infinity.
                numeric_text(v, text)?;
                let f: f64 = text
                    .parse()
                    .map_err(|e| format!("numeric `{text}` is not a double: {e}"))?;
                b.append_value(f);
            }
            Kind::Money(b) => b.append_value(i64::from_be_bytes(exact(v)?) as i128),
            Kind::Text(b) => b.append_value(utf8(v)?),
            Kind::Char(b) => {
                pgtext::char_text(v, text)?;
                b.append_value(text.as_str());
            }
            Kind::Versioned(b, what) => match v.split_first() {
                Some((1, rest)) => b.append_value(utf8(rest)?),
                _ => return Err(format!("unknown {what} binary format version")),
            },
            Kind::Uuid(b) => {
                pgtext::uuid_text(v, text)?;
                b.append_value(text.as_str());
            }
            Kind::Bytea(b) => b.append_value(v),
            Kind::Date(b) => {
                let d = i32::from_be_bytes(exact(v)?);
                // ±infinity (i32::MAX / MIN) stay as they are; the envelope maps them.
                b.append_value(if d == i32::MAX || d == i32::MIN {
                    d
                } else {
                    d.checked_add(PG_EPOCH_DAYS)
                        .ok_or("date out of range for days since 1970")?
                })
            }
            Kind::Time(b) => b.append_value(i64::from_be_bytes(exact(v)?)),
            Kind::Timetz(b) => {
                pgtext::zoned_time(v, text)?;
                b.append_value(text.as_str());
            }
            Kind::Timestamp(b) => {
                let t = i64::from_be_bytes(exact(v)?);
                b.append_value(if t == i64::MAX || t == i64::MIN {
                    t
                } else {
                    t.checked_add(PG_EPOCH_MICROS)
                        .ok_or("timestamp out of range for microseconds since 1970")?
                })
            }
            Kind::Interval(b) => {
                let mut r = Reader::new(v);
                let micros = r.i64()?;
                let days = r.i32()?;
                let months = r.i32()?;
                r.end()?;
                let nanos = micros
                    .checked_mul(1000)
                    .ok_or("interval time part beyond ±292 years")?;
                b.append_value(IntervalMonthDayNano::new(months, days, nanos));
            }
            Kind::Inet(b) => {
                pgtext::inet_text(v, text)?;
                b.append_value(text.as_str());
            }
            Kind::Mac(b, len) => {
                pgtext::macaddr_text(v, *len, text)?;
                b.append_value(text.as_str());
            }
            Kind::Range(b, ty) => {
                pgtext::range_text(v, *ty, text, &mut self.scratch2)?;
                b.append_value(text.as_str());
            }
            Kind::Tsvector(b) => {
                pgtext::tsvector_text(v, text)?;
                b.append_value(text.as_str());
            }
            Kind::Hstore(b) => {
                let mut r = Reader::new(v);
                let count = r.i32()?;
                for _ in 0..count.max(0) {
                    // Both halves are read before either is appended: keys and values must
                    // stay the same length even when a pair is malformed.
                    let key = utf8(r.field()?.ok_or("hstore with a NULL key")?)?;
                    let value = r.field()?.map(utf8).transpose()?;
                    b.keys().append_value(key);
                    b.values().append_option(value);
                }
                r.end()?;
                b.append(true).map_err(|e| e.to_string())?;
            }
            Kind::Point { x, y, nulls } => {
                let mut r = Reader::new(v);
                let px = f64::from_bits(r.i64()? as u64);
                let py = f64::from_bits(r.i64()? as u64);
                r.end()?;
                x.append_value(px);
                y.append_value(py);
                nulls.append_non_null();
            }
            Kind::FloatList {
                offsets,
                values,
                nulls,
                half,
            } => {
                // vector / halfvec send: int16 dim, int16 unused, then the elements.
                let mut r = Reader::new(v);
                let dim = r.i16()?.max(0) as usize;
                r.i16()?;
                let width = if *half { 2 } else { 4 };
                let body = r.take(dim * width)?;
                r.end()?;
                for e in body.chunks_exact(width) {
                    values.append_value(if *half {
                        half_to_f32(u16::from_be_bytes([e[0], e[1]]))
                    } else {
                        f32::from_be_bytes([e[0], e[1], e[2], e[3]])
                    });
                }
                offsets.push(
                    i32::try_from(values.len())
                        .map_err(|_| "vector column too large for a batch")?,
                );
                nulls.append_non_null();
            }
            Kind::Sparse { dims, map, nulls } => {
                // sparsevec send: int32 dim, int32 nnz, int32 unused, 0-based indices, values.
                let mut r = Reader::new(v);
                let dim = r.i32()?;
                let nnz = r.i32()?.max(0) as usize;
                r.i32()?;
                let indices = r.take(nnz * 4)?;
                let vals = r.take(nnz * 4)?;
                r.end()?;
                for (i, x) in indices.chunks_exact(4).zip(vals.chunks_exact(4)) {
                    // Postgres prints (and Debezium keeps) 1-based indices.
                    let index = i32::from_be_bytes([i[0], i[1], i[2], i[3]]);
                    map.keys().append_value(index.saturating_add(1));
                    map.values()
                        .append_value(f32::from_be_bytes([x[0], x[1], x[2], x[3]]));
                }
                map.append(true).map_err(|e| e.to_string())?;
                dims.append_value(dim);
                nulls.append_non_null();
            }
            Kind::List {
                offsets,
                nulls,
                child,
                ..
            } => {
                let mut r = Reader::new(v);
                let ndim = r.i32()?;
                let _has_nulls = r.i32()?;
                let _element_oid = r.i32()?;
                if ndim > 1 {
                    return Err(format!(
                        "a {ndim}-dimensional array: only one-dimensional arrays can be written \
                         (Debezium's ARRAY has one level)"
                    ));
                }
                let count = if ndim == 1 {
                    let n = r.i32()?;
                    let _lower_bound = r.i32()?;
                    n.max(0) as usize
                } else {
                    0
                };
                let mut failure = None;
                for i in 0..count {
                    let element = match r.field() {
                        Ok(e) => e,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    };
                    match element {
                        None => child.append_null(),
                        Some(e) => {
                            // On error the child has appended a NULL for this element.
                            if let Err(e) = child.append(e) {
                                failure = Some(format!("element {}: {e}", i + 1));
                                break;
                            }
                        }
                    }
                }
                // After a failure, the list row becomes NULL; its child range still holds
                // whatever was appended, which Arrow allows under a NULL entry.
                let failure = failure.or_else(|| r.end().err());
                offsets.push(
                    i32::try_from(child.len()).map_err(|_| "array column too large for a batch")?,
                );
                match failure {
                    None => nulls.append_non_null(),
                    Some(e) => {
                        nulls.append_null();
                        return Err(e);
                    }
                }
            }
            Kind::Unsupported(name, _) => {
                return Err(format!(
                    "type {name} cannot be decoded: this is a bug in cdcql, please report it"
                ))
            }
        }
        Ok(())
    }

    /// The values appended since the last `finish`, as one array; the decoder starts empty.
    pub fn finish(&mut self) -> ArrayRef {
        match &mut self.kind {
            Kind::Bool(b) | Kind::BitBool(b) => Arc::new(b.finish()),
            Kind::I16(b) => Arc::new(b.finish()),
            Kind::I32(b) => Arc::new(b.finish()),
            Kind::I64(b) | Kind::Oid(b) => Arc::new(b.finish()),
            Kind::F32(b) => Arc::new(b.finish()),
            Kind::F64(b) | Kind::NumericF64(b) => Arc::new(b.finish()),
            Kind::Decimal(b, _) | Kind::Money(b) => Arc::new(b.finish()),
            Kind::BitText(b)
            | Kind::NumericText(b)
            | Kind::Text(b)
            | Kind::Char(b)
            | Kind::Versioned(b, _)
            | Kind::Uuid(b)
            | Kind::Timetz(b)
            | Kind::Inet(b)
            | Kind::Mac(b, _)
            | Kind::Range(b, _)
            | Kind::Tsvector(b) => Arc::new(b.finish()),
            Kind::Bytea(b) => Arc::new(b.finish()),
            Kind::Date(b) => Arc::new(b.finish()),
            Kind::Time(b) => Arc::new(b.finish()),
            Kind::Timestamp(b) => Arc::new(b.finish()),
            Kind::Interval(b) => Arc::new(b.finish()),
            Kind::Hstore(b) => Arc::new(b.finish()),
            Kind::Point { x, y, nulls } => Arc::new(StructArray::new(
                point_fields(),
                vec![Arc::new(x.finish()), Arc::new(y.finish())],
                nulls.finish(),
            )),
            Kind::FloatList {
                offsets,
                values,
                nulls,
                ..
            } => {
                let ends = std::mem::replace(offsets, vec![0]);
                Arc::new(ListArray::new(
                    Arc::new(Field::new("item", DataType::Float32, true)),
                    OffsetBuffer::new(ScalarBuffer::from(ends)),
                    Arc::new(values.finish()),
                    nulls.finish(),
                ))
            }
            Kind::Sparse { dims, map, nulls } => Arc::new(StructArray::new(
                sparsevec_fields(),
                vec![Arc::new(dims.finish()), Arc::new(map.finish())],
                nulls.finish(),
            )),
            Kind::List {
                field,
                offsets,
                nulls,
                child,
            } => {
                let ends = std::mem::replace(offsets, vec![0]);
                Arc::new(ListArray::new(
                    Arc::clone(field),
                    OffsetBuffer::new(ScalarBuffer::from(ends)),
                    child.finish(),
                    nulls.finish(),
                ))
            }
            Kind::Unsupported(_, n) => new_null_array(&DataType::Null, std::mem::take(n)),
        }
    }
}

/// IEEE half precision (pgvector's halfvec elements) to f32, exactly.
fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if mant == 0 => sign,
        0 => {
            // Subnormal: shift the mantissa up to an implicit leading one.
            let (mut e, mut m) = (127 - 15 + 1, mant);
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (mant << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

/// Turns a binary COPY byte stream into record batches of at most `batch_rows` rows.
pub struct CopyDecoder {
    schema: SchemaRef,
    columns: Vec<Column>,
    table: String,
    decoders: Vec<ColumnDecoder>,
    batch_rows: usize,
    carry: BytesMut,
    header_done: bool,
    finished: bool,
    /// Go on past values that cannot be decoded, recording them (see [`Self::keep_bad_rows`]).
    keep_going: bool,
    /// Rows handed out in earlier batches.
    flushed: u64,
    /// Bad values, by row number counted from the first row.
    row_errors: Vec<(u64, RowError)>,
}

impl CopyDecoder {
    pub fn new(table: String, columns: Vec<Column>, schema: SchemaRef, batch_rows: usize) -> Self {
        let decoders = columns
            .iter()
            .map(|c| ColumnDecoder::new(&c.pg_type, batch_rows))
            .collect();
        CopyDecoder {
            schema,
            columns,
            table,
            decoders,
            batch_rows: batch_rows.max(1),
            carry: BytesMut::new(),
            header_done: false,
            finished: false,
            keep_going: false,
            flushed: 0,
            row_errors: Vec::new(),
        }
    }

    /// Do not stop at a value that cannot be decoded: its row gets a NULL there and the error
    /// is kept for [`Self::take_row_errors`].
    pub fn keep_bad_rows(&mut self) {
        self.keep_going = true;
    }

    /// The bad values of rows `start..end` (counted from the first row; a batch is such a
    /// range), with `row` relative to `start`.
    pub fn take_row_errors(&mut self, start: u64, end: u64) -> Vec<RowError> {
        if self.row_errors.is_empty() {
            return Vec::new();
        }
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.row_errors)
            .into_iter()
            .partition(|(r, _)| (start..end).contains(r));
        self.row_errors = rest;
        mine.into_iter()
            .map(|(r, mut e)| {
                e.row = (r - start) as usize;
                e
            })
            .collect()
    }

    fn rows(&self) -> usize {
        self.decoders.first().map_or(0, |b| b.len())
    }

    /// Feed the next chunk; full batches are pushed to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<RecordBatch>) -> Result<(), SourceError> {
        self.carry.extend_from_slice(chunk);
        if !self.header_done {
            if self.carry.len() < SIGNATURE.len() + 8 {
                return Ok(());
            }
            if &self.carry[..SIGNATURE.len()] != SIGNATURE {
                return Err(SourceError::Protocol("missing PGCOPY signature".into()));
            }
            let ext_len =
                u32::from_be_bytes(self.carry[15..19].try_into().expect("4 bytes")) as usize;
            if self.carry.len() < 19 + ext_len {
                return Ok(());
            }
            self.carry.advance(19 + ext_len);
            self.header_done = true;
        }
        loop {
            if self.finished {
                return Ok(());
            }
            let Some(tuple_len) = self.complete_tuple_len()? else {
                return Ok(());
            };
            let tuple = self.carry.split_to(tuple_len);
            let field_count = i16::from_be_bytes([tuple[0], tuple[1]]);
            if field_count == -1 {
                self.finished = true;
                continue;
            }
            let mut pos = 2;
            let row = self.flushed + self.rows() as u64;
            for i in 0..self.decoders.len() {
                let len = i32::from_be_bytes(tuple[pos..pos + 4].try_into().expect("checked"));
                pos += 4;
                if len < 0 {
                    self.decoders[i].append_null();
                    continue;
                }
                let v = &tuple[pos..pos + len as usize];
                pos += len as usize;
                if let Err(message) = self.decoders[i].append(v) {
                    if self.keep_going {
                        // The failed decoder holds a NULL; the rest of the row goes on.
                        self.row_errors.push((
                            row,
                            RowError {
                                row: 0,
                                column: i,
                                message,
                                raw: raw_text(&self.columns[i].pg_type, v),
                                old_image: false,
                            },
                        ));
                        continue;
                    }
                    // Keep the columns aligned (the failed one already holds a NULL).
                    for d in &mut self.decoders[i + 1..] {
                        d.append_null();
                    }
                    return Err(SourceError::Decode {
                        table: self.table.clone(),
                        column: self.columns[i].name.clone(),
                        message,
                    });
                }
            }
            if self.rows() >= self.batch_rows {
                out.push(self.flush()?);
            }
        }
    }

    /// Length of the first tuple in `carry` if it is complete, checking its field count.
    fn complete_tuple_len(&self) -> Result<Option<usize>, SourceError> {
        let buf = &self.carry[..];
        if buf.len() < 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([buf[0], buf[1]]);
        if count == -1 {
            return Ok(Some(2));
        }
        if count as usize != self.decoders.len() {
            return Err(SourceError::Protocol(format!(
                "expected {} fields per row, got {count}",
                self.decoders.len()
            )));
        }
        let mut pos = 2;
        for _ in 0..count {
            if buf.len() < pos + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes(buf[pos..pos + 4].try_into().expect("4 bytes"));
            pos += 4;
            if len > 0 {
                pos += len as usize;
            }
        }
        Ok((buf.len() >= pos).then_some(pos))
    }

    fn flush(&mut self) -> Result<RecordBatch, SourceError> {
        let arrays: Vec<ArrayRef> = self.decoders.iter_mut().map(|b| b.finish()).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.flushed += batch.num_rows() as u64;
        Ok(batch)
    }

    /// The rows left after the stream ended.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, SourceError> {
        if !self.carry.is_empty() {
            return Err(SourceError::Protocol("COPY data ended inside a row".into()));
        }
        if self.rows() == 0 {
            return Ok(None);
        }
        self.flush().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Float64Type, Int32Type};

    fn decode(pg: &PgType, values: &[Option<&[u8]>]) -> (ArrayRef, Vec<Result<(), String>>) {
        let mut d = ColumnDecoder::new(pg, 4);
        let results = values
            .iter()
            .map(|v| match v {
                Some(v) => d.append(v),
                None => {
                    d.append_null();
                    Ok(())
                }
            })
            .collect();
        let a = d.finish();
        assert_eq!(Some(a.data_type().clone()), pg.arrow_type(), "{pg}");
        assert_eq!(d.len(), 0);
        (a, results)
    }

    fn array_value(elements: &[Option<&[u8]>], dims: i32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(dims.to_be_bytes());
        v.extend(0i32.to_be_bytes());
        v.extend(23u32.to_be_bytes());
        if dims > 0 {
            v.extend((elements.len() as i32).to_be_bytes());
            v.extend(1i32.to_be_bytes());
            if dims == 2 {
                v.extend(1i32.to_be_bytes());
                v.extend(1i32.to_be_bytes());
            }
        }
        for e in elements {
            match e {
                Some(b) => {
                    v.extend((b.len() as i32).to_be_bytes());
                    v.extend_from_slice(b);
                }
                None => v.extend((-1i32).to_be_bytes()),
            }
        }
        v
    }

    /// A binary COPY stream of rows of (int4, numeric) values.
    fn copy_stream(rows: &[(i32, &[u8])]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend(0u32.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        for (id, numeric) in rows {
            v.extend(2i16.to_be_bytes());
            v.extend(4i32.to_be_bytes());
            v.extend(id.to_be_bytes());
            v.extend((numeric.len() as i32).to_be_bytes());
            v.extend_from_slice(numeric);
        }
        v.extend((-1i16).to_be_bytes());
        v
    }

    #[test]
    fn bad_values_can_be_kept_with_their_rows() {
        let pg = PgType::Numeric(Some((10, 2)));
        let columns = vec![
            Column {
                name: "id".into(),
                pg_type: PgType::Int4,
                nullable: false,
                type_oid: 0,
            },
            Column {
                name: "amount".into(),
                pg_type: pg.clone(),
                nullable: true,
                type_oid: 0,
            },
        ];
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("amount", pg.arrow_type().unwrap(), true),
        ]));
        // 1.00: one base-10000 digit (1), weight 0, scale 2. NaN: sign word 0xC000.
        let one = [0u8, 1, 0, 0, 0, 0, 0, 2, 0, 1];
        let nan = [0u8, 0, 0, 0, 0xC0, 0, 0, 0];
        let stream = copy_stream(&[(1, &one), (2, &nan), (3, &one), (4, &nan), (5, &one)]);
        let strict = || CopyDecoder::new("t".into(), columns.clone(), schema.clone(), 2);

        let mut d = strict();
        let err = d.push(&stream, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("amount") && err.contains("NaN"), "{err}");

        let mut d = strict();
        d.keep_bad_rows();
        let mut out = Vec::new();
        // In pieces that split rows, as the server sends them.
        for piece in stream.chunks(7) {
            d.push(piece, &mut out).unwrap();
        }
        out.extend(d.finish().unwrap());
        assert_eq!(
            out.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        let mut start = 0;
        let mut found = Vec::new();
        for b in &out {
            let end = start + b.num_rows() as u64;
            for e in d.take_row_errors(start, end) {
                // The bad value is NULL in its row; the other columns are whole.
                assert!(b.column(1).is_null(e.row));
                let id = b.column(0).as_primitive::<Int32Type>().value(e.row);
                found.push((id, e.column, e.raw, e.message.contains("NaN")));
            }
            start = end;
        }
        assert_eq!(
            found,
            vec![
                (2, 1, "NaN".to_string(), true),
                (4, 1, "NaN".to_string(), true)
            ]
        );
    }

    #[test]
    fn raw_values_print_as_postgres_would_or_as_hex() {
        let nan = [0u8, 0, 0, 0, 0xC0, 0, 0, 0];
        assert_eq!(raw_text(&PgType::Numeric(None), &nan), "NaN");
        assert_eq!(raw_text(&PgType::Text, b"abc"), "abc");
        assert_eq!(raw_text(&PgType::Text, b"\xff\x00"), "\\xff00");
        assert_eq!(raw_text(&PgType::Int4, &[0, 0, 1]), "\\x000001");
    }

    #[test]
    fn int_arrays_become_lists_and_bad_rows_become_null() {
        let one = 1i32.to_be_bytes();
        let two = 2i32.to_be_bytes();
        let pg = PgType::Array(Box::new(PgType::Int4));
        let good = array_value(&[Some(&one), None, Some(&two)], 1);
        let empty = array_value(&[], 0);
        let two_d = array_value(&[Some(&one)], 2);
        let short = array_value(&[Some(&one[..3]), Some(&two)], 1);
        let (a, results) = decode(
            &pg,
            &[Some(&good), None, Some(&empty), Some(&two_d), Some(&short)],
        );
        assert!(results[..3].iter().all(|r| r.is_ok()));
        assert!(results[3].as_ref().unwrap_err().contains("2-dimensional"));
        assert!(results[4].as_ref().unwrap_err().contains("element 1"));
        let list = a.as_list::<i32>();
        assert_eq!(list.len(), 5);
        let first = list.value(0);
        let first = first.as_primitive::<Int32Type>();
        assert_eq!(
            first.iter().collect::<Vec<_>>(),
            vec![Some(1), None, Some(2)]
        );
        assert!(list.is_null(1));
        assert!(list.is_valid(2) && list.value(2).is_empty());
        assert!(list.is_null(3) && list.is_null(4));
    }

    #[test]
    fn hstore_and_point() {
        let mut h = 2i32.to_be_bytes().to_vec();
        for (k, v) in [("a", Some("1")), ("b", None)] {
            h.extend((k.len() as i32).to_be_bytes());
            h.extend(k.as_bytes());
            match v {
                Some(v) => {
                    h.extend((v.len() as i32).to_be_bytes());
                    h.extend(v.as_bytes());
                }
                None => h.extend((-1i32).to_be_bytes()),
            }
        }
        let (a, r) = decode(&PgType::Hstore, &[Some(&h), None, Some(&h[..9])]);
        assert!(r[0].is_ok() && r[2].is_err());
        let m = a.as_map();
        assert_eq!(m.value_length(0), 2);
        assert!(m.is_null(1) && m.is_null(2));
        assert_eq!(m.keys().as_string::<i32>().value(1), "b");
        assert!(m.values().is_null(1));

        let mut p = 1.5f64.to_be_bytes().to_vec();
        p.extend((-2.0f64).to_be_bytes());
        let (a, r) = decode(&PgType::Point, &[Some(&p), None, Some(&p[..8])]);
        assert!(r[0].is_ok() && r[2].is_err());
        let s = a.as_struct();
        assert_eq!(s.column(1).as_primitive::<Float64Type>().value(0), -2.0);
        assert!(s.is_null(1) && s.is_null(2));
    }

    #[test]
    fn pgvector_types() {
        let mut v = 3i16.to_be_bytes().to_vec();
        v.extend(0i16.to_be_bytes());
        for x in [1.5f32, -0.1, 0.0] {
            v.extend(x.to_be_bytes());
        }
        let (a, r) = decode(&PgType::Vector, &[Some(&v), None, Some(&v[..7])]);
        assert!(r[0].is_ok() && r[2].is_err());
        let list = a.as_list::<i32>();
        let first = list.value(0);
        let values: Vec<f32> = first
            .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
            .values()
            .to_vec();
        assert_eq!(values, vec![1.5, -0.1, 0.0]);
        assert!(list.is_null(1) && list.is_null(2));

        // halfvec: 1.0 = 0x3c00, -2.5 = 0xc100, 2^-24 (smallest subnormal) = 0x0001
        let mut h = 3i16.to_be_bytes().to_vec();
        h.extend(0i16.to_be_bytes());
        for bits in [0x3c00u16, 0xc100, 0x0001] {
            h.extend(bits.to_be_bytes());
        }
        let (a, _) = decode(&PgType::Halfvec, &[Some(&h)]);
        let first = a.as_list::<i32>().value(0);
        let values: Vec<f32> = first
            .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
            .values()
            .to_vec();
        assert_eq!(values, vec![1.0, -2.5, 2f32.powi(-24)]);

        // sparsevec '{1:1.5,3:2}/5': indices 0 and 2 on the wire.
        let mut s = 5i32.to_be_bytes().to_vec();
        s.extend(2i32.to_be_bytes());
        s.extend(0i32.to_be_bytes());
        s.extend(0i32.to_be_bytes());
        s.extend(2i32.to_be_bytes());
        s.extend(1.5f32.to_be_bytes());
        s.extend(2f32.to_be_bytes());
        let (a, r) = decode(&PgType::Sparsevec, &[Some(&s), None, Some(&s[..20])]);
        assert!(r[0].is_ok() && r[2].is_err());
        let st = a.as_struct();
        assert_eq!(st.column(0).as_primitive::<Int32Type>().value(0), 5);
        let m = st.column(1).as_map();
        assert_eq!(
            m.keys().as_primitive::<Int32Type>().values().to_vec(),
            vec![1, 3]
        );
        assert!(st.is_null(1) && st.is_null(2));
    }

    #[test]
    fn nan_is_an_error_only_for_fixed_scale_decimals() {
        let nan = [0u8, 0, 0, 0, 0xC0, 0, 0, 0];
        let (_, r) = decode(&PgType::Numeric(Some((10, 2))), &[Some(&nan)]);
        assert!(r[0].as_ref().unwrap_err().contains("NaN"));
        let (a, r) = decode(
            &PgType::NumericAs(Some((10, 2)), DecimalHandling::Double),
            &[Some(&nan)],
        );
        assert!(r[0].is_ok());
        assert!(a.as_primitive::<Float64Type>().value(0).is_nan());
        let (a, _) = decode(
            &PgType::NumericAs(Some((10, 2)), DecimalHandling::String),
            &[Some(&nan)],
        );
        assert_eq!(a.as_string::<i32>().value(0), "NaN");
    }
}
