//! Kafka Connect `JsonConverter` output: the payload alone, or `{"schema":..,"payload":..}`
//! with `schemas.enable=true`. Byte-for-byte what the Java converter writes: compact, struct
//! fields in schema order, bytes and decimals as base64, floats formatted like Java's
//! `Double.toString`, a null field with a default written as its default.

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, ListArray, MapArray, StringArray, StructArray,
};
use datafusion::arrow::datatypes::DataType;
use std::io::Write;

use super::{EncodeError, EncodedColumn};
use crate::connect::{json_string_bytes, ConnectType, DefaultValue, Schema};

#[derive(Debug, Clone)]
pub struct JsonEncoder {
    schema: Schema,
    /// `{"schema":<schema>,"payload":` when schemas are enabled.
    prefix: Option<Vec<u8>>,
}

impl JsonEncoder {
    pub fn new(schema: &Schema, with_schema: bool) -> Self {
        let prefix = with_schema.then(|| {
            format!("{{\"schema\":{},\"payload\":", schema.to_connect_json()).into_bytes()
        });
        JsonEncoder {
            schema: schema.clone(),
            prefix,
        }
    }

    pub fn encode(&self, rows: &StructArray, out: &mut EncodedColumn) -> Result<(), EncodeError> {
        let writer = StructWriter::new(&self.schema, rows)?;
        for row in 0..rows.len() {
            if rows.is_null(row) {
                out.push_null();
                continue;
            }
            let buf = out.buf();
            if let Some(p) = &self.prefix {
                buf.extend_from_slice(p);
            }
            writer.write_fields(row, buf);
            if self.prefix.is_some() {
                buf.push(b'}');
            }
            out.end();
        }
        Ok(())
    }
}

/// A struct's fields with their arrays downcast once per batch.
struct StructWriter<'a> {
    fields: Vec<(Vec<u8>, Writer<'a>)>,
}

impl<'a> StructWriter<'a> {
    fn new(schema: &'a Schema, array: &'a StructArray) -> Result<Self, EncodeError> {
        let mut fields = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            let mut key = Vec::with_capacity(f.name.len() + 4);
            json_string_bytes(&mut key, &f.name);
            key.push(b':');
            fields.push((key, Writer::new(&f.schema, array.column(i))?));
        }
        Ok(StructWriter { fields })
    }

    fn write_fields(&self, row: usize, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, w)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            w.write(row, out);
        }
        out.push(b'}');
    }
}

