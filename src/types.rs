//! Postgres column types as cdcql understands them, and their Arrow representation.
//!
//! The catalog reads `pg_attribute.atttypid` / `atttypmod` and turns them into [`PgType`]; the
//! snapshot decoder uses the Arrow type chosen here; the envelopes map a [`PgType`] to Debezium's
//! semantic type. Computed columns (expressions in the pipeline's SELECT) have no Postgres type:
//! [`PgType::from_arrow`] picks the Postgres type an equivalent SQL expression would have.

use std::fmt;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, IntervalUnit, TimeUnit};

/// Postgres epoch (2000-01-01) relative to the Unix epoch.
pub const PG_EPOCH_DAYS: i32 = 10_957;
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Type OIDs from `pg_type.dat` (stable across Postgres versions). Extension types (hstore,
/// ltree, citext) have no fixed OID: the catalog recognises them by name.
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
    pub const XML: u32 = 142;
    pub const POINT: u32 = 600;
    pub const CIDR: u32 = 650;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const MACADDR8: u32 = 774;
    pub const MONEY: u32 = 790;
    pub const MACADDR: u32 = 829;
    pub const INET: u32 = 869;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const BIT: u32 = 1560;
    pub const VARBIT: u32 = 1562;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const TSVECTOR: u32 = 3614;
    pub const JSONB: u32 = 3802;
    pub const INT4RANGE: u32 = 3904;
    pub const NUMRANGE: u32 = 3906;
    pub const TSRANGE: u32 = 3908;
    pub const TSTZRANGE: u32 = 3910;
    pub const DATERANGE: u32 = 3912;
    pub const INT8RANGE: u32 = 3926;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian with astronomical years
/// (0 is 1 BC), by H. Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Scale of `money` values: Postgres stores an integer count of the smallest currency unit,
/// and every common `lc_monetary` has two fraction digits.
pub const MONEY_SCALE: i8 = 2;

/// The built-in range types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeType {
    Int4,
    Int8,
    Num,
    Ts,
    Tstz,
    Date,
}

impl RangeType {
    pub fn name(self) -> &'static str {
        match self {
            RangeType::Int4 => "int4range",
            RangeType::Int8 => "int8range",
            RangeType::Num => "numrange",
            RangeType::Ts => "tsrange",
            RangeType::Tstz => "tstzrange",
            RangeType::Date => "daterange",
        }
    }

    const ALL: [RangeType; 6] = [
        RangeType::Int4,
        RangeType::Int8,
        RangeType::Num,
        RangeType::Ts,
        RangeType::Tstz,
        RangeType::Date,
    ];
}

/// A column type we can read. `precision` on time types is the fractional-second digits
/// (0..=6; 6 when the column has no typmod). Domains are resolved to their base type by the
/// catalog, so they never appear here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    /// `oid`: unsigned 32-bit, carried as a 64-bit integer like Debezium does.
    Oid,
    Float4,
    Float8,
    /// numeric(p, s); `None` for numeric without a typmod (variable scale).
    Numeric(Option<(u16, i16)>),
    /// A numeric column read for `decimal_handling` 'string' or 'double' (the planner sets this;
    /// it prints like [`PgType::Numeric`]): read as exact text or as a double, so that NaN and
    /// ±Infinity, which Debezium writes in those modes, survive the trip through Arrow.
    NumericAs(Option<(u16, i16)>, DecimalHandling),
    Money,
    Text,
    Varchar(Option<u32>),
    Bpchar(Option<u32>),
    /// The one-byte `"char"` type.
    Char,
    Name,
    Citext,
    Bytea,
    /// bit(n)
    Bit(u32),
    /// bit varying(n); `None` without a length.
    Varbit(Option<u32>),
    Date,
    Time(u8),
    Timetz(u8),
    Timestamp(u8),
    Timestamptz(u8),
    Interval,
    Uuid,
    Json,
    Jsonb,
    Xml,
    Inet,
    Cidr,
    Macaddr,
    Macaddr8,
    Range(RangeType),
    /// An enum type with its labels in `enumsortorder`.
    Enum {
        name: String,
        labels: Vec<String>,
    },
    Hstore,
    Ltree,
    Tsvector,
    Point,
    /// PostGIS geometry / geography: their binary form is EWKB.
    Geometry,
    Geography,
    /// pgvector's vector (float4 elements), halfvec (float2) and sparsevec.
    Vector,
    Halfvec,
    Sparsevec,
    /// A one-dimensional array of the element type (typmod inherited from the column).
    Array(Box<PgType>),
    /// Anything else: kept so that the error can name it.
    Unsupported {
        name: String,
        oid: u32,
    },
}

