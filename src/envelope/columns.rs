//! Column values: a Postgres type's Connect schema (Debezium's mapping, under the pipeline's
//! [`TypeOptions`]) and the conversion of an Arrow column from its source form
//! ([`PgType::arrow_type`]) to the Connect physical form that schema promises (see
//! `crate::connect`). Shared by every envelope.
//!
//! The rules follow `shared/reference/debezium-format.md` §5 and Debezium 3.6's
//! `PostgresValueConverter`; where a rule is a Debezium quirk, the comment says so.

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Decimal128Array, Float64Array, Float64Builder,
    Int32Array, Int32Builder, Int64Builder, ListArray, StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field as ArrowField, Fields, Float64Type, Int32Type,
    IntervalMonthDayNanoType, TimeUnit,
};

use super::EnvelopeError;
use crate::connect::{ConnectType, Field, Schema};
use crate::encode::json::{base64_into, write_java_float};
use crate::plan::OutputColumn;
use crate::types::{
    civil_from_days, BinaryHandling, DecimalHandling, HstoreHandling, IntervalHandling, PgType,
    TimePrecision, TypeOptions, MONEY_SCALE,
};

/// Debezium's `io.debezium.time.Date` for ±infinity: the epoch days of the `LocalDate`s it
/// uses for them (-5877611-06-21 and -5877611-06-22).
pub const DATE_POSITIVE_INFINITY: i32 = -2_147_472_692;
pub const DATE_NEGATIVE_INFINITY: i32 = -2_147_472_691;
/// pgjdbc's `DATE_POSITIVE_INFINITY` / `DATE_NEGATIVE_INFINITY`, which Debezium reads as
/// microseconds for ±infinity timestamps (PGDOC); millisecond schemas get them divided by 1000.
pub const TIMESTAMP_POSITIVE_INFINITY_MICROS: i64 = 9_223_372_036_825_200_000;
pub const TIMESTAMP_NEGATIVE_INFINITY_MICROS: i64 = -9_223_372_036_832_400_000;
/// Debezium's `MicroDuration.DAYS_PER_MONTH_AVG`.
const DAYS_PER_MONTH_AVG: f64 = 365.25 / 12.0;

fn named(ty: ConnectType, name: &str) -> Schema {
    Schema::new(ty).named(name).version(1)
}

