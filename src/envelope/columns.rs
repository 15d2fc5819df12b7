//! Column values: a Postgres type's Connect schema (Debezium's mapping, under the pipeline's
//! [`TypeOptions`](crate::types::TypeOptions)) and the conversion of an Arrow column from its
//! source form to the Connect physical form that schema promises. Shared by every envelope.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryBuilder, Int32Array, StringArray, StringBuilder, StructArray,
    Time64MicrosecondArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Fields};

use super::EnvelopeError;
use crate::connect::{ConnectType, Field, Schema};
use crate::plan::OutputColumn;
use crate::types::PgType;

/// The Connect schema Debezium gives a column of this Postgres type.
pub fn column_schema(pg: &PgType, optional: bool) -> Schema {
    let s = match pg {
        PgType::Bool => Schema::new(ConnectType::Boolean),
        PgType::Int2 => Schema::new(ConnectType::Int16),
        PgType::Int4 => Schema::new(ConnectType::Int32),
        PgType::Int8 => Schema::new(ConnectType::Int64),
        PgType::Float4 => Schema::new(ConnectType::Float32),
        PgType::Float8 => Schema::new(ConnectType::Float64),
        PgType::Numeric(Some((p, s))) => Schema::new(ConnectType::Bytes)
            .named("org.apache.kafka.connect.data.Decimal")
            .version(1)
            .param("scale", s.to_string())
            .param("connect.decimal.precision", p.to_string()),
        PgType::Numeric(None) => Schema::new(ConnectType::Struct(vec![
            Field::new("scale", Schema::new(ConnectType::Int32)),
            Field::new("value", Schema::new(ConnectType::Bytes)),
        ]))
        .named("io.debezium.data.VariableScaleDecimal")
        .version(1)
        .doc("Variable scaled decimal"),
        PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) => Schema::new(ConnectType::String),
        PgType::Bytea => Schema::new(ConnectType::Bytes),
        PgType::Date => Schema::new(ConnectType::Int32)
            .named("io.debezium.time.Date")
            .version(1),
        PgType::Time(p) if *p <= 3 => Schema::new(ConnectType::Int32)
            .named("io.debezium.time.Time")
            .version(1),
        PgType::Time(_) => Schema::new(ConnectType::Int64)
            .named("io.debezium.time.MicroTime")
            .version(1),
        PgType::Timestamp(p) if *p <= 3 => Schema::new(ConnectType::Int64)
            .named("io.debezium.time.Timestamp")
            .version(1),
        PgType::Timestamp(_) => Schema::new(ConnectType::Int64)
            .named("io.debezium.time.MicroTimestamp")
            .version(1),
        PgType::Timestamptz(_) => Schema::new(ConnectType::String)
            .named("io.debezium.time.ZonedTimestamp")
            .version(1),
        PgType::Uuid => Schema::new(ConnectType::String)
            .named("io.debezium.data.Uuid")
            .version(1),
        PgType::Json | PgType::Jsonb => Schema::new(ConnectType::String)
            .named("io.debezium.data.Json")
            .version(1),
        PgType::Unsupported { .. } => Schema::new(ConnectType::Bytes),
    };
    s.optional(optional)
}