/// Whether cdcql (and Debezium) can carry a column of this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Supported,
    /// Debezium leaves columns of this type out of its events; so does cdcql, with a warning.
    OmittedByDebezium,
    /// Neither cdcql nor Debezium maps this type.
    Unknown,
}

impl PgType {
    /// Interpret a built-in type's OID with the column's `atttypmod`; `type_name` (from
    /// `format_type`) names anything else. Arrays, domains, enums and extension types need the
    /// catalog's `pg_type` rows and are resolved there.
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
            oid::OID => PgType::Oid,
            oid::FLOAT4 => PgType::Float4,
            oid::FLOAT8 => PgType::Float8,
            oid::NUMERIC => PgType::Numeric(numeric_typmod(typmod)),
            oid::MONEY => PgType::Money,
            oid::TEXT => PgType::Text,
            oid::NAME => PgType::Name,
            oid::CHAR => PgType::Char,
            oid::VARCHAR => PgType::Varchar(char_len),
            oid::BPCHAR => PgType::Bpchar(char_len),
            oid::BYTEA => PgType::Bytea,
            // The bit length is the typmod itself (no header offset); bit without one is bit(1).
            oid::BIT => PgType::Bit(if typmod < 0 { 1 } else { typmod as u32 }),
            oid::VARBIT => PgType::Varbit((typmod >= 0).then_some(typmod as u32)),
            oid::DATE => PgType::Date,
            oid::TIME => PgType::Time(time_precision),
            oid::TIMETZ => PgType::Timetz(time_precision),
            oid::TIMESTAMP => PgType::Timestamp(time_precision),
            oid::TIMESTAMPTZ => PgType::Timestamptz(time_precision),
            oid::INTERVAL => PgType::Interval,
            oid::UUID => PgType::Uuid,
            oid::JSON => PgType::Json,
            oid::JSONB => PgType::Jsonb,
            oid::XML => PgType::Xml,
            oid::INET => PgType::Inet,
            oid::CIDR => PgType::Cidr,
            oid::MACADDR => PgType::Macaddr,
            oid::MACADDR8 => PgType::Macaddr8,
            oid::INT4RANGE => PgType::Range(RangeType::Int4),
            oid::INT8RANGE => PgType::Range(RangeType::Int8),
            oid::NUMRANGE => PgType::Range(RangeType::Num),
            oid::TSRANGE => PgType::Range(RangeType::Ts),
            oid::TSTZRANGE => PgType::Range(RangeType::Tstz),
            oid::DATERANGE => PgType::Range(RangeType::Date),
            oid::TSVECTOR => PgType::Tsvector,
            oid::POINT => PgType::Point,
            _ => PgType::Unsupported {
                name: type_name.to_string(),
                oid: type_oid,
            },
        }
    }

    /// An extension type cdcql knows by name (its OID differs per database).
    pub fn from_extension_name(type_name: &str) -> Option<PgType> {
        Some(match type_name {
            "hstore" => PgType::Hstore,
            "ltree" => PgType::Ltree,
            "citext" => PgType::Citext,
            "geometry" => PgType::Geometry,
            "geography" => PgType::Geography,
            "vector" => PgType::Vector,
            "halfvec" => PgType::Halfvec,
            "sparsevec" => PgType::Sparsevec,
            _ => return None,
        })
    }

    /// The Arrow type the decoders produce (what the pipeline's query sees), or `None` for
    /// unsupported types. Only the envelope turns these into Connect's physical forms.
    pub fn arrow_type(&self) -> Option<DataType> {
        Some(match self {
            PgType::Bool => DataType::Boolean,
            PgType::Bit(1) | PgType::Varbit(Some(1)) => DataType::Boolean,
            // Longer bit strings travel as their '0'/'1' text.
            PgType::Bit(_) | PgType::Varbit(_) => DataType::Utf8,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 | PgType::Oid => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            PgType::Numeric(Some((p, s))) if decimal128_fits(*p, *s) => {
                DataType::Decimal128(*p as u8, *s as i8)
            }
            // Wider or negative-scale numerics and numeric without typmod travel as their
            // exact decimal text, so no digit is ever lost.
            PgType::Numeric(_) => DataType::Utf8,
            PgType::NumericAs(_, DecimalHandling::Double) => DataType::Float64,
            PgType::NumericAs(_, _) => DataType::Utf8,
            PgType::Money => DataType::Decimal128(19, MONEY_SCALE),
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
            // Arrow has no time-with-offset type: timetz travels as Debezium's UTC text.
            | PgType::Timetz(_) => DataType::Utf8,
            PgType::Bytea | PgType::Geometry | PgType::Geography => DataType::Binary,
            PgType::Vector | PgType::Halfvec => {
                DataType::List(Arc::new(Field::new("item", DataType::Float32, true)))
            }
            PgType::Sparsevec => DataType::Struct(sparsevec_fields()),
            PgType::Date => DataType::Date32,
            PgType::Time(_) => DataType::Time64(TimeUnit::Microsecond),
            PgType::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgType::Timestamptz(_) => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            PgType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            PgType::Hstore => hstore_arrow_type(),
            PgType::Point => DataType::Struct(point_fields()),
            PgType::Array(elem) => DataType::List(Arc::new(Field::new(
                "item",
                elem.arrow_type()?,
                true,
            ))),
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
            DataType::Decimal128(p, s) if *s >= 0 => PgType::Numeric(Some((*p as u16, *s as i16))),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PgType::Text,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => PgType::Bytea,
            DataType::Date32 => PgType::Date,
            DataType::Time64(_) | DataType::Time32(_) => PgType::Time(6),
            DataType::Timestamp(_, None) => PgType::Timestamp(6),
            DataType::Timestamp(_, Some(_)) => PgType::Timestamptz(6),
            DataType::Interval(IntervalUnit::MonthDayNano) => PgType::Interval,
            DataType::List(f) | DataType::LargeList(f) => {
                let elem = PgType::from_arrow(f.data_type())?;
                if matches!(elem, PgType::Array(_)) {
                    return None;
                }
                PgType::Array(Box::new(elem))
            }
            _ => return None,
        })
    }

    pub fn is_supported(&self) -> bool {
        self.support() == Support::Supported
    }

    /// Whether a column of this type can be carried, following Debezium 3.6: arrays of money,
    /// interval, bit varying, xml, point and name are left out of its events.
    pub fn support(&self) -> Support {
        match self {
            PgType::Unsupported { .. } => Support::Unknown,
            PgType::Array(elem) => match elem.as_ref() {
                PgType::Money
                | PgType::Interval
                | PgType::Varbit(_)
                | PgType::Xml
                | PgType::Point
                | PgType::Name => Support::OmittedByDebezium,
                PgType::Array(_) => Support::Unknown,
                other => other.support(),
            },
            _ => Support::Supported,
        }
    }

    /// This type as the pipeline reads it under `opts`: only numerics change, so that the
    /// values Debezium writes for NaN and ±Infinity in 'string' and 'double' mode exist in Arrow.
    pub fn under(&self, opts: &TypeOptions) -> PgType {
        match (self, opts.decimal_handling) {
            (PgType::Numeric(t), DecimalHandling::String | DecimalHandling::Double) => {
                PgType::NumericAs(*t, opts.decimal_handling)
            }
            (PgType::NumericAs(t, _), DecimalHandling::Precise) => PgType::Numeric(*t),
            (PgType::NumericAs(t, _), mode) => PgType::NumericAs(*t, mode),
            (PgType::Array(elem), _) => PgType::Array(Box::new(elem.under(opts))),
            (other, _) => other.clone(),
        }
    }
}