/// The Connect schema Debezium gives a column of this Postgres type.
pub fn column_schema(pg: &PgType, optional: bool, opts: &TypeOptions) -> Schema {
    let s = match pg {
        PgType::Bool | PgType::Bit(1) | PgType::Varbit(Some(1)) => {
            Schema::new(ConnectType::Boolean)
        }
        PgType::Bit(n) => bits_schema(*n),
        PgType::Varbit(n) => bits_schema(n.unwrap_or(i32::MAX as u32)),
        PgType::Int2 => Schema::new(ConnectType::Int16),
        PgType::Int4 => Schema::new(ConnectType::Int32),
        PgType::Int8 | PgType::Oid => Schema::new(ConnectType::Int64),
        PgType::Float4 => Schema::new(ConnectType::Float32),
        PgType::Float8 => Schema::new(ConnectType::Float64),
        PgType::Numeric(t) | PgType::NumericAs(t, _) => match (opts.decimal_handling, t) {
            (DecimalHandling::Double, _) => Schema::new(ConnectType::Float64),
            (DecimalHandling::String, _) => Schema::new(ConnectType::String),
            (DecimalHandling::Precise, Some((p, s))) => {
                named(ConnectType::Bytes, "org.apache.kafka.connect.data.Decimal")
                    .param("scale", s.to_string())
                    .param("connect.decimal.precision", p.to_string())
            }
            (DecimalHandling::Precise, None) => Schema::new(ConnectType::Struct(vec![
                Field::new("scale", Schema::new(ConnectType::Int32)),
                Field::new("value", Schema::new(ConnectType::Bytes)),
            ]))
            .named("io.debezium.data.VariableScaleDecimal")
            .version(1)
            .doc("Variable scaled decimal"),
        },
        PgType::Money => match opts.decimal_handling {
            DecimalHandling::Double => Schema::new(ConnectType::Float64),
            DecimalHandling::String => Schema::new(ConnectType::String),
            // Decimal.builder(scale): no precision parameter (Avro falls back to 64).
            DecimalHandling::Precise => {
                named(ConnectType::Bytes, "org.apache.kafka.connect.data.Decimal")
                    .param("scale", opts.money_fraction_digits.to_string())
            }
        },
        PgType::Text
        | PgType::Varchar(_)
        | PgType::Bpchar(_)
        | PgType::Char
        | PgType::Name
        | PgType::Citext
        | PgType::Inet
        | PgType::Cidr
        | PgType::Macaddr
        | PgType::Macaddr8
        | PgType::Range(_) => Schema::new(ConnectType::String),
        PgType::Bytea => match opts.binary_handling {
            BinaryHandling::Bytes => Schema::new(ConnectType::Bytes),
            _ => Schema::new(ConnectType::String),
        },
        PgType::Date => match opts.time_precision {
            TimePrecision::Connect => {
                named(ConnectType::Int32, "org.apache.kafka.connect.data.Date")
            }
            _ => named(ConnectType::Int32, "io.debezium.time.Date"),
        },
        PgType::Time(p) => match (opts.time_precision, *p <= 3) {
            (TimePrecision::Connect, _) => {
                named(ConnectType::Int32, "org.apache.kafka.connect.data.Time")
            }
            (TimePrecision::Adaptive, true) => named(ConnectType::Int32, "io.debezium.time.Time"),
            _ => named(ConnectType::Int64, "io.debezium.time.MicroTime"),
        },
        PgType::Timestamp(p) => match (opts.time_precision, *p <= 3) {
            (TimePrecision::Connect, _) => named(
                ConnectType::Int64,
                "org.apache.kafka.connect.data.Timestamp",
            ),
            (_, true) => named(ConnectType::Int64, "io.debezium.time.Timestamp"),
            _ => named(ConnectType::Int64, "io.debezium.time.MicroTimestamp"),
        },
        PgType::Timestamptz(_) => named(ConnectType::String, "io.debezium.time.ZonedTimestamp"),
        PgType::Timetz(_) => named(ConnectType::String, "io.debezium.time.ZonedTime"),
        PgType::Interval => match opts.interval_handling {
            IntervalHandling::Numeric => {
                named(ConnectType::Int64, "io.debezium.time.MicroDuration")
            }
            IntervalHandling::String => named(ConnectType::String, "io.debezium.time.Interval"),
        },
        PgType::Uuid => named(ConnectType::String, "io.debezium.data.Uuid"),
        PgType::Json | PgType::Jsonb => named(ConnectType::String, "io.debezium.data.Json"),
        PgType::Xml => named(ConnectType::String, "io.debezium.data.Xml"),
        PgType::Hstore => match opts.hstore_handling {
            HstoreHandling::Json => named(ConnectType::String, "io.debezium.data.Json"),
            HstoreHandling::Map => Schema::new(ConnectType::Map(
                Box::new(Schema::new(ConnectType::String)),
                Box::new(Schema::new(ConnectType::String).optional(true)),
            )),
        },
        PgType::Enum { labels, .. } => {
            named(ConnectType::String, "io.debezium.data.Enum").param("allowed", labels.join(","))
        }
        PgType::Ltree => named(ConnectType::String, "io.debezium.data.Ltree"),
        PgType::Tsvector => named(ConnectType::String, "io.debezium.data.Tsvector"),
        PgType::Point => Schema::new(ConnectType::Struct(vec![
            Field::new("x", Schema::new(ConnectType::Float64)),
            Field::new("y", Schema::new(ConnectType::Float64)),
            Field::new("wkb", Schema::new(ConnectType::Bytes).optional(true)),
            Field::new("srid", Schema::new(ConnectType::Int32).optional(true)),
        ]))
        .named("io.debezium.data.geometry.Point")
        .version(1)
        .doc("Geometry (POINT)"),
        PgType::Geometry | PgType::Geography => {
            let (name, doc) = match pg {
                PgType::Geometry => ("io.debezium.data.geometry.Geometry", "Geometry"),
                _ => ("io.debezium.data.geometry.Geography", "Geography"),
            };
            Schema::new(ConnectType::Struct(vec![
                Field::new("wkb", Schema::new(ConnectType::Bytes)),
                Field::new("srid", Schema::new(ConnectType::Int32).optional(true)),
            ]))
            .named(name)
            .version(1)
            .doc(doc)
        }
        PgType::Vector => named(
            ConnectType::Array(Box::new(Schema::new(ConnectType::Float64))),
            "io.debezium.data.DoubleVector",
        ),
        PgType::Halfvec => named(
            ConnectType::Array(Box::new(Schema::new(ConnectType::Float32))),
            "io.debezium.data.FloatVector",
        ),
        PgType::Sparsevec => Schema::new(ConnectType::Struct(vec![
            Field::new("dimensions", Schema::new(ConnectType::Int16)),
            Field::new(
                "vector",
                Schema::new(ConnectType::Map(
                    Box::new(Schema::new(ConnectType::Int16)),
                    Box::new(Schema::new(ConnectType::Float64)),
                )),
            ),
        ]))
        .named("io.debezium.data.SparseDoubleVector")
        .version(1)
        .doc("Sparse double vector"),
        PgType::Array(elem) => {
            // Debezium makes array items optional, except on the code paths that build the
            // item schema without `.optional()`: enum arrays and the generic fallback
            // (tsvector[] and the pgvector types among those cdcql maps).
            let item_optional = !matches!(
                elem.as_ref(),
                PgType::Enum { .. }
                    | PgType::Tsvector
                    | PgType::Vector
                    | PgType::Halfvec
                    | PgType::Sparsevec
            );
            Schema::new(ConnectType::Array(Box::new(column_schema(
                elem,
                item_optional,
                opts,
            ))))
        }
        PgType::Unsupported { .. } => Schema::new(ConnectType::Bytes),
    };
    s.optional(optional)
}

fn bits_schema(length: u32) -> Schema {
    named(ConnectType::Bytes, "io.debezium.data.Bits").param("length", length.to_string())
}

/// Convert one output column from its Arrow form to the Connect physical form its
/// Debezium schema needs.
pub fn connect_array(
    array: &ArrayRef,
    col: &OutputColumn,
    opts: &TypeOptions,
) -> Result<ArrayRef, EnvelopeError> {
    convert(array, &col.pg_type, opts, &col.name)
}

fn value_error(column: &str, message: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Value {
        column: column.to_string(),
        message: message.into(),
    }
}

/// Rows of a column whose values cannot be converted. A conversion goes on past a bad value
/// (leaving a placeholder) so that one pass names every bad row: the runtime then sets those
/// rows aside (`on_error`) and delivers the others without trying again row by row.
#[derive(Default)]
struct BadRows(Vec<(usize, String)>);

impl BadRows {
    fn push(&mut self, row: usize, message: impl Into<String>) {
        self.0.push((row, message.into()));
    }

    fn check(self, column: &str) -> Result<(), EnvelopeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(EnvelopeError::Rows {
                column: column.to_string(),
                rows: self.0,
            })
        }
    }
}

/// `message (and N more rows)`, for [`EnvelopeError::Rows`].
pub(crate) fn describe_rows(rows: &[(usize, String)]) -> String {
    match rows {
        [] => "a value cannot be converted".into(),
        [(_, m)] => m.clone(),
        [(_, m), rest @ ..] => format!("{m} (and {} more row(s))", rest.len()),
    }
}

fn cast_to(array: &ArrayRef, want: &DataType) -> Result<ArrayRef, EnvelopeError> {
    Ok(if array.data_type() == want {
        Arc::clone(array)
    } else {
        cast(array, want)?
    })
}