enum Kind<'a> {
    Bool(&'a BooleanArray),
    I8(&'a Int8Array),
    I16(&'a Int16Array),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    F32(&'a Float32Array),
    F64(&'a Float64Array),
    Str(&'a StringArray),
    Bytes(&'a BinaryArray),
    Decimal(&'a Decimal128Array),
    Struct(StructWriter<'a>),
    List(&'a ListArray, Box<Writer<'a>>),
    /// Keys, values, and whether the keys are strings (a JSON object) or not (`[[k,v],..]`).
    Map(&'a MapArray, Box<Writer<'a>>, Box<Writer<'a>>, bool),
}

struct Writer<'a> {
    array: &'a ArrayRef,
    default: Option<&'a DefaultValue>,
    kind: Kind<'a>,
}

fn downcast<'a, T: 'static>(a: &'a ArrayRef, schema: &Schema) -> Result<&'a T, EncodeError> {
    a.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| EncodeError::TypeMismatch {
            arrow: a.data_type().to_string(),
            connect: format!("{:?}", schema.ty),
        })
}

impl<'a> Writer<'a> {
    fn new(schema: &'a Schema, array: &'a ArrayRef) -> Result<Self, EncodeError> {
        let kind = match (&schema.ty, array.data_type()) {
            (ConnectType::Boolean, _) => Kind::Bool(downcast(array, schema)?),
            (ConnectType::Int8, _) => Kind::I8(downcast(array, schema)?),
            (ConnectType::Int16, _) => Kind::I16(downcast(array, schema)?),
            (ConnectType::Int32, _) => Kind::I32(downcast(array, schema)?),
            (ConnectType::Int64, _) => Kind::I64(downcast(array, schema)?),
            (ConnectType::Float32, _) => Kind::F32(downcast(array, schema)?),
            (ConnectType::Float64, _) => Kind::F64(downcast(array, schema)?),
            (ConnectType::String, _) => Kind::Str(downcast(array, schema)?),
            (ConnectType::Bytes, DataType::Decimal128(_, _)) => {
                Kind::Decimal(downcast(array, schema)?)
            }
            (ConnectType::Bytes, _) => Kind::Bytes(downcast(array, schema)?),
            (ConnectType::Struct(_), _) => {
                Kind::Struct(StructWriter::new(schema, downcast(array, schema)?)?)
            }
            (ConnectType::Array(items), _) => {
                let list: &ListArray = downcast(array, schema)?;
                Kind::List(list, Box::new(Writer::new(items, list.values())?))
            }
            (ConnectType::Map(keys, values), _) => {
                let map: &MapArray = downcast(array, schema)?;
                Kind::Map(
                    map,
                    Box::new(Writer::new(keys, map.keys())?),
                    Box::new(Writer::new(values, map.values())?),
                    keys.ty == ConnectType::String,
                )
            }
        };
        Ok(Writer {
            array,
            default: schema.default.as_ref(),
            kind,
        })
    }

    fn write(&self, row: usize, out: &mut Vec<u8>) {
        if self.array.is_null(row) {
            match self.default {
                Some(DefaultValue::String(s)) => json_string_bytes(out, s),
                None => out.extend_from_slice(b"null"),
            }
            return;
        }
        match &self.kind {
            Kind::Bool(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
            Kind::I8(a) => write_int(out, a.value(row) as i64),
            Kind::I16(a) => write_int(out, a.value(row) as i64),
            Kind::I32(a) => write_int(out, a.value(row) as i64),
            Kind::I64(a) => write_int(out, a.value(row)),
            Kind::F32(a) => write_java_float(out, a.value(row) as f64, true),
            Kind::F64(a) => write_java_float(out, a.value(row), false),
            Kind::Str(a) => json_string_bytes(out, a.value(row)),
            Kind::Bytes(a) => {
                out.push(b'"');
                base64_into(out, a.value(row));
                out.push(b'"');
            }
            Kind::Decimal(a) => {
                let bytes = a.value(row).to_be_bytes();
                out.push(b'"');
                base64_into(out, minimal_twos_complement(&bytes));
                out.push(b'"');
            }
            Kind::Struct(s) => s.write_fields(row, out),
            Kind::List(list, items) => {
                let offsets = list.value_offsets();
                out.push(b'[');
                for (n, i) in (offsets[row] as usize..offsets[row + 1] as usize).enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    items.write(i, out);
                }
                out.push(b']');
            }
            Kind::Map(map, keys, values, string_keys) => {
                // JsonConverter: an object when the keys are strings, else [[k,v],...].
                let offsets = map.value_offsets();
                out.push(if *string_keys { b'{' } else { b'[' });
                for (n, i) in (offsets[row] as usize..offsets[row + 1] as usize).enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    if *string_keys {
                        keys.write(i, out);
                        out.push(b':');
                        values.write(i, out);
                    } else {
                        out.push(b'[');
                        keys.write(i, out);
                        out.push(b',');
                        values.write(i, out);
                        out.push(b']');
                    }
                }
                out.push(if *string_keys { b'}' } else { b']' });
            }
        }
    }
}

fn write_int(out: &mut Vec<u8>, v: i64) {
    let mut buf = itoa_buf(v);
    out.extend_from_slice(buf.as_bytes_mut());
}

struct IntBuf {
    bytes: [u8; 20],
    start: usize,
}

impl IntBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

fn itoa_buf(v: i64) -> IntBuf {
    let mut bytes = [0u8; 20];
    let mut i = 20;
    let neg = v < 0;
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        bytes[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        bytes[i] = b'-';
    }
    IntBuf { bytes, start: i }
}

/// Strip redundant sign bytes, as `BigInteger.toByteArray()` does.
pub fn minimal_twos_complement(bytes: &[u8]) -> &[u8] {
    let mut i = 0;
    while i + 1 < bytes.len() {
        let (b, next) = (bytes[i], bytes[i + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            i += 1;
        } else {
            break;
        }
    }
    &bytes[i..]
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_into(out: &mut Vec<u8>, input: &[u8]) {
    out.reserve(input.len().div_ceil(3) * 4);
    let mut chunks = input.chunks_exact(3);
    for c in &mut chunks {
        let n = (c[0] as u32) << 16 | (c[1] as u32) << 8 | c[2] as u32;
        out.extend_from_slice(&[
            B64[(n >> 18) as usize & 63],
            B64[(n >> 12) as usize & 63],
            B64[(n >> 6) as usize & 63],
            B64[n as usize & 63],
        ]);
    }
    match chunks.remainder() {
        [a] => {
            let n = (*a as u32) << 16;
            out.extend_from_slice(&[
                B64[(n >> 18) as usize & 63],
                B64[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
        }
        [a, b] => {
            let n = (*a as u32) << 16 | (*b as u32) << 8;
            out.extend_from_slice(&[
                B64[(n >> 18) as usize & 63],
                B64[(n >> 12) as usize & 63],
                B64[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

/// Java's `Double.toString` / `Float.toString` (shortest round-trip digits): plain notation
/// with at least one fractional digit for 1e-3 <= |v| < 1e7, otherwise `d.dddE±n`.
/// Non-finite values are quoted, as Jackson does by default.
pub fn write_java_float(out: &mut Vec<u8>, v: f64, single: bool) {
    if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    // Shortest digits from Rust's formatter, in scientific form: "-1.2345e-7", written to
    // the stack so that float columns cost no allocation per value.
    let mut stack = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut stack[..]);
    let _ = if single {
        write!(cursor, "{:e}", v as f32)
    } else {
        write!(cursor, "{v:e}")
    };
    let written = cursor.position() as usize;
    let sci = std::str::from_utf8(&stack[..written]).expect("float formatting is ASCII");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let mut digit_buf = [0u8; 32];
    let mut n_digits = 0;
    for b in mantissa.bytes().filter(|b| *b != b'.') {
        digit_buf[n_digits] = b;
        n_digits += 1;
    }
    let digits = &digit_buf[..n_digits];
    if neg {
        out.push(b'-');
    }
    if (-3..7).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.extend_from_slice(digits);
                out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            }
        }
    } else {
        out.push(digits[0]);
        out.push(b'.');
        if digits.len() > 1 {
            out.extend_from_slice(&digits[1..]);
        } else {
            out.push(b'0');
        }
        let _ = write!(out, "E{exp}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn java(v: f64) -> String {
        let mut o = Vec::new();
        write_java_float(&mut o, v, false);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn floats_match_java_double_to_string() {
        assert_eq!(java(3.0), "3.0");
        assert_eq!(java(1.5), "1.5");
        assert_eq!(java(1e10), "1.0E10");
        assert_eq!(java(1234567.0), "1234567.0");
        assert_eq!(java(12345678.0), "1.2345678E7");
        assert_eq!(java(0.001), "0.001");
        assert_eq!(java(0.0001), "1.0E-4");
        assert_eq!(java(-2.5e-5), "-2.5E-5");
        assert_eq!(java(100.0), "100.0");
        let mut o = Vec::new();
        write_java_float(&mut o, 1.1f32 as f64, true);
        assert_eq!(o, b"1.1");
    }

    #[test]
    fn base64_and_decimal_bytes_match_reference() {
        let enc = |v: i128| {
            let mut o = Vec::new();
            base64_into(&mut o, minimal_twos_complement(&v.to_be_bytes()));
            String::from_utf8(o).unwrap()
        };
        // shared/reference/debezium-format.md §3
        assert_eq!(enc(1234), "BNI=");
        assert_eq!(enc(10000), "JxA=");
        assert_eq!(enc(-100), "nA==");
        assert_eq!(enc(0), "AA==");
        assert_eq!(enc(128), "AIA=");
    }
}