/// numeric's typmod: ((precision << 16) | scale) + 4, the scale an 11-bit signed field since
/// Postgres 15 (negative scales).
fn numeric_typmod(typmod: i32) -> Option<(u16, i16)> {
    if typmod < 4 {
        return None;
    }
    let m = typmod - 4;
    let precision = ((m >> 16) & 0xffff) as u16;
    let raw_scale = m & 0x7ff;
    let scale = if raw_scale & 0x400 != 0 {
        (raw_scale - 0x800) as i16
    } else {
        raw_scale as i16
    };
    Some((precision, scale))
}

/// Whether numeric(p, s) fits Arrow's Decimal128 exactly.
pub fn decimal128_fits(p: u16, s: i16) -> bool {
    (1..=38).contains(&p) && s >= 0 && s as u16 <= p
}

/// hstore in Arrow: a map of text keys to nullable text values, in Postgres' key order.
pub fn hstore_arrow_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    )
}

/// sparsevec in Arrow: the dimension count and a map of 1-based index (as Postgres prints
/// them) to value.
pub fn sparsevec_fields() -> Fields {
    Fields::from(vec![
        Field::new("dimensions", DataType::Int32, false),
        Field::new(
            "vector",
            DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("keys", DataType::Int32, false),
                        Field::new("values", DataType::Float32, true),
                    ])),
                    false,
                )),
                false,
            ),
            false,
        ),
    ])
}