fn strings(array: &ArrayRef) -> Result<StringArray, EnvelopeError> {
    Ok(cast_to(array, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// Builds a string column row by row through one reused buffer.
fn map_strings<T>(
    len: usize,
    value: impl Fn(usize) -> Option<T>,
    mut write: impl FnMut(T, &mut String) -> Result<(), EnvelopeError>,
) -> Result<ArrayRef, EnvelopeError> {
    let mut b = StringBuilder::with_capacity(len, len * 16);
    let mut buf = String::new();
    let mut bad = BadRows::default();
    let mut bad_column = String::new();
    for i in 0..len {
        match value(i) {
            Some(v) => {
                buf.clear();
                match write(v, &mut buf) {
                    Ok(()) => b.append_value(&buf),
                    Err(EnvelopeError::Value { column, message }) => {
                        bad.push(i, message);
                        bad_column = column;
                        b.append_null();
                    }
                    Err(e) => return Err(e),
                }
            }
            None => b.append_null(),
        }
    }
    bad.check(&bad_column)?;
    Ok(Arc::new(b.finish()))
}

fn convert(
    array: &ArrayRef,
    pg: &PgType,
    opts: &TypeOptions,
    column: &str,
) -> Result<ArrayRef, EnvelopeError> {
    Ok(match pg {
        PgType::Bool | PgType::Bit(1) | PgType::Varbit(Some(1)) => {
            cast_to(array, &DataType::Boolean)?
        }
        PgType::Bit(_) | PgType::Varbit(_) => bits_array(&strings(array)?, column)?,
        PgType::Int2 => cast_to(array, &DataType::Int16)?,
        PgType::Int4 => cast_to(array, &DataType::Int32)?,
        PgType::Int8 | PgType::Oid => cast_to(array, &DataType::Int64)?,
        PgType::Float4 => cast_to(array, &DataType::Float32)?,
        PgType::Float8 => cast_to(array, &DataType::Float64)?,
        PgType::Numeric(t) | PgType::NumericAs(t, _) => numeric(array, *t, opts, column)?,
        PgType::Money => money(array, opts)?,
        PgType::Text
        | PgType::Varchar(_)
        | PgType::Bpchar(_)
        | PgType::Char
        | PgType::Name
        | PgType::Citext
        | PgType::Json
        | PgType::Jsonb
        | PgType::Xml
        | PgType::Uuid
        | PgType::Inet
        | PgType::Cidr
        | PgType::Macaddr
        | PgType::Macaddr8
        | PgType::Range(_)
        | PgType::Enum { .. }
        | PgType::Ltree
        | PgType::Tsvector
        | PgType::Timetz(_) => cast_to(array, &DataType::Utf8)?,
        PgType::Bytea => binary(array, opts.binary_handling)?,
        PgType::Date => {
            let days = cast_to(array, &DataType::Date32)?;
            Arc::new(
                days.as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                    .unary::<_, Int32Type>(|d| match d {
                        i32::MAX => DATE_POSITIVE_INFINITY,
                        i32::MIN => DATE_NEGATIVE_INFINITY,
                        d => d,
                    }),
            )
        }
        PgType::Time(p) => {
            let a = cast_to(array, &DataType::Time64(TimeUnit::Microsecond))?;
            let a = a.as_primitive::<datafusion::arrow::datatypes::Time64MicrosecondType>();
            let millis = match opts.time_precision {
                TimePrecision::Connect => true,
                TimePrecision::Adaptive => *p <= 3,
                TimePrecision::AdaptiveTimeMicroseconds => false,
            };
            if millis {
                Arc::new(a.unary::<_, Int32Type>(|us| (us / 1000) as i32))
            } else {
                Arc::new(a.unary::<_, datafusion::arrow::datatypes::Int64Type>(|us| us))
            }
        }
        PgType::Timestamp(p) => {
            let a = as_timestamp(array)?;
            let millis = opts.time_precision == TimePrecision::Connect || *p <= 3;
            Arc::new(
                a.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                    .unary::<_, datafusion::arrow::datatypes::Int64Type>(|us| {
                        let us = match us {
                            i64::MAX => TIMESTAMP_POSITIVE_INFINITY_MICROS,
                            i64::MIN => TIMESTAMP_NEGATIVE_INFINITY_MICROS,
                            us => us,
                        };
                        if millis {
                            us.div_euclid(1000)
                        } else {
                            us
                        }
                    }),
            )
        }
        PgType::Timestamptz(p) => {
            let a = as_timestamp(array)?;
            let a = a.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            map_strings(
                a.len(),
                |i| a.is_valid(i).then(|| a.value(i)),
                |us, out| {
                    format_zoned_timestamp(us, *p, out);
                    Ok(())
                },
            )?
        }
        PgType::Interval => interval(array, opts.interval_handling)?,
        PgType::Hstore => hstore(array, opts.hstore_handling, column)?,
        PgType::Point => point(array, column)?,
        PgType::Geometry | PgType::Geography => geometry(array, column)?,
        PgType::Vector => float_vector(array, true, column)?,
        PgType::Halfvec => float_vector(array, false, column)?,
        PgType::Sparsevec => sparse_vector(array, column)?,
        PgType::Array(elem) => {
            let list = cast_to(
                array,
                &DataType::List(Arc::new(ArrowField::new(
                    "item",
                    elem.arrow_type().unwrap_or(DataType::Null),
                    true,
                ))),
            )?;
            let list = list.as_list::<i32>();
            let values = convert(list.values(), elem, opts, column).map_err(|e| match e {
                // The element conversion names elements; the rows are the lists holding them.
                EnvelopeError::Rows { column, rows } => {
                    let offsets = list.value_offsets();
                    let mut lists: Vec<(usize, String)> = Vec::new();
                    for (element, message) in rows {
                        let row = offsets
                            .partition_point(|&o| o as usize <= element)
                            .saturating_sub(1);
                        if lists.last().map(|(r, _)| *r) != Some(row) {
                            lists.push((row, message));
                        }
                    }
                    EnvelopeError::Rows {
                        column,
                        rows: lists,
                    }
                }
                other => other,
            })?;
            let field = Arc::new(ArrowField::new("item", values.data_type().clone(), true));
            Arc::new(ListArray::try_new(
                field,
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?)
        }
        PgType::Unsupported { name, .. } => {
            return Err(value_error(
                column,
                format!("type {name} cannot be written: this is a bug in cdcql, please report it"),
            ))
        }
    })
}

fn as_timestamp(a: &ArrayRef) -> Result<ArrayRef, EnvelopeError> {
    let tz = match a.data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    cast_to(a, &DataType::Timestamp(TimeUnit::Microsecond, tz))
}

// --- binary and bits ---------------------------------------------------------------------

fn binary(array: &ArrayRef, mode: BinaryHandling) -> Result<ArrayRef, EnvelopeError> {
    let bytes = cast_to(array, &DataType::Binary)?;
    if mode == BinaryHandling::Bytes {
        return Ok(bytes);
    }
    let bytes = bytes.as_binary::<i32>();
    let mut out = StringBuilder::with_capacity(bytes.len(), bytes.values().len() * 2);
    let mut buf = Vec::new();
    for v in bytes.iter() {
        match v {
            None => out.append_null(),
            Some(v) => {
                buf.clear();
                match mode {
                    BinaryHandling::Base64 => base64_into(&mut buf, v),
                    // Java's Base64.getUrlEncoder(): URL alphabet, with padding.
                    BinaryHandling::Base64UrlSafe => {
                        base64_into(&mut buf, v);
                        for b in buf.iter_mut() {
                            *b = match *b {
                                b'+' => b'-',
                                b'/' => b'_',
                                other => other,
                            };
                        }
                    }
                    _ => {
                        const HEX: &[u8; 16] = b"0123456789abcdef";
                        for b in v {
                            buf.push(HEX[(b >> 4) as usize]);
                            buf.push(HEX[(b & 0xf) as usize]);
                        }
                    }
                }
                out.append_value(std::str::from_utf8(&buf).expect("base64 and hex are ASCII"));
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Debezium's `Bits`: Java `BitSet.toByteArray()` of the bit string read with its rightmost
/// bit as bit 0: little-endian bytes, trailing zero bytes dropped (all zeros → no bytes).
fn bits_array(text: &StringArray, column: &str) -> Result<ArrayRef, EnvelopeError> {
    let mut out = BinaryBuilder::with_capacity(text.len(), text.len() * 4);
    let mut buf = Vec::new();
    let mut bad = BadRows::default();
    for (row, v) in text.iter().enumerate() {
        let Some(bits) = v else {
            out.append_null();
            continue;
        };
        buf.clear();
        if !bits.bytes().all(|c| c == b'0' || c == b'1') {
            bad.push(row, format!("`{bits}` is not a bit string"));
            out.append_null();
            continue;
        }
        for (i, c) in bits.bytes().rev().enumerate() {
            if i % 8 == 0 {
                buf.push(0);
            }
            if c == b'1' {
                *buf.last_mut().expect("pushed above") |= 1 << (i % 8);
            }
        }
        while buf.last() == Some(&0) {
            buf.pop();
        }
        out.append_value(&buf);
    }
    bad.check(column)?;
    Ok(Arc::new(out.finish()))
}

// --- numeric and money -------------------------------------------------------------------

/// A decimal number as digits without the point: `negative`, `digits` (no leading zeros,
/// `0` for zero) and `scale` (digits after the point).
struct DecimalDigits {
    negative: bool,
    digits: Vec<u8>,
    scale: i32,
}

impl DecimalDigits {
    fn new() -> Self {
        DecimalDigits {
            negative: false,
            digits: Vec::with_capacity(40),
            scale: 0,
        }
    }

    /// Reads plain decimal text (what `numeric_out` prints); false for anything else.
    fn parse(&mut self, s: &str) -> bool {
        let (neg, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return false;
        }
        self.negative = neg;
        self.digits.clear();
        self.digits
            .extend(int.bytes().chain(frac.bytes()).skip_while(|b| *b == b'0'));
        if self.digits.is_empty() {
            self.digits.push(b'0');
        }
        self.scale = frac.len() as i32;
        true
    }

    /// An unscaled integer at `scale`.
    fn set_unscaled(&mut self, unscaled: i128, scale: i32) {
        self.negative = unscaled < 0;
        self.digits.clear();
        let _ = write!(
            DigitsWriter(&mut self.digits),
            "{}",
            unscaled.unsigned_abs()
        );
        self.scale = scale;
    }

    /// Java's `BigDecimal.toString()`: plain unless the scale is negative or the adjusted
    /// exponent is below -6, then `d.dddE±n`.
    fn write_java(&self, out: &mut String) {
        if self.negative && self.digits != b"0" {
            out.push('-');
        }
        let digits = std::str::from_utf8(&self.digits).expect("ASCII digits");
        let adjusted = digits.len() as i64 - 1 - self.scale as i64;
        if self.scale >= 0 && adjusted >= -6 {
            self.write_plain_unsigned(out);
        } else {
            out.push_str(&digits[..1]);
            if digits.len() > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            out.push('E');
            if adjusted > 0 {
                out.push('+');
            }
            let _ = write!(out, "{adjusted}");
        }
    }

    fn write_plain_unsigned(&self, out: &mut String) {
        let digits = std::str::from_utf8(&self.digits).expect("ASCII digits");
        let scale = self.scale.max(0) as usize;
        if scale == 0 {
            out.push_str(digits);
            for _ in 0..(-self.scale).max(0) {
                out.push('0');
            }
        } else if digits.len() > scale {
            out.push_str(&digits[..digits.len() - scale]);
            out.push('.');
            out.push_str(&digits[digits.len() - scale..]);
        } else {
            out.push_str("0.");
            for _ in 0..scale - digits.len() {
                out.push('0');
            }
            out.push_str(digits);
        }
    }
}

struct DigitsWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for DigitsWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The names Debezium's `SpecialValueDecimal` gives Postgres' special numerics in 'string'
/// mode (its enum constant names).
fn special_decimal_name(s: &str) -> Option<&'static str> {
    match s {
        "NaN" => Some("NAN"),
        "Infinity" => Some("POSITIVE_INFINITY"),
        "-Infinity" => Some("NEGATIVE_INFINITY"),
        _ => None,
    }
}

fn numeric(
    array: &ArrayRef,
    typmod: Option<(u16, i16)>,
    opts: &TypeOptions,
    column: &str,
) -> Result<ArrayRef, EnvelopeError> {
    match opts.decimal_handling {
        DecimalHandling::Double => {
            if let DataType::Float64 | DataType::Float32 = array.data_type() {
                return cast_to(array, &DataType::Float64);
            }
            let text = strings(array)?;
            let mut out = Float64Builder::with_capacity(text.len());
            let mut bad = BadRows::default();
            for (row, v) in text.iter().enumerate() {
                match v {
                    None => out.append_null(),
                    // BigDecimal.doubleValue rounds correctly, as Rust's parse does; NaN and
                    // ±Infinity become the double specials.
                    Some(s) => match s.parse() {
                        Ok(f) => out.append_value(f),
                        Err(_) => {
                            bad.push(row, format!("numeric `{s}` is not a number"));
                            out.append_null();
                        }
                    },
                }
            }
            bad.check(column)?;
            Ok(Arc::new(out.finish()))
        }
        DecimalHandling::String => {
            let mut d = DecimalDigits::new();
            if let DataType::Decimal128(_, scale) = array.data_type() {
                let a = array.as_primitive::<Decimal128Type>();
                return map_strings(
                    a.len(),
                    |i| a.is_valid(i).then(|| a.value(i)),
                    |v, out| {
                        d.set_unscaled(v, *scale as i32);
                        d.write_java(out);
                        Ok(())
                    },
                );
            }
            let text = strings(array)?;
            map_strings(
                text.len(),
                |i| text.is_valid(i).then(|| text.value(i)),
                |s, out| {
                    if let Some(name) = special_decimal_name(s) {
                        out.push_str(name);
                    } else if d.parse(s) {
                        d.write_java(out);
                    } else {
                        return Err(value_error(
                            column,
                            format!("numeric `{s}` is not a number"),
                        ));
                    }
                    Ok(())
                },
            )
        }
        DecimalHandling::Precise => match typmod {
            Some((_, scale)) => match array.data_type() {
                DataType::Decimal128(_, s) if *s as i16 == scale => Ok(Arc::clone(array)),
                _ => fixed_scale_decimal(&strings(array)?, scale, column),
            },
            None => variable_scale_decimal(&strings(array)?, column),
        },
    }
}

/// Why numeric text cannot be a Connect Decimal.
fn precise_value_message(s: &str) -> String {
    if special_decimal_name(s).is_some() {
        format!(
            "{s} cannot be written as a Decimal (decimal_handling 'precise'); \
             Debezium fails on it too: use decimal_handling 'string' or 'double'"
        )
    } else {
        format!("numeric `{s}` is not a number")
    }
}

/// Debezium's `VariableScaleDecimal`: trailing zeros stripped (`stripTrailingZeros`), never
/// below scale 0.
fn variable_scale_decimal(text: &StringArray, column: &str) -> Result<ArrayRef, EnvelopeError> {
    let mut scales = Int32Builder::with_capacity(text.len());
    let mut values = BinaryBuilder::with_capacity(text.len(), text.len() * 8);
    let mut d = DecimalDigits::new();
    let mut scratch = Vec::new();
    let mut bytes = Vec::new();
    let mut bad = BadRows::default();
    for (row, v) in text.iter().enumerate() {
        let Some(s) = v else {
            scales.append_value(0);
            values.append_value([]);
            continue;
        };
        if special_decimal_name(s).is_some() || !d.parse(s) {
            bad.push(row, precise_value_message(s));
            scales.append_value(0);
            values.append_value([]);
            continue;
        }
        while d.scale > 0 && d.digits.len() > 1 && d.digits.last() == Some(&b'0') {
            d.digits.pop();
            d.scale -= 1;
        }
        if d.digits == b"0" {
            d.scale = 0;
        }
        bytes.clear();
        unscaled_bytes_from_digits(d.negative, &d.digits, &mut bytes, &mut scratch);
        scales.append_value(d.scale);
        values.append_value(&bytes);
    }
    bad.check(column)?;
    let fields = Fields::from(vec![
        ArrowField::new("scale", DataType::Int32, false),
        ArrowField::new("value", DataType::Binary, false),
    ]);
    Ok(Arc::new(StructArray::try_new(
        fields,
        vec![Arc::new(scales.finish()), Arc::new(values.finish())],
        text.nulls().cloned(),
    )?))
}

/// A Connect Decimal at the column's scale, from exact text (numerics beyond Decimal128, or
/// with a negative scale).
fn fixed_scale_decimal(
    text: &StringArray,
    scale: i16,
    column: &str,
) -> Result<ArrayRef, EnvelopeError> {
    let mut out = BinaryBuilder::with_capacity(text.len(), text.len() * 8);
    let mut d = DecimalDigits::new();
    let mut scratch = Vec::new();
    let mut bytes = Vec::new();
    let want = scale as i32;
    let mut bad = BadRows::default();
    for (row, v) in text.iter().enumerate() {
        let Some(s) = v else {
            out.append_null();
            continue;
        };
        if special_decimal_name(s).is_some() || !d.parse(s) {
            bad.push(row, precise_value_message(s));
            out.append_null();
            continue;
        }
        if d.scale < want {
            d.digits
                .extend(std::iter::repeat_n(b'0', (want - d.scale) as usize));
        } else {
            // More digits than the scale (or a negative scale): they must all be zeros.
            let drop = (d.scale - want) as usize;
            let keep = d.digits.len().saturating_sub(drop);
            if d.digits[keep..].iter().any(|b| *b != b'0') {
                bad.push(
                    row,
                    format!("numeric value `{s}` has more digits than scale {scale} allows"),
                );
                out.append_null();
                continue;
            }
            d.digits.truncate(keep.max(1));
            if keep == 0 {
                d.digits[0] = b'0';
            }
        }
        bytes.clear();
        unscaled_bytes_from_digits(d.negative, &d.digits, &mut bytes, &mut scratch);
        out.append_value(&bytes);
    }
    bad.check(column)?;
    Ok(Arc::new(out.finish()))
}

fn money(array: &ArrayRef, opts: &TypeOptions) -> Result<ArrayRef, EnvelopeError> {
    let a = cast_to(array, &DataType::Decimal128(19, MONEY_SCALE))?;
    let a = a.as_primitive::<Decimal128Type>();
    let scale_divisor = 10f64.powi(MONEY_SCALE as i32);
    Ok(match opts.decimal_handling {
        DecimalHandling::Double => {
            Arc::new(a.unary::<_, Float64Type>(|cents| cents as f64 / scale_divisor))
        }
        // Debezium gets money as a Java double and writes String.valueOf(double).
        DecimalHandling::String => {
            let mut bytes = Vec::with_capacity(32);
            map_strings(
                a.len(),
                |i| a.is_valid(i).then(|| a.value(i)),
                |cents, out| {
                    bytes.clear();
                    write_java_float(&mut bytes, cents as f64 / scale_divisor, false);
                    out.push_str(std::str::from_utf8(&bytes).expect("ASCII float"));
                    Ok(())
                },
            )?
        }
        // BigDecimal.setScale(money.fraction.digits, HALF_UP).
        DecimalHandling::Precise => {
            let target = opts.money_fraction_digits as i32;
            let shift = target - MONEY_SCALE as i32;
            let rescaled: Decimal128Array = a.try_unary(|v| rescale_half_up(v, shift))?;
            Arc::new(rescaled.with_precision_and_scale(38, target as i8)?)
        }
    })
}

fn rescale_half_up(v: i128, shift: i32) -> Result<i128, datafusion::arrow::error::ArrowError> {
    let overflow =
        || datafusion::arrow::error::ArrowError::ComputeError("money value overflows".into());
    if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| v.checked_mul(p))
            .ok_or_else(overflow)
    } else {
        let p = 10i128.checked_pow((-shift) as u32).ok_or_else(overflow)?;
        let (q, r) = (v / p, v % p);
        Ok(if r.abs() * 2 >= p { q + v.signum() } else { q })
    }
}

/// Minimal big-endian two's-complement bytes of an integer given as decimal digits, as
/// Java's `BigInteger.toByteArray()` writes it. `scratch` is reused between calls.
pub fn unscaled_bytes_from_digits(
    negative: bool,
    digits: &[u8],
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    // Magnitude in base 256, little-endian while building.
    let mag = scratch;
    mag.clear();
    for &d in digits {
        let mut carry = (d - b'0') as u32;
        for byte in mag.iter_mut() {
            let v = *byte as u32 * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    while mag.last() == Some(&0) {
        mag.pop();
    }
    if mag.is_empty() {
        out.push(0);
        return;
    }
    if negative {
        // Two's complement: invert and add one.
        let mut carry = 1u16;
        for byte in mag.iter_mut() {
            let v = (!*byte) as u16 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        if mag.last().is_some_and(|b| b & 0x80 == 0) {
            mag.push(0xff);
        }
    } else if mag.last().is_some_and(|b| b & 0x80 != 0) {
        mag.push(0);
    }
    // Strip redundant sign bytes.
    while mag.len() > 1 {
        let top = mag[mag.len() - 1];
        let next = mag[mag.len() - 2];
        if (top == 0 && next & 0x80 == 0) || (top == 0xff && next & 0x80 != 0) {
            mag.pop();
        } else {
            break;
        }
    }
    out.extend(mag.iter().rev());
}

// --- time --------------------------------------------------------------------------------

/// Debezium's ZonedTimestamp text: ISO-8601 in UTC with exactly `precision` fractional
/// digits; Postgres' ±infinity become `infinity` / `-infinity`.
pub fn format_zoned_timestamp(us: i64, precision: u8, out: &mut String) {
    if us == i64::MAX {
        out.push_str("infinity");
        return;
    }
    if us == i64::MIN {
        out.push_str("-infinity");
        return;
    }
    let days = us.div_euclid(86_400_000_000);
    let micros_of_day = us.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let secs = micros_of_day / 1_000_000;
    let frac = micros_of_day % 1_000_000;
    if !(0..=9999).contains(&y) {
        let _ = write!(out, "{y:+05}");
    } else {
        push_digits(out, y as u32, 4);
    }
    // This runs for every timestamp of every row: digits by hand, not through `fmt`.
    let mut buf = *b"-00-00T00:00:00";
    let two = |buf: &mut [u8; 15], at: usize, v: u32| {
        buf[at] = b'0' + (v / 10 % 10) as u8;
        buf[at + 1] = b'0' + (v % 10) as u8;
    };
    two(&mut buf, 1, m);
    two(&mut buf, 4, d);
    two(&mut buf, 7, (secs / 3600) as u32);
    two(&mut buf, 10, ((secs / 60) % 60) as u32);
    two(&mut buf, 13, (secs % 60) as u32);
    buf.iter().for_each(|&b| out.push(char::from(b)));
    if precision > 0 {
        let p = precision.min(6) as u32;
        out.push('.');
        push_digits(out, (frac / 10i64.pow(6 - p)) as u32, p as usize);
    }
    out.push('Z');
}

/// `v` in exactly `width` decimal digits (zero-padded; higher digits dropped).
fn push_digits(out: &mut String, mut v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let width = width.min(buf.len());
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf[..width].iter().for_each(|&b| out.push(char::from(b)));
}

/// An interval split the way Postgres prints it (`1 year 2 mons 3 days 04:05:06.5`) and
/// pgjdbc's `PGInterval` reads it back: years and months from the months, hours, minutes and
/// seconds (all with the time part's sign) from the microseconds.
struct IntervalParts {
    years: i32,
    months: i32,
    days: i32,
    hours: i64,
    minutes: i64,
    whole_seconds: i64,
    micro_seconds: i64,
}

impl IntervalParts {
    fn new(months: i32, days: i32, micros: i64) -> Self {
        IntervalParts {
            years: months / 12,
            months: months % 12,
            days,
            hours: micros / 3_600_000_000,
            minutes: (micros / 60_000_000) % 60,
            whole_seconds: (micros / 1_000_000) % 60,
            micro_seconds: micros % 1_000_000,
        }
    }

    /// `MicroDuration.durationMicros` in Java's double arithmetic, months as 365.25/12 days.
    fn micro_duration(&self) -> i64 {
        let seconds = self.whole_seconds as f64 + self.micro_seconds as f64 / 1e6;
        let days = (self.years * 12 + self.months) as f64 * DAYS_PER_MONTH_AVG + self.days as f64;
        let secs =
            ((days * 24.0 + self.hours as f64) * 60.0 + self.minutes as f64) * 60.0 + seconds;
        // Java's (long) cast: truncation toward zero, saturating.
        (secs * 1e6 + 0.0) as i64
    }

    /// `Interval.toIsoString`: `P<y>Y<m>M<d>DT<h>H<mi>M<s>S`, seconds with trailing zeros
    /// stripped (`BigDecimal.stripTrailingZeros().toPlainString()`).
    fn write_iso(&self, out: &mut String) {
        let _ = write!(
            out,
            "P{}Y{}M{}DT{}H{}M",
            self.years, self.months, self.days, self.hours, self.minutes
        );
        if self.whole_seconds < 0 || self.micro_seconds < 0 {
            out.push('-');
        }
        let _ = write!(out, "{}", self.whole_seconds.abs());
        let mut frac = self.micro_seconds.abs();
        if frac != 0 {
            let mut width = 6;
            while frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            let _ = write!(out, ".{frac:0width$}");
        }
        out.push('S');
    }
}

fn interval(array: &ArrayRef, mode: IntervalHandling) -> Result<ArrayRef, EnvelopeError> {
    let a = cast_to(
        array,
        &DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
    )?;
    let a = a.as_primitive::<IntervalMonthDayNanoType>();
    let parts = |i: usize| {
        let v = a.value(i);
        IntervalParts::new(v.months, v.days, v.nanoseconds.div_euclid(1000))
    };
    Ok(match mode {
        IntervalHandling::Numeric => {
            let mut out = Int64Builder::with_capacity(a.len());
            for i in 0..a.len() {
                if a.is_valid(i) {
                    out.append_value(parts(i).micro_duration());
                } else {
                    out.append_null();
                }
            }
            Arc::new(out.finish())
        }
        IntervalHandling::String => map_strings(
            a.len(),
            |i| a.is_valid(i).then(|| parts(i)),
            |p, out| {
                p.write_iso(out);
                Ok(())
            },
        )?,
    })
}

// --- hstore and point --------------------------------------------------------------------

fn hstore(array: &ArrayRef, mode: HstoreHandling, column: &str) -> Result<ArrayRef, EnvelopeError> {
    let DataType::Map(_, _) = array.data_type() else {
        return Err(value_error(
            column,
            format!("hstore column arrived as {}", array.data_type()),
        ));
    };
    if mode == HstoreHandling::Map {
        return Ok(Arc::clone(array));
    }
    // Debezium writes the map with Jackson: {"k":"v","n":null}. Keys come in Postgres'
    // order, where Debezium's come in Java HashMap order; JSON objects are unordered.
    let map = array.as_map();
    let keys = map.keys().as_string::<i32>();
    let values = map.values().as_string::<i32>();
    let offsets = map.value_offsets();
    let mut out = StringBuilder::with_capacity(map.len(), map.len() * 32);
    let mut buf = Vec::new();
    for i in 0..map.len() {
        if map.is_null(i) {
            out.append_null();
            continue;
        }
        buf.clear();
        buf.push(b'{');
        for (n, e) in (offsets[i] as usize..offsets[i + 1] as usize).enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            crate::connect::json_string_bytes(&mut buf, keys.value(e));
            buf.push(b':');
            if values.is_null(e) {
                buf.extend_from_slice(b"null");
            } else {
                crate::connect::json_string_bytes(&mut buf, values.value(e));
            }
        }
        buf.push(b'}');
        out.append_value(std::str::from_utf8(&buf).expect("JSON of UTF-8 strings"));
    }
    Ok(Arc::new(out.finish()))
}

/// Debezium's `Point`: x, y, the point as little-endian WKB (byte order 1, type 1, x, y), and
/// a null SRID.
fn point(array: &ArrayRef, column: &str) -> Result<ArrayRef, EnvelopeError> {
    let Some(s) = array.as_struct_opt() else {
        return Err(value_error(
            column,
            format!("point column arrived as {}", array.data_type()),
        ));
    };
    let x = cast_to(s.column(0), &DataType::Float64)?;
    let y = cast_to(s.column(1), &DataType::Float64)?;
    let (xs, ys) = (
        x.as_primitive::<Float64Type>(),
        y.as_primitive::<Float64Type>(),
    );
    let mut wkb = BinaryBuilder::with_capacity(s.len(), s.len() * 21);
    let mut buf = [0u8; 21];
    buf[0] = 1;
    buf[1..5].copy_from_slice(&1u32.to_le_bytes());
    for i in 0..s.len() {
        if s.is_null(i) {
            wkb.append_null();
            continue;
        }
        buf[5..13].copy_from_slice(&xs.value(i).to_le_bytes());
        buf[13..21].copy_from_slice(&ys.value(i).to_le_bytes());
        wkb.append_value(buf);
    }
    let fields = Fields::from(vec![
        ArrowField::new("x", DataType::Float64, false),
        ArrowField::new("y", DataType::Float64, false),
        ArrowField::new("wkb", DataType::Binary, true),
        ArrowField::new("srid", DataType::Int32, true),
    ]);
    Ok(Arc::new(StructArray::try_new(
        fields,
        vec![
            Arc::new(Float64Array::new(xs.values().clone(), None)),
            Arc::new(Float64Array::new(ys.values().clone(), None)),
            Arc::new(wkb.finish()),
            Arc::new(Int32Array::new_null(s.len())),
        ],
        s.nulls().cloned(),
    )?))
}

// --- PostGIS and pgvector ----------------------------------------------------------------

/// Debezium's `Geometry` / `Geography`: the EWKB as Postgres sends it, and the SRID it
/// carries when the EWKB's SRID flag is set.
fn geometry(array: &ArrayRef, column: &str) -> Result<ArrayRef, EnvelopeError> {
    let wkb = cast_to(array, &DataType::Binary)?;
    let bytes = wkb.as_binary::<i32>();
    let mut srid = Int32Builder::with_capacity(bytes.len());
    let mut bad = BadRows::default();
    for i in 0..bytes.len() {
        if bytes.is_null(i) {
            srid.append_null();
            continue;
        }
        let v = bytes.value(i);
        if v.len() < 9 {
            bad.push(i, "EWKB shorter than its header");
            srid.append_null();
            continue;
        }
        let little = v[0] != 0;
        let int = |b: &[u8]| {
            let b: [u8; 4] = b.try_into().expect("4 bytes");
            if little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        const EWKB_SRID: u32 = 0x2000_0000;
        if int(&v[1..5]) & EWKB_SRID != 0 {
            srid.append_value(int(&v[5..9]) as i32);
        } else {
            srid.append_null();
        }
    }
    bad.check(column)?;
    let fields = Fields::from(vec![
        ArrowField::new("wkb", DataType::Binary, false),
        ArrowField::new("srid", DataType::Int32, true),
    ]);
    let nulls = wkb.nulls().cloned();
    Ok(Arc::new(StructArray::try_new(
        fields,
        vec![wkb, Arc::new(srid.finish())],
        nulls,
    )?))
}

/// pgvector prints float4 elements with the fewest digits that read back, and Debezium parses
/// that text with `Double.parseDouble` (vector, sparsevec) or `Float.parseFloat` (halfvec).
fn debezium_double(x: f32, buf: &mut String) -> f64 {
    buf.clear();
    let _ = write!(buf, "{x}");
    buf.parse().unwrap_or(x as f64)
}

fn float_vector(array: &ArrayRef, double: bool, column: &str) -> Result<ArrayRef, EnvelopeError> {
    let Some(list) = array.as_list_opt::<i32>() else {
        return Err(value_error(
            column,
            format!("vector column arrived as {}", array.data_type()),
        ));
    };
    let values = cast_to(list.values(), &DataType::Float32)?;
    let values = values.as_primitive::<datafusion::arrow::datatypes::Float32Type>();
    // Items are required in Debezium's vector schemas; a vector never holds NULL elements.
    let converted: ArrayRef = if double {
        let mut buf = String::new();
        Arc::new(Float64Array::from_iter_values(
            values
                .values()
                .iter()
                .map(|x| debezium_double(*x, &mut buf)),
        ))
    } else {
        Arc::new(datafusion::arrow::array::Float32Array::new(
            values.values().clone(),
            None,
        ))
    };
    let field = Arc::new(ArrowField::new("item", converted.data_type().clone(), true));
    Ok(Arc::new(ListArray::try_new(
        field,
        list.offsets().clone(),
        converted,
        list.nulls().cloned(),
    )?))
}

/// Debezium's `SparseDoubleVector`: dimensions and the 1-based index → value map, both with
/// INT16 keys (Debezium's `Short.parseShort` fails beyond 32767, so cdcql does too).
fn sparse_vector(array: &ArrayRef, column: &str) -> Result<ArrayRef, EnvelopeError> {
    let Some(s) = array.as_struct_opt() else {
        return Err(value_error(
            column,
            format!("sparsevec column arrived as {}", array.data_type()),
        ));
    };
    let short = |v: i32| {
        i16::try_from(v)
            .map_err(|_| format!("sparsevec index or dimension {v} is beyond Debezium's INT16"))
    };
    let dims = s.column(0).as_primitive::<Int32Type>();
    let map = s.column(1).as_map();
    let keys = map.keys().as_primitive::<Int32Type>();
    let values = map
        .values()
        .as_primitive::<datafusion::arrow::datatypes::Float32Type>();
    let mut out = datafusion::arrow::array::MapBuilder::new(
        Some(datafusion::arrow::array::MapFieldNames {
            entry: "entries".into(),
            key: "keys".into(),
            value: "values".into(),
        }),
        datafusion::arrow::array::Int16Builder::with_capacity(keys.len()),
        Float64Builder::with_capacity(keys.len()),
    );
    let mut out_dims = datafusion::arrow::array::Int16Builder::with_capacity(s.len());
    let mut buf = String::new();
    let offsets = map.value_offsets();
    let mut bad = BadRows::default();
    for i in 0..s.len() {
        let entries = offsets[i] as usize..offsets[i + 1] as usize;
        let checked = if s.is_valid(i) {
            short(dims.value(i)).and_then(|d| {
                entries
                    .clone()
                    .try_for_each(|e| short(keys.value(e)).map(|_| ()))
                    .map(|()| d)
            })
        } else {
            Ok(0)
        };
        match checked {
            Ok(d) => {
                out_dims.append_value(d);
                if s.is_valid(i) {
                    for e in entries {
                        out.keys().append_value(short(keys.value(e)).unwrap_or(0));
                        out.values()
                            .append_value(debezium_double(values.value(e), &mut buf));
                    }
                }
            }
            Err(message) => {
                bad.push(i, message);
                out_dims.append_value(0);
            }
        }
        out.append(true)?;
    }
    bad.check(column)?;
    let vector = out.finish();
    let fields = Fields::from(vec![
        ArrowField::new("dimensions", DataType::Int16, false),
        ArrowField::new("vector", vector.data_type().clone(), false),
    ]);
    Ok(Arc::new(StructArray::try_new(
        fields,
        vec![Arc::new(out_dims.finish()), Arc::new(vector)],
        s.nulls().cloned(),
    )?))
}

#[cfg(test)]
mod tests;
