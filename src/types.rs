//! Postgres column types as cdcql understands them, and their Arrow representation.
//!
//! The catalog reads `pg_attribute.atttypid` / `atttypmod` and turns them into [`PgType`]; the
//! snapshot decoder uses the Arrow type chosen here; the envelopes map a [`PgType`] to Debezium's
//! semantic type. Computed columns (expressions in the pipeline's SELECT) have no Postgres type:
//! [`PgType::from_arrow`] picks the Postgres type an equivalent SQL expression would have.

use std::fmt;

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// Postgres epoch (2000-01-01) relative to the Unix epoch.
pub const PG_EPOCH_DAYS: i32 = 10_957;
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Type OIDs from `pg_type.h` (stable across Postgres versions).
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// How Postgres values are mapped to Connect types, with Debezium's option names and defaults.
/// Set per pipeline; every envelope and encoder sees the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeOptions {
    /// `decimal.handling.mode`
    pub decimal_handling: DecimalHandling,
    /// `time.precision.mode`
    pub time_precision: TimePrecision,
    /// `binary.handling.mode`
    pub binary_handling: BinaryHandling,
    /// `interval.handling.mode`
    pub interval_handling: IntervalHandling,
    /// `hstore.handling.mode`
    pub hstore_handling: HstoreHandling,
    /// `money.fraction.digits`
    pub money_fraction_digits: u8,
    /// What to do with a column whose type cdcql cannot map (cdcql's own option).
    pub unknown_types: UnknownTypes,
}