/// point in Arrow: its two coordinates.
pub fn point_fields() -> Fields {
    Fields::from(vec![
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, false),
    ])
}

/// Writes an enum label list as `'a','b'` (quotes doubled), for `Display` and fixtures.
fn write_labels(f: &mut fmt::Formatter<'_>, labels: &[String]) -> fmt::Result {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "'{}'", l.replace('\'', "''"))?;
    }
    Ok(())
}

impl fmt::Display for PgType {
    /// `format_type`'s spelling, which [`PgType::from_display_name`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgType::Bool => f.write_str("boolean"),
            PgType::Int2 => f.write_str("smallint"),
            PgType::Int4 => f.write_str("integer"),
            PgType::Int8 => f.write_str("bigint"),
            PgType::Oid => f.write_str("oid"),
            PgType::Float4 => f.write_str("real"),
            PgType::Float8 => f.write_str("double precision"),
            PgType::Numeric(None) | PgType::NumericAs(None, _) => f.write_str("numeric"),
            PgType::Numeric(Some((p, s))) | PgType::NumericAs(Some((p, s)), _) => {
                write!(f, "numeric({p},{s})")
            }
            PgType::Money => f.write_str("money"),
            PgType::Text => f.write_str("text"),
            PgType::Varchar(None) => f.write_str("character varying"),
            PgType::Varchar(Some(n)) => write!(f, "character varying({n})"),
            PgType::Bpchar(None) => f.write_str("character"),
            PgType::Bpchar(Some(n)) => write!(f, "character({n})"),
            PgType::Char => f.write_str("\"char\""),
            PgType::Name => f.write_str("name"),
            PgType::Citext => f.write_str("citext"),
            PgType::Bytea => f.write_str("bytea"),
            PgType::Bit(n) => write!(f, "bit({n})"),
            PgType::Varbit(None) => f.write_str("bit varying"),
            PgType::Varbit(Some(n)) => write!(f, "bit varying({n})"),
            PgType::Date => f.write_str("date"),
            PgType::Time(p) => write!(f, "time({p}) without time zone"),
            PgType::Timetz(p) => write!(f, "time({p}) with time zone"),
            PgType::Timestamp(p) => write!(f, "timestamp({p}) without time zone"),
            PgType::Timestamptz(p) => write!(f, "timestamp({p}) with time zone"),
            PgType::Interval => f.write_str("interval"),
            PgType::Uuid => f.write_str("uuid"),
            PgType::Json => f.write_str("json"),
            PgType::Jsonb => f.write_str("jsonb"),
            PgType::Xml => f.write_str("xml"),
            PgType::Inet => f.write_str("inet"),
            PgType::Cidr => f.write_str("cidr"),
            PgType::Macaddr => f.write_str("macaddr"),
            PgType::Macaddr8 => f.write_str("macaddr8"),
            PgType::Range(r) => f.write_str(r.name()),
            PgType::Enum { name, labels } => {
                write!(f, "enum {name}(")?;
                write_labels(f, labels)?;
                f.write_str(")")
            }
            PgType::Hstore => f.write_str("hstore"),
            PgType::Ltree => f.write_str("ltree"),
            PgType::Tsvector => f.write_str("tsvector"),
            PgType::Point => f.write_str("point"),
            PgType::Geometry => f.write_str("geometry"),
            PgType::Geography => f.write_str("geography"),
            PgType::Vector => f.write_str("vector"),
            PgType::Halfvec => f.write_str("halfvec"),
            PgType::Sparsevec => f.write_str("sparsevec"),
            PgType::Array(elem) => write!(f, "{elem}[]"),
            PgType::Unsupported { name, .. } => f.write_str(name),
        }
    }
}