/// Convert one output column from its Arrow form to the Connect physical form its
/// Debezium schema needs.
pub fn connect_array(array: &ArrayRef, col: &OutputColumn) -> Result<ArrayRef, EnvelopeError> {
    Ok(match &col.pg_type {
        PgType::Date => cast(array, &DataType::Int32)?,
        PgType::Time(p) => {
            let a = as_time64(array)?;
            if *p <= 3 {
                Arc::new(
                    a.unary::<_, datafusion::arrow::datatypes::Int32Type>(|us| (us / 1000) as i32),
                )
            } else {
                Arc::new(a.unary::<_, datafusion::arrow::datatypes::Int64Type>(|us| us))
            }
        }
        PgType::Timestamp(p) => {
            let a = as_timestamp(array)?;
            if *p <= 3 {
                Arc::new(a.unary::<_, datafusion::arrow::datatypes::Int64Type>(|us| {
                    if us == i64::MAX || us == i64::MIN {
                        us
                    } else {
                        us.div_euclid(1000)
                    }
                }))
            } else {
                Arc::new(a.unary::<_, datafusion::arrow::datatypes::Int64Type>(|us| us))
            }
        }
        PgType::Timestamptz(p) => {
            let a = as_timestamp(array)?;
            let mut b = StringBuilder::with_capacity(a.len(), a.len() * 28);
            let mut buf = String::with_capacity(40);
            for v in a.iter() {
                match v {
                    Some(us) => {
                        buf.clear();
                        format_zoned_timestamp(us, *p, &mut buf);
                        b.append_value(&buf);
                    }
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        PgType::Numeric(None) => variable_scale_decimal(array, &col.name)?,
        PgType::Numeric(Some((_, scale))) if array.data_type() == &DataType::Utf8 => {
            fixed_scale_from_text(array, *scale, &col.name)?
        }
        _ => {
            // Computed columns may come out of DataFusion in a neighbouring physical type
            // (Utf8View, Int8 ...): normalise to the type the schema promises.
            let want = connect_physical_type(&col.pg_type);
            if array.data_type() != &want {
                cast(array, &want)?
            } else {
                Arc::clone(array)
            }
        }
    })
}

fn connect_physical_type(pg: &PgType) -> DataType {
    match pg {
        PgType::Bool => DataType::Boolean,
        PgType::Int2 => DataType::Int16,
        PgType::Int4 => DataType::Int32,
        PgType::Int8 => DataType::Int64,
        PgType::Float4 => DataType::Float32,
        PgType::Float8 => DataType::Float64,
        PgType::Bytea | PgType::Unsupported { .. } => DataType::Binary,
        other => other.arrow_type().unwrap_or(DataType::Utf8),
    }
}

fn as_time64(a: &ArrayRef) -> Result<Time64MicrosecondArray, EnvelopeError> {
    let c = cast(
        a,
        &DataType::Time64(datafusion::arrow::datatypes::TimeUnit::Microsecond),
    )?;
    Ok(c.as_any()
        .downcast_ref::<Time64MicrosecondArray>()
        .expect("cast result")
        .clone())
}

fn as_timestamp(a: &ArrayRef) -> Result<TimestampMicrosecondArray, EnvelopeError> {
    let tz = match a.data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    let c = cast(
        a,
        &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, tz),
    )?;
    Ok(c.as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("cast result")
        .clone())
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
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

/// Debezium's ZonedTimestamp text: ISO-8601 in UTC with exactly `precision` fractional
/// digits; Postgres' ±infinity become `infinity` / `-infinity`.
pub fn format_zoned_timestamp(us: i64, precision: u8, out: &mut String) {
    use std::fmt::Write;
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
    if (0..=9999).contains(&y) {
        let _ = write!(out, "{y:04}");
    } else {
        let _ = write!(out, "{y:+05}");
    }
    let _ = write!(
        out,
        "-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if precision > 0 {
        let p = precision.min(6) as u32;
        let _ = write!(
            out,
            ".{:0width$}",
            frac / 10i64.pow(6 - p),
            width = p as usize
        );
    }
    out.push('Z');
}

/// Minimal big-endian two's-complement bytes of an integer given as decimal digits, as
/// Java's `BigInteger.toByteArray()` writes it.
pub fn unscaled_bytes_from_digits(negative: bool, digits: &[u8], out: &mut Vec<u8>) {
    // Magnitude in base 256, little-endian while building.
    let mut mag: Vec<u8> = Vec::with_capacity(digits.len() / 2 + 1);
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

/// Split decimal text into (negative, digits without point, scale).
fn parse_decimal_text(s: &str) -> Option<(bool, Vec<u8>, i32)> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let mut scale = frac.len() as i32;
    while digits.len() > 1 && digits[0] == b'0' {
        digits.remove(0);
    }
    if digits.is_empty() {
        digits.push(b'0');
        scale = 0;
    }
    Some((neg, digits, scale))
}

fn variable_scale_decimal(array: &ArrayRef, column: &str) -> Result<ArrayRef, EnvelopeError> {
    let text = cast(array, &DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8");
    let mut scales = Vec::with_capacity(text.len());
    let mut values = BinaryBuilder::new();
    let mut buf = Vec::new();
    for v in text.iter() {
        match v {
            None => {
                scales.push(0);
                values.append_value([]);
            }
            Some(s) => {
                let (neg, mut digits, mut scale) =
                    parse_decimal_text(s).ok_or_else(|| EnvelopeError::Value {
                        column: column.to_string(),
                        message: format!("numeric value `{s}` cannot be written as a decimal"),
                    })?;
                // Debezium strips trailing zeros (BigDecimal.stripTrailingZeros), never
                // below scale 0.
                while scale > 0 && digits.len() > 1 && digits.last() == Some(&b'0') {
                    digits.pop();
                    scale -= 1;
                }
                if digits == [b'0'] {
                    scale = 0;
                }
                buf.clear();
                unscaled_bytes_from_digits(neg, &digits, &mut buf);
                scales.push(scale);
                values.append_value(&buf);
            }
        }
    }
    let fields = Fields::from(vec![
        ArrowField::new("scale", DataType::Int32, false),
        ArrowField::new("value", DataType::Binary, false),
    ]);
    Ok(Arc::new(StructArray::try_new(
        fields,
        vec![
            Arc::new(Int32Array::from(scales)),
            Arc::new(values.finish()),
        ],
        array.nulls().cloned(),
    )?))
}

fn fixed_scale_from_text(
    array: &ArrayRef,
    scale: i8,
    column: &str,
) -> Result<ArrayRef, EnvelopeError> {
    let text = array
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("Utf8 numeric");
    let mut out = BinaryBuilder::new();
    let mut buf = Vec::new();
    for v in text.iter() {
        match v {
            None => out.append_null(),
            Some(s) => {
                let (neg, mut digits, have) =
                    parse_decimal_text(s).ok_or_else(|| EnvelopeError::Value {
                        column: column.to_string(),
                        message: format!(
                            "numeric value `{s}` cannot be written with decimal_handling 'precise'"
                        ),
                    })?;
                let want = scale as i32;
                if have > want {
                    return Err(EnvelopeError::Value {
                        column: column.to_string(),
                        message: format!("numeric value `{s}` has more than {want} decimals"),
                    });
                }
                digits.extend(std::iter::repeat_n(b'0', (want - have) as usize));
                buf.clear();
                unscaled_bytes_from_digits(neg, &digits, &mut buf);
                out.append_value(&buf);
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoned_timestamp_has_exactly_p_digits() {
        let mut s = String::new();
        format_zoned_timestamp(1_705_314_600_123_456, 6, &mut s);
        assert_eq!(s, "2024-01-15T10:30:00.123456Z");
        s.clear();
        format_zoned_timestamp(1_705_314_600_123_456, 0, &mut s);
        assert_eq!(s, "2024-01-15T10:30:00Z");
        s.clear();
        format_zoned_timestamp(1_705_314_600_100_000, 3, &mut s);
        assert_eq!(s, "2024-01-15T10:30:00.100Z");
        s.clear();
        format_zoned_timestamp(-1, 6, &mut s);
        assert_eq!(s, "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn unscaled_bytes_match_java_biginteger() {
        let enc = |neg, d: &str| {
            let mut v = Vec::new();
            unscaled_bytes_from_digits(neg, d.as_bytes(), &mut v);
            v
        };
        assert_eq!(enc(false, "1234"), vec![0x04, 0xd2]);
        assert_eq!(enc(false, "10000"), vec![0x27, 0x10]);
        assert_eq!(enc(true, "100"), vec![0x9c]);
        assert_eq!(enc(false, "0"), vec![0x00]);
        assert_eq!(enc(false, "128"), vec![0x00, 0x80]);
        assert_eq!(enc(true, "128"), vec![0x80]);
        assert_eq!(enc(true, "129"), vec![0xff, 0x7f]);
    }
}