impl Default for TypeOptions {
    fn default() -> Self {
        TypeOptions {
            decimal_handling: DecimalHandling::Precise,
            time_precision: TimePrecision::Adaptive,
            binary_handling: BinaryHandling::Bytes,
            interval_handling: IntervalHandling::Numeric,
            hstore_handling: HstoreHandling::Json,
            money_fraction_digits: 2,
            unknown_types: UnknownTypes::Fail,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalHandling {
    Precise,
    String,
    Double,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePrecision {
    Adaptive,
    AdaptiveTimeMicroseconds,
    Connect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryHandling {
    Bytes,
    Base64,
    Base64UrlSafe,
    Hex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalHandling {
    Numeric,
    String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HstoreHandling {
    Json,
    Map,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownTypes {
    Fail,
    Skip,
}

/// A column type we can read. `precision` on time types is the fractional-second digits
/// (0..=6; 6 when the column has no typmod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// numeric(p, s); `None` for numeric without a typmod (variable scale).
    Numeric(Option<(u8, i8)>),
    Text,
    Varchar(Option<u32>),
    Bpchar(Option<u32>),
    Bytea,
    Date,
    Time(u8),
    Timestamp(u8),
    Timestamptz(u8),
    Uuid,
    Json,
    Jsonb,
    /// Anything else: kept so that the error can name it, and so that a later issue can add it.
    Unsupported {
        name: String,
        oid: u32,
    },
}

impl PgType {
    /// Interpret `pg_attribute.atttypid` + `atttypmod`, with `type_name` (from
    /// `format_type`) used for unsupported types' messages.
    pub fn from_oid(type_oid: u32, typmod: i32, type_name: &str) -> PgType {
        let time_precision = if typmod < 0 { 6 } else { typmod.min(6) as u8 };
        let char_len = if typmod < 4 {
            None
        } else {
            Some((typmod - 4) as u32)
        };
        match type_oid {
            oid::BOOL => PgType::Bool,
            oid::INT2 => PgType::Int2,
            oid::INT4 => PgType::Int4,
            oid::INT8 => PgType::Int8,
            oid::FLOAT4 => PgType::Float4,
            oid::FLOAT8 => PgType::Float8,
            oid::NUMERIC => {
                if typmod < 4 {
                    PgType::Numeric(None)
                } else {
                    let m = typmod - 4;
                    let precision = ((m >> 16) & 0xffff) as u8;
                    // Scale is an 11-bit signed field since Postgres 15 (negative scales).
                    let raw_scale = m & 0x7ff;
                    let scale = if raw_scale & 0x400 != 0 {
                        (raw_scale - 0x800) as i8
                    } else {
                        raw_scale as i8
                    };
                    PgType::Numeric(Some((precision, scale)))
                }
            }
            oid::TEXT | oid::NAME => PgType::Text,
            oid::VARCHAR => PgType::Varchar(char_len),
            oid::BPCHAR => PgType::Bpchar(char_len),
            oid::BYTEA => PgType::Bytea,
            oid::DATE => PgType::Date,
            oid::TIME => PgType::Time(time_precision),
            oid::TIMESTAMP => PgType::Timestamp(time_precision),
            oid::TIMESTAMPTZ => PgType::Timestamptz(time_precision),
            oid::UUID => PgType::Uuid,
            oid::JSON => PgType::Json,
            oid::JSONB => PgType::Jsonb,
            _ => PgType::Unsupported {
                name: type_name.to_string(),
                oid: type_oid,
            },
        }
    }

    /// The Arrow type the snapshot decoder produces, or `None` for unsupported types.
    pub fn arrow_type(&self) -> Option<DataType> {
        Some(match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            PgType::Numeric(Some((p, s))) if *p <= 38 && *s >= 0 => DataType::Decimal128(*p, *s),
            // Wider or negative-scale numerics and numeric without typmod travel as their
            // exact decimal text, so no digit is ever lost.
            PgType::Numeric(_) => DataType::Utf8,
            PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) => DataType::Utf8,
            PgType::Json | PgType::Jsonb | PgType::Uuid => DataType::Utf8,
            PgType::Bytea => DataType::Binary,
            PgType::Date => DataType::Date32,
            PgType::Time(_) => DataType::Time64(TimeUnit::Microsecond),
            PgType::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgType::Timestamptz(_) => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            PgType::Unsupported { .. } => return None,
        })
    }

    /// The Postgres type of a computed column, from the Arrow type DataFusion gives it.
    pub fn from_arrow(dt: &DataType) -> Option<PgType> {
        Some(match dt {
            DataType::Boolean => PgType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2,
            DataType::Int32 | DataType::UInt16 => PgType::Int4,
            DataType::Int64 | DataType::UInt32 => PgType::Int8,
            DataType::Float16 | DataType::Float32 => PgType::Float4,
            DataType::Float64 => PgType::Float8,
            DataType::Decimal128(p, s) if *s >= 0 => PgType::Numeric(Some((*p, *s))),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PgType::Text,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => PgType::Bytea,
            DataType::Date32 => PgType::Date,
            DataType::Time64(_) | DataType::Time32(_) => PgType::Time(6),
            DataType::Timestamp(_, None) => PgType::Timestamp(6),
            DataType::Timestamp(_, Some(_)) => PgType::Timestamptz(6),
            _ => return None,
        })
    }

    pub fn is_supported(&self) -> bool {
        !matches!(self, PgType::Unsupported { .. })
    }
}

impl fmt::Display for PgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgType::Bool => f.write_str("boolean"),
            PgType::Int2 => f.write_str("smallint"),
            PgType::Int4 => f.write_str("integer"),
            PgType::Int8 => f.write_str("bigint"),
            PgType::Float4 => f.write_str("real"),
            PgType::Float8 => f.write_str("double precision"),
            PgType::Numeric(None) => f.write_str("numeric"),
            PgType::Numeric(Some((p, s))) => write!(f, "numeric({p},{s})"),
            PgType::Text => f.write_str("text"),
            PgType::Varchar(None) => f.write_str("character varying"),
            PgType::Varchar(Some(n)) => write!(f, "character varying({n})"),
            PgType::Bpchar(None) => f.write_str("character"),
            PgType::Bpchar(Some(n)) => write!(f, "character({n})"),
            PgType::Bytea => f.write_str("bytea"),
            PgType::Date => f.write_str("date"),
            PgType::Time(p) => write!(f, "time({p}) without time zone"),
            PgType::Timestamp(p) => write!(f, "timestamp({p}) without time zone"),
            PgType::Timestamptz(p) => write!(f, "timestamp({p}) with time zone"),
            PgType::Uuid => f.write_str("uuid"),
            PgType::Json => f.write_str("json"),
            PgType::Jsonb => f.write_str("jsonb"),
            PgType::Unsupported { name, .. } => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_typmod_decodes_precision_and_scale() {
        // numeric(10,2): typmod = ((10 << 16) | 2) + 4
        let t = PgType::from_oid(oid::NUMERIC, ((10 << 16) | 2) + 4, "numeric(10,2)");
        assert_eq!(t, PgType::Numeric(Some((10, 2))));
        assert_eq!(t.arrow_type(), Some(DataType::Decimal128(10, 2)));
        assert_eq!(
            PgType::from_oid(oid::NUMERIC, -1, "numeric"),
            PgType::Numeric(None)
        );
    }

    #[test]
    fn time_precision_defaults_to_six() {
        assert_eq!(
            PgType::from_oid(oid::TIMESTAMP, -1, "x"),
            PgType::Timestamp(6)
        );
        assert_eq!(
            PgType::from_oid(oid::TIMESTAMPTZ, 3, "x"),
            PgType::Timestamptz(3)
        );
        assert_eq!(
            PgType::from_oid(oid::VARCHAR, 24, "x"),
            PgType::Varchar(Some(20))
        );
    }
}