impl PgType {
    /// Inverse of `Display`, for hand-written fixtures; unknown names become `Unsupported`
    /// when prefixed with `unsupported `.
    pub fn from_display_name(s: &str) -> Option<PgType> {
        let s = s.trim();
        if let Some(name) = s.strip_prefix("unsupported ") {
            return Some(PgType::Unsupported {
                name: name.to_string(),
                oid: 0,
            });
        }
        if let Some(elem) = s.strip_suffix("[]") {
            let elem = PgType::from_display_name(elem)?;
            return (!matches!(elem, PgType::Array(_))).then(|| PgType::Array(Box::new(elem)));
        }
        if let Some(rest) = s.strip_prefix("enum ") {
            let open = rest.find('(')?;
            let body = rest[open + 1..].strip_suffix(')')?;
            return Some(PgType::Enum {
                name: rest[..open].trim().to_string(),
                labels: parse_labels(body)?,
            });
        }
        let (base, arg) = match s.find('(') {
            Some(i) => {
                let close = s.find(')')?;
                (
                    format!("{}{}", &s[..i], &s[close + 1..]),
                    Some(&s[i + 1..close]),
                )
            }
            None => (s.to_string(), None),
        };
        let num = |a: Option<&str>| a.and_then(|a| a.trim().parse::<u32>().ok());
        let prec = |a: Option<&str>| num(a).map(|p| p.min(6) as u8).unwrap_or(6);
        if let Some(r) = RangeType::ALL.iter().find(|r| r.name() == base.trim()) {
            return Some(PgType::Range(*r));
        }
        Some(match base.trim() {
            "boolean" => PgType::Bool,
            "smallint" => PgType::Int2,
            "integer" => PgType::Int4,
            "bigint" => PgType::Int8,
            "oid" => PgType::Oid,
            "real" => PgType::Float4,
            "double precision" => PgType::Float8,
            "numeric" => match arg {
                None => PgType::Numeric(None),
                Some(a) => {
                    let (p, sc) = a.split_once(',').unwrap_or((a, "0"));
                    PgType::Numeric(Some((p.trim().parse().ok()?, sc.trim().parse().ok()?)))
                }
            },
            "money" => PgType::Money,
            "text" => PgType::Text,
            "character varying" => PgType::Varchar(num(arg)),
            "character" => PgType::Bpchar(num(arg)),
            "\"char\"" => PgType::Char,
            "name" => PgType::Name,
            "citext" => PgType::Citext,
            "bytea" => PgType::Bytea,
            "bit" => PgType::Bit(num(arg).unwrap_or(1)),
            "bit varying" => PgType::Varbit(num(arg)),
            "date" => PgType::Date,
            "time without time zone" => PgType::Time(prec(arg)),
            "time with time zone" => PgType::Timetz(prec(arg)),
            "timestamp without time zone" => PgType::Timestamp(prec(arg)),
            "timestamp with time zone" => PgType::Timestamptz(prec(arg)),
            "interval" => PgType::Interval,
            "uuid" => PgType::Uuid,
            "json" => PgType::Json,
            "jsonb" => PgType::Jsonb,
            "xml" => PgType::Xml,
            "inet" => PgType::Inet,
            "cidr" => PgType::Cidr,
            "macaddr" => PgType::Macaddr,
            "macaddr8" => PgType::Macaddr8,
            "hstore" => PgType::Hstore,
            "ltree" => PgType::Ltree,
            "tsvector" => PgType::Tsvector,
            "point" => PgType::Point,
            "geometry" => PgType::Geometry,
            "geography" => PgType::Geography,
            "vector" => PgType::Vector,
            "halfvec" => PgType::Halfvec,
            "sparsevec" => PgType::Sparsevec,
            _ => return None,
        })
    }
}

