//! Decoder for `COPY ... TO STDOUT (FORMAT binary)`, straight into Arrow builders: no row
//! objects, no text parsing. Input arrives in arbitrary chunks; a tuple split across chunks
//! is carried over until it is complete, so a builder never sees half a row.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;

use super::SourceError;
use crate::catalog::Column;
use crate::types::{PgType, PG_EPOCH_DAYS, PG_EPOCH_MICROS};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, i8),
    NumericText(StringBuilder),
    Text(StringBuilder),
    Jsonb(StringBuilder),
    Uuid(StringBuilder),
    Bytea(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Timestamptz(TimestampMicrosecondBuilder),
}

impl Builder {
    fn new(pg: &PgType, capacity: usize) -> Builder {
        match pg {
            PgType::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            PgType::Int2 => Builder::I16(Int16Builder::with_capacity(capacity)),
            PgType::Int4 => Builder::I32(Int32Builder::with_capacity(capacity)),
            PgType::Int8 => Builder::I64(Int64Builder::with_capacity(capacity)),
            PgType::Float4 => Builder::F32(Float32Builder::with_capacity(capacity)),
            PgType::Float8 => Builder::F64(Float64Builder::with_capacity(capacity)),
            PgType::Numeric(Some((p, s))) if *p <= 38 && *s >= 0 => Builder::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(*p, *s)
                    .expect("precision checked"),
                *s,
            ),
            PgType::Numeric(_) => {
                Builder::NumericText(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            PgType::Jsonb => Builder::Jsonb(StringBuilder::with_capacity(capacity, capacity * 16)),
            PgType::Uuid => Builder::Uuid(StringBuilder::with_capacity(capacity, capacity * 36)),
            PgType::Bytea => Builder::Bytea(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            PgType::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            PgType::Time(_) => Builder::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            PgType::Timestamp(_) => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            PgType::Timestamptz(_) => Builder::Timestamptz(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            // text, varchar, bpchar, json and anything text-like: UTF-8 as sent.
            _ => Builder::Text(StringBuilder::with_capacity(capacity, capacity * 16)),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Decimal(b, _) => b.append_null(),
            Builder::NumericText(b) | Builder::Text(b) | Builder::Jsonb(b) | Builder::Uuid(b) => {
                b.append_null()
            }
            Builder::Bytea(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Timestamp(b) | Builder::Timestamptz(b) => b.append_null(),
        }
    }

    fn append(&mut self, v: &[u8]) -> Result<(), String> {
        fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
            v.try_into()
                .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
        }
        match self {
            Builder::Bool(b) => b.append_value(fixed::<1>(v)?[0] != 0),
            Builder::I16(b) => b.append_value(i16::from_be_bytes(fixed(v)?)),
            Builder::I32(b) => b.append_value(i32::from_be_bytes(fixed(v)?)),
            Builder::I64(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Builder::F32(b) => b.append_value(f32::from_be_bytes(fixed(v)?)),
            Builder::F64(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
            Builder::Decimal(b, scale) => b.append_value(numeric_to_i128(v, *scale)?),
            Builder::NumericText(b) => b.append_value(numeric_to_text(v)?),
            Builder::Text(b) => b.append_value(utf8(v)?),
            Builder::Jsonb(b) => match v.split_first() {
                Some((1, rest)) => b.append_value(utf8(rest)?),
                _ => return Err("unknown jsonb binary version".into()),
            },
            Builder::Uuid(b) => {
                let u: [u8; 16] = fixed(v)?;
                let mut s = [0u8; 36];
                let hex = b"0123456789abcdef";
                let mut j = 0;
                for (i, byte) in u.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        s[j] = b'-';
                        j += 1;
                    }
                    s[j] = hex[(byte >> 4) as usize];
                    s[j + 1] = hex[(byte & 0xf) as usize];
                    j += 2;
                }
                b.append_value(std::str::from_utf8(&s).expect("hex is ASCII"));
            }
            Builder::Bytea(b) => b.append_value(v),
            Builder::Date(b) => {
                let d = i32::from_be_bytes(fixed(v)?);
                // ±infinity (i32::MAX / MIN) are kept as they are rather than overflowing.
                b.append_value(if d == i32::MAX || d == i32::MIN {
                    d
                } else {
                    d + PG_EPOCH_DAYS
                })
            }
            Builder::Time(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Builder::Timestamp(b) | Builder::Timestamptz(b) => {
                let t = i64::from_be_bytes(fixed(v)?);
                b.append_value(if t == i64::MAX || t == i64::MIN {
                    t
                } else {
                    t + PG_EPOCH_MICROS
                })
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Decimal(b, _) => Arc::new(b.finish()),
            Builder::NumericText(b) | Builder::Text(b) | Builder::Jsonb(b) | Builder::Uuid(b) => {
                Arc::new(b.finish())
            }
            Builder::Bytea(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) | Builder::Timestamptz(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Bool(b) => b.len(),
            Builder::I16(b) => b.len(),
            Builder::I32(b) => b.len(),
            Builder::I64(b) => b.len(),
            Builder::F32(b) => b.len(),
            Builder::F64(b) => b.len(),
            Builder::Decimal(b, _) => b.len(),
            Builder::NumericText(b) | Builder::Text(b) | Builder::Jsonb(b) | Builder::Uuid(b) => {
                b.len()
            }
            Builder::Bytea(b) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Time(b) => b.len(),
            Builder::Timestamp(b) | Builder::Timestamptz(b) => b.len(),
        }
    }
}

fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|e| format!("invalid UTF-8: {e}"))
}

struct NumericParts<'a> {
    weight: i16,
    sign: u16,
    dscale: u16,
    digits: &'a [u8],
}

fn numeric_parts(v: &[u8]) -> Result<NumericParts<'_>, String> {
    if v.len() < 8 {
        return Err("numeric shorter than its header".into());
    }
    let ndigits = i16::from_be_bytes([v[0], v[1]]) as usize;
    let digits = &v[8..];
    if digits.len() != ndigits * 2 {
        return Err("numeric digit count does not match its length".into());
    }
    Ok(NumericParts {
        weight: i16::from_be_bytes([v[2], v[3]]),
        sign: u16::from_be_bytes([v[4], v[5]]),
        dscale: u16::from_be_bytes([v[6], v[7]]),
        digits,
    })
}

fn special(sign: u16) -> Option<&'static str> {
    match sign {
        0xC000 => Some("NaN"),
        0xD000 => Some("Infinity"),
        0xF000 => Some("-Infinity"),
        _ => None,
    }
}

/// Binary numeric → unscaled integer at `scale`.
pub fn numeric_to_i128(v: &[u8], scale: i8) -> Result<i128, String> {
    let n = numeric_parts(v)?;
    if let Some(s) = special(n.sign) {
        return Err(format!(
            "{s} cannot be represented in numeric with a fixed scale"
        ));
    }
    let overflow = || "numeric value does not fit 38 digits".to_string();
    let mut acc: i128 = 0;
    for (i, pair) in n.digits.chunks_exact(2).enumerate() {
        let d = i16::from_be_bytes([pair[0], pair[1]]) as i128;
        if d == 0 {
            continue;
        }
        let exp = 4 * (n.weight as i32 - i as i32) + scale as i32;
        let term = if exp >= 0 {
            10i128
                .checked_pow(exp as u32)
                .and_then(|p| p.checked_mul(d))
                .ok_or_else(overflow)?
        } else {
            // Digits beyond the column's scale are zero for a typmod column; drop them.
            d / 10i128.checked_pow((-exp) as u32).unwrap_or(i128::MAX)
        };
        acc = acc.checked_add(term).ok_or_else(overflow)?;
    }
    Ok(if n.sign == 0x4000 { -acc } else { acc })
}

/// Binary numeric → its exact decimal text (as Postgres' `numeric_out` prints it).
pub fn numeric_to_text(v: &[u8]) -> Result<String, String> {
    let n = numeric_parts(v)?;
    if let Some(s) = special(n.sign) {
        return Ok(s.to_string());
    }
    let digit = |i: i32| -> u16 {
        if i < 0 || (i as usize) * 2 >= n.digits.len() {
            0
        } else {
            let i = i as usize * 2;
            u16::from_be_bytes([n.digits[i], n.digits[i + 1]])
        }
    };
    let mut s = String::new();
    if n.sign == 0x4000 {
        s.push('-');
    }
    if n.weight < 0 {
        s.push('0');
    } else {
        for i in 0..=n.weight as i32 {
            if i == 0 {
                s.push_str(&digit(i).to_string());
            } else {
                s.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if n.dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut i = n.weight as i32 + 1;
        while frac.len() < n.dscale as usize {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(n.dscale as usize);
        s.push_str(&frac);
    }
    Ok(s)
}

/// Turns a binary COPY byte stream into record batches of at most `batch_rows` rows.
pub struct CopyDecoder {
    schema: SchemaRef,
    columns: Vec<Column>,
    table: String,
    builders: Vec<Builder>,
    batch_rows: usize,
    carry: BytesMut,
    header_done: bool,
    finished: bool,
}

impl CopyDecoder {
    pub fn new(table: String, columns: Vec<Column>, schema: SchemaRef, batch_rows: usize) -> Self {
        let builders = columns
            .iter()
            .map(|c| Builder::new(&c.pg_type, batch_rows))
            .collect();
        CopyDecoder {
            schema,
            columns,
            table,
            builders,
            batch_rows: batch_rows.max(1),
            carry: BytesMut::new(),
            header_done: false,
            finished: false,
        }
    }

    fn rows(&self) -> usize {
        self.builders.first().map_or(0, |b| b.len())
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
            for (i, b) in self.builders.iter_mut().enumerate() {
                let len = i32::from_be_bytes(tuple[pos..pos + 4].try_into().expect("checked"));
                pos += 4;
                if len < 0 {
                    b.append_null();
                } else {
                    let v = &tuple[pos..pos + len as usize];
                    pos += len as usize;
                    b.append(v).map_err(|message| SourceError::Decode {
                        table: self.table.clone(),
                        column: self.columns[i].name.clone(),
                        message,
                    })?;
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
        if count as usize != self.builders.len() {
            return Err(SourceError::Protocol(format!(
                "expected {} fields per row, got {count}",
                self.builders.len()
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
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
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

/// One column's values in Postgres' binary send format → one Arrow array. Shared by COPY and
/// the replication stream (pgoutput in binary mode sends the same format).
pub struct ColumnDecoder(Builder);

impl ColumnDecoder {
    pub fn new(pg: &PgType, capacity: usize) -> Self {
        ColumnDecoder(Builder::new(pg, capacity))
    }

    pub fn append(&mut self, v: &[u8]) -> Result<(), String> {
        self.0.append(v)
    }

    pub fn append_null(&mut self) {
        self.0.append_null()
    }

    pub fn finish(&mut self) -> ArrayRef {
        self.0.finish()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_binary_decodes() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        let v = numeric(1, 0, 3, &[1, 2345, 6780]);
        assert_eq!(numeric_to_i128(&v, 3).unwrap(), 12_345_678);
        assert_eq!(numeric_to_text(&v).unwrap(), "12345.678");
        // -0.001 = [10], weight -1, dscale 3
        let v = numeric(-1, 0x4000, 3, &[10]);
        assert_eq!(numeric_to_i128(&v, 3).unwrap(), -1);
        assert_eq!(numeric_to_text(&v).unwrap(), "-0.001");
        // 0 with dscale 2
        let v = numeric(0, 0, 2, &[]);
        assert_eq!(numeric_to_text(&v).unwrap(), "0.00");
        assert_eq!(numeric_to_i128(&v, 2).unwrap(), 0);
        // 10000 = [1], weight 1
        let v = numeric(1, 0, 0, &[1]);
        assert_eq!(numeric_to_text(&v).unwrap(), "10000");
        assert!(numeric_to_i128(&numeric(0, 0xC000, 0, &[]), 2).is_err());
    }
}