/// `'a','b''c'` → [a, b'c].
fn parse_labels(body: &str) -> Option<Vec<String>> {
    let mut labels = Vec::new();
    let mut chars = body.trim().chars().peekable();
    while chars.peek().is_some() {
        if chars.next()? != '\'' {
            return None;
        }
        let mut label = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                c => label.push(c),
            }
        }
        labels.push(label);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some(_) => return None,
        }
    }
    Some(labels)
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
        // numeric(1000, 0) and numeric(5, -2) (Postgres 15) do not fit Decimal128: text.
        let wide = PgType::from_oid(oid::NUMERIC, (1000 << 16) + 4, "numeric(1000,0)");
        assert_eq!(wide, PgType::Numeric(Some((1000, 0))));
        assert_eq!(wide.arrow_type(), Some(DataType::Utf8));
        let negative = PgType::from_oid(oid::NUMERIC, ((5 << 16) | 0x7fe) + 4, "numeric(5,-2)");
        assert_eq!(negative, PgType::Numeric(Some((5, -2))));
        assert_eq!(negative.arrow_type(), Some(DataType::Utf8));
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
        assert_eq!(PgType::from_oid(oid::BIT, 8, "x"), PgType::Bit(8));
        assert_eq!(PgType::from_oid(oid::VARBIT, -1, "x"), PgType::Varbit(None));
    }

    #[test]
    fn display_names_round_trip() {
        let types = vec![
            PgType::Oid,
            PgType::Money,
            PgType::Char,
            PgType::Name,
            PgType::Citext,
            PgType::Bit(1),
            PgType::Bit(12),
            PgType::Varbit(None),
            PgType::Varbit(Some(7)),
            PgType::Timetz(3),
            PgType::Interval,
            PgType::Xml,
            PgType::Inet,
            PgType::Cidr,
            PgType::Macaddr,
            PgType::Macaddr8,
            PgType::Range(RangeType::Tstz),
            PgType::Range(RangeType::Num),
            PgType::Enum {
                name: "mood".into(),
                labels: vec!["sad".into(), "it's, ok".into(), "".into()],
            },
            PgType::Hstore,
            PgType::Ltree,
            PgType::Tsvector,
            PgType::Point,
            PgType::Geometry,
            PgType::Geography,
            PgType::Vector,
            PgType::Halfvec,
            PgType::Sparsevec,
            PgType::Array(Box::new(PgType::Numeric(Some((10, 2))))),
            PgType::Array(Box::new(PgType::Timestamp(3))),
            PgType::Array(Box::new(PgType::Enum {
                name: "e".into(),
                labels: vec!["a".into()],
            })),
        ];
        for t in types {
            assert_eq!(
                PgType::from_display_name(&t.to_string()),
                Some(t.clone()),
                "{t}"
            );
        }
    }

    #[test]
    fn debezium_omits_some_arrays() {
        let arr = |t| PgType::Array(Box::new(t));
        assert_eq!(arr(PgType::Money).support(), Support::OmittedByDebezium);
        assert_eq!(arr(PgType::Name).support(), Support::OmittedByDebezium);
        assert_eq!(
            arr(PgType::Varbit(Some(1))).support(),
            Support::OmittedByDebezium
        );
        assert_eq!(arr(PgType::Int4).support(), Support::Supported);
        assert_eq!(
            arr(PgType::Unsupported {
                name: "box".into(),
                oid: 603
            })
            .support(),
            Support::Unknown
        );
    }

    #[test]
    fn non_precise_numerics_keep_specials() {
        let string = TypeOptions {
            decimal_handling: DecimalHandling::String,
            ..TypeOptions::default()
        };
        let double = TypeOptions {
            decimal_handling: DecimalHandling::Double,
            ..TypeOptions::default()
        };
        let n = PgType::Numeric(Some((10, 2)));
        assert_eq!(n.under(&TypeOptions::default()), n);
        assert_eq!(n.under(&string).arrow_type(), Some(DataType::Utf8));
        assert_eq!(n.under(&double).arrow_type(), Some(DataType::Float64));
        assert_eq!(n.under(&double).to_string(), "numeric(10,2)");
        let arr = PgType::Array(Box::new(n));
        assert_eq!(
            arr.under(&string),
            PgType::Array(Box::new(PgType::NumericAs(
                Some((10, 2)),
                DecimalHandling::String
            )))
        );
    }
}
