//! Postgres' text output, computed from the binary send format of a value.
//!
//! Debezium reads many types as the text Postgres prints (inet, ranges, tsvector, "char", ...),
//! while cdcql reads every value in binary (COPY and pgoutput alike). These functions print what
//! Postgres' own output functions print (`inet_out`, `range_out`, `tsvectorout`, `numeric_out`,
//! the ISO `DateStyle` with `TimeZone` UTC), into a caller's buffer so that no row allocates.
//! Each is checked against Postgres' `::text` in `tests/pg_binary.rs`.

use std::fmt::Write;

use crate::types::{civil_from_days, RangeType, PG_EPOCH_DAYS, PG_EPOCH_MICROS};

pub type Result<T = ()> = std::result::Result<T, String>;

/// The first `N` bytes of `v` as an array, or an error naming the shortfall.
pub fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N]> {
    v.get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("expected {N} bytes, got {}", v.len()))
}

/// Exactly `N` bytes.
pub fn exact<const N: usize>(v: &[u8]) -> Result<[u8; N]> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

pub fn utf8(v: &[u8]) -> Result<&str> {
    std::str::from_utf8(v).map_err(|e| format!("invalid UTF-8: {e}"))
}

/// A cursor over a binary value.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(format!(
                "value ends early: wanted {n} more bytes, {} left",
                self.buf.len()
            ));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(fixed(self.take(2)?)?))
    }

    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(fixed(self.take(4)?)?))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(fixed(self.take(8)?)?))
    }

    /// A length-prefixed field (`-1` = NULL).
    pub fn field(&mut self) -> Result<Option<&'a [u8]>> {
        let len = self.i32()?;
        if len < 0 {
            Ok(None)
        } else {
            self.take(len as usize).map(Some)
        }
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn end(&self) -> Result {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected trailing bytes", self.buf.len()))
        }
    }
}

// --- numeric -----------------------------------------------------------------------------

const NUMERIC_NEG: u16 = 0x4000;

/// A numeric in Postgres' base-10000 binary form.
pub struct Numeric<'a> {
    pub weight: i16,
    pub sign: u16,
    pub dscale: u16,
    /// Big-endian base-10000 digits, two bytes each.
    pub digits: &'a [u8],
}

/// NaN / ±Infinity, as `numeric_out` prints them.
pub fn numeric_special(sign: u16) -> Option<&'static str> {
    match sign {
        0xC000 => Some("NaN"),
        0xD000 => Some("Infinity"),
        0xF000 => Some("-Infinity"),
        _ => None,
    }
}

impl<'a> Numeric<'a> {
    pub fn parse(v: &'a [u8]) -> Result<Self> {
        if v.len() < 8 {
            return Err("numeric shorter than its header".into());
        }
        let ndigits = i16::from_be_bytes([v[0], v[1]]);
        let digits = &v[8..];
        if ndigits < 0 || digits.len() != ndigits as usize * 2 {
            return Err("numeric digit count does not match its length".into());
        }
        let n = Numeric {
            weight: i16::from_be_bytes([v[2], v[3]]),
            sign: u16::from_be_bytes([v[4], v[5]]),
            dscale: u16::from_be_bytes([v[6], v[7]]),
            digits,
        };
        if n.sign != 0 && n.sign != NUMERIC_NEG && numeric_special(n.sign).is_none() {
            return Err(format!("numeric with unknown sign word {:#06x}", n.sign));
        }
        Ok(n)
    }

    pub fn special(&self) -> Option<&'static str> {
        numeric_special(self.sign)
    }

    pub fn negative(&self) -> bool {
        self.sign == NUMERIC_NEG
    }

    fn digit(&self, i: i32) -> u16 {
        if i < 0 || (i as usize) * 2 >= self.digits.len() {
            0
        } else {
            let i = i as usize * 2;
            u16::from_be_bytes([self.digits[i], self.digits[i + 1]])
        }
    }
}

/// Binary numeric → its exact decimal text, as `numeric_out` prints it.
pub fn numeric_text(v: &[u8], out: &mut String) -> Result {
    let n = Numeric::parse(v)?;
    if let Some(s) = n.special() {
        out.push_str(s);
        return Ok(());
    }
    if n.negative() {
        out.push('-');
    }
    if n.weight < 0 {
        out.push('0');
    } else {
        for i in 0..=n.weight as i32 {
            let d = n.digit(i);
            if i == 0 {
                let _ = write!(out, "{d}");
            } else {
                let _ = write!(out, "{d:04}");
            }
        }
    }
    if n.dscale > 0 {
        out.push('.');
        let start = out.len();
        let mut i = n.weight as i32 + 1;
        while out.len() - start < n.dscale as usize {
            let _ = write!(out, "{:04}", n.digit(i));
            i += 1;
        }
        out.truncate(start + n.dscale as usize);
    }
    Ok(())
}

/// Binary numeric → unscaled integer at `scale` (digits beyond the scale are dropped: a
/// column with that scale never has them).
pub fn numeric_to_i128(v: &[u8], scale: i8) -> Result<i128> {
    let n = Numeric::parse(v)?;
    if let Some(s) = n.special() {
        return Err(format!(
            "{s} cannot be represented in numeric with a fixed scale \
             (Debezium's decimal_handling 'precise' has no value for it; \
             use decimal_handling 'string' or 'double')"
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
            d / 10i128.checked_pow((-exp) as u32).unwrap_or(i128::MAX)
        };
        acc = acc.checked_add(term).ok_or_else(overflow)?;
    }
    Ok(if n.negative() { -acc } else { acc })
}

// --- dates and times ---------------------------------------------------------------------

/// `YYYY-MM-DD`, with ` BC` for years before 1 (ISO DateStyle).
fn write_ymd(days_since_unix: i64, out: &mut String) -> bool {
    let (y, m, d) = civil_from_days(days_since_unix);
    let bc = y <= 0;
    let _ = write!(out, "{:04}-{m:02}-{d:02}", if bc { 1 - y } else { y });
    bc
}

/// A `date` value (days since 2000-01-01) as `date_out` prints it.
pub fn date_text(pg_days: i32, out: &mut String) {
    match pg_days {
        i32::MAX => out.push_str("infinity"),
        i32::MIN => out.push_str("-infinity"),
        d => {
            if write_ymd(d as i64 + PG_EPOCH_DAYS as i64, out) {
                out.push_str(" BC");
            }
        }
    }
}

/// `HH:MM:SS` plus the fraction with trailing zeros removed (none when zero).
pub fn write_time_of_day(micros: i64, out: &mut String) {
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    write_fraction(frac, out);
}

/// `.ffffff` without trailing zeros; nothing for zero.
fn write_fraction(mut frac: i64, out: &mut String) {
    if frac == 0 {
        return;
    }
    let mut width = 6;
    while frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    let _ = write!(out, ".{frac:0width$}");
}

/// A `timestamp` (µs since 2000-01-01) as `timestamp_out` prints it; with `utc_offset`, as
/// `timestamptz_out` does under `TimeZone` UTC (`+00`).
pub fn timestamp_text(pg_micros: i64, utc_offset: bool, out: &mut String) {
    match pg_micros {
        i64::MAX => out.push_str("infinity"),
        i64::MIN => out.push_str("-infinity"),
        t => {
            let us = t as i128 + PG_EPOCH_MICROS as i128;
            let days = us.div_euclid(86_400_000_000) as i64;
            let time = us.rem_euclid(86_400_000_000) as i64;
            let bc = write_ymd(days, out);
            out.push(' ');
            write_time_of_day(time, out);
            if utc_offset {
                out.push_str("+00");
            }
            if bc {
                out.push_str(" BC");
            }
        }
    }
}

/// Debezium's `ZonedTime` for a binary `timetz` (µs of the day, zone in seconds west of UTC):
/// the instant shifted to UTC, `HH:MM:SS[.fraction]Z` with Java's minimal fraction digits.
pub fn zoned_time(v: &[u8], out: &mut String) -> Result {
    let mut r = Reader::new(v);
    let micros = r.i64()?;
    let zone = r.i32()?;
    r.end()?;
    const DAY: i64 = 86_400_000_000;
    if micros == DAY && zone == 0 {
        // Debezium keeps Postgres' end-of-day boundary at UTC rather than wrapping it.
        out.push_str("24:00:00Z");
        return Ok(());
    }
    let utc = (micros + zone as i64 * 1_000_000).rem_euclid(DAY);
    write_time_of_day(utc, out);
    out.push('Z');
    Ok(())
}

// --- ranges ------------------------------------------------------------------------------

const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INC: u8 = 0x02;
const RANGE_UB_INC: u8 = 0x04;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;
const RANGE_LB_NULL: u8 = 0x20;
const RANGE_UB_NULL: u8 = 0x40;

/// A range as `range_out` prints it (bounds quoted as `range_bound_escape` does). `scratch`
/// holds a bound's text while it is checked for quoting.
pub fn range_text(v: &[u8], ty: RangeType, out: &mut String, scratch: &mut String) -> Result {
    let mut r = Reader::new(v);
    let flags = r.u8()?;
    if flags & RANGE_EMPTY != 0 {
        out.push_str("empty");
        return r.end();
    }
    out.push(if flags & RANGE_LB_INC != 0 { '[' } else { '(' });
    if flags & (RANGE_LB_INF | RANGE_LB_NULL) == 0 {
        let bound = r.field()?.ok_or("range with a NULL lower bound")?;
        range_bound(bound, ty, out, scratch)?;
    }
    out.push(',');
    if flags & (RANGE_UB_INF | RANGE_UB_NULL) == 0 {
        let bound = r.field()?.ok_or("range with a NULL upper bound")?;
        range_bound(bound, ty, out, scratch)?;
    }
    out.push(if flags & RANGE_UB_INC != 0 { ']' } else { ')' });
    r.end()
}

fn range_bound(v: &[u8], ty: RangeType, out: &mut String, scratch: &mut String) -> Result {
    scratch.clear();
    match ty {
        RangeType::Int4 => {
            let _ = write!(scratch, "{}", i32::from_be_bytes(exact(v)?));
        }
        RangeType::Int8 => {
            let _ = write!(scratch, "{}", i64::from_be_bytes(exact(v)?));
        }
        RangeType::Num => numeric_text(v, scratch)?,
        RangeType::Ts => timestamp_text(i64::from_be_bytes(exact(v)?), false, scratch),
        RangeType::Tstz => timestamp_text(i64::from_be_bytes(exact(v)?), true, scratch),
        RangeType::Date => date_text(i32::from_be_bytes(exact(v)?), scratch),
    }
    let quote = scratch.is_empty()
        || scratch.bytes().any(|b| {
            matches!(b, b'"' | b'\\' | b'(' | b')' | b'[' | b']' | b',') || b.is_ascii_whitespace()
        });
    if quote {
        out.push('"');
    }
    for c in scratch.chars() {
        if c == '"' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
    Ok(())
}

// --- network types -----------------------------------------------------------------------

const PGSQL_AF_INET: u8 = 2;
const PGSQL_AF_INET6: u8 = 3;

/// inet / cidr as `inet_out` / `cidr_out` print them (`pg_inet_net_ntop`): IPv4 with all four
/// octets, IPv6 with the longest run of zero words (two or more) as `::` and an embedded IPv4
/// address in dotted form; `/bits` unless the mask is full, always for cidr.
pub fn inet_text(v: &[u8], out: &mut String) -> Result {
    let mut r = Reader::new(v);
    let family = r.u8()?;
    let bits = r.u8()?;
    let is_cidr = r.u8()? != 0;
    let nb = r.u8()? as usize;
    let addr = r.take(nb)?;
    r.end()?;
    let max_bits = match (family, nb) {
        (PGSQL_AF_INET, 4) => {
            let _ = write!(out, "{}.{}.{}.{}", addr[0], addr[1], addr[2], addr[3]);
            32
        }
        (PGSQL_AF_INET6, 16) => {
            ipv6_text(addr, out);
            128
        }
        _ => return Err(format!("inet with family {family} and {nb} address bytes")),
    };
    if bits > max_bits {
        return Err(format!("inet with a {bits}-bit mask"));
    }
    if bits != max_bits || is_cidr {
        let _ = write!(out, "/{bits}");
    }
    Ok(())
}

fn ipv6_text(addr: &[u8], out: &mut String) {
    let mut words = [0u16; 8];
    for (i, w) in words.iter_mut().enumerate() {
        *w = u16::from_be_bytes([addr[2 * i], addr[2 * i + 1]]);
    }
    // The longest run of zero words (the first of equal ones), if at least two long.
    let (mut best_base, mut best_len) = (None, 0);
    let mut cur: Option<(usize, usize)> = None;
    for (i, w) in words.iter().enumerate() {
        if *w == 0 {
            cur = Some(cur.map_or((i, 1), |(b, l)| (b, l + 1)));
        } else if let Some((b, l)) = cur.take() {
            if best_base.is_none() || l > best_len {
                (best_base, best_len) = (Some(b), l);
            }
        }
    }
    if let Some((b, l)) = cur {
        if best_base.is_none() || l > best_len {
            (best_base, best_len) = (Some(b), l);
        }
    }
    if best_len < 2 {
        best_base = None;
    }
    let in_run = |i: usize| best_base.is_some_and(|b| i >= b && i < b + best_len);
    for i in 0..8 {
        if in_run(i) {
            if Some(i) == best_base {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        let embedded_v4 = i == 6
            && best_base == Some(0)
            && (best_len == 6
                || (best_len == 7 && words[7] != 1)
                || (best_len == 5 && words[5] == 0xffff));
        if embedded_v4 {
            let _ = write!(out, "{}.{}.{}.{}", addr[12], addr[13], addr[14], addr[15]);
            return;
        }
        let _ = write!(out, "{:x}", words[i]);
    }
    if best_base.is_some_and(|b| b + best_len == 8) {
        out.push(':');
    }
}

/// macaddr (6 bytes) and macaddr8 (8 bytes): lower-case hex pairs joined by `:`.
pub fn macaddr_text(v: &[u8], len: usize, out: &mut String) -> Result {
    if v.len() != len {
        return Err(format!("expected {len} bytes, got {}", v.len()));
    }
    for (i, b) in v.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
    Ok(())
}

// --- other text forms --------------------------------------------------------------------

/// A tsvector as `tsvectorout` prints it: `'lexeme':1A,2 'other'`, quotes and backslashes
/// inside a lexeme doubled, weight D not printed.
pub fn tsvector_text(v: &[u8], out: &mut String) -> Result {
    let mut r = Reader::new(v);
    let count = r.i32()?;
    for i in 0..count.max(0) {
        if i > 0 {
            out.push(' ');
        }
        let rest = r.rest();
        let nul = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or("tsvector lexeme without its terminator")?;
        let lexeme = utf8(r.take(nul)?)?;
        r.take(1)?;
        out.push('\'');
        for c in lexeme.chars() {
            if c == '\'' || c == '\\' {
                out.push(c);
            }
            out.push(c);
        }
        out.push('\'');
        let npos = r.i16()? as u16;
        for p in 0..npos {
            out.push(if p == 0 { ':' } else { ',' });
            let w = r.i16()? as u16;
            let _ = write!(out, "{}", w & 0x3fff);
            match w >> 14 {
                3 => out.push('A'),
                2 => out.push('B'),
                1 => out.push('C'),
                _ => {}
            }
        }
    }
    r.end()
}

/// A bit string (`bit`, `varbit`) as its `0`/`1` text, most significant bit first.
pub fn bits_text(v: &[u8], out: &mut String) -> Result {
    let mut r = Reader::new(v);
    let len = r.i32()?;
    if len < 0 {
        return Err("bit string with a negative length".into());
    }
    let bytes = r.take((len as usize).div_ceil(8))?;
    r.end()?;
    for i in 0..len as usize {
        out.push(if bytes[i / 8] & (0x80 >> (i % 8)) != 0 {
            '1'
        } else {
            '0'
        });
    }
    Ok(())
}

/// The `"char"` type as `charout` prints it: the byte itself, `\ooo` when its high bit is
/// set, nothing for a zero byte.
pub fn char_text(v: &[u8], out: &mut String) -> Result {
    let [b] = exact::<1>(v)?;
    if b >= 0x80 {
        let _ = write!(out, "\\{:03o}", b);
    } else if b != 0 {
        out.push(b as char);
    }
    Ok(())
}

/// A uuid in its canonical lower-case form.
pub fn uuid_text(v: &[u8], out: &mut String) -> Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let u: [u8; 16] = exact(v)?;
    // Every uuid of every row comes through here: hex digits by hand, not through `fmt`.
    out.reserve(36);
    for (i, byte) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_lowercase_hex_in_8_4_4_4_12() {
        let bytes: Vec<u8> = (0u8..16).map(|i| i * 17).collect();
        let mut out = String::new();
        uuid_text(&bytes, &mut out).unwrap();
        assert_eq!(out, "00112233-4455-6677-8899-aabbccddeeff");
        assert!(
            uuid_text(&bytes[..15], &mut out).is_err(),
            "15 bytes are not a uuid"
        );
    }

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

    fn text(f: impl FnOnce(&mut String)) -> String {
        let mut s = String::new();
        f(&mut s);
        s
    }

    #[test]
    fn numeric_binary_decodes() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        let v = numeric(1, 0, 3, &[1, 2345, 6780]);
        assert_eq!(numeric_to_i128(&v, 3).unwrap(), 12_345_678);
        assert_eq!(text(|s| numeric_text(&v, s).unwrap()), "12345.678");
        // -0.001 = [10], weight -1, dscale 3
        let v = numeric(-1, 0x4000, 3, &[10]);
        assert_eq!(numeric_to_i128(&v, 3).unwrap(), -1);
        assert_eq!(text(|s| numeric_text(&v, s).unwrap()), "-0.001");
        let v = numeric(0, 0, 2, &[]);
        assert_eq!(text(|s| numeric_text(&v, s).unwrap()), "0.00");
        assert_eq!(numeric_to_i128(&v, 2).unwrap(), 0);
        let v = numeric(1, 0, 0, &[1]);
        assert_eq!(text(|s| numeric_text(&v, s).unwrap()), "10000");
        let nan = numeric(0, 0xC000, 0, &[]);
        assert!(numeric_to_i128(&nan, 2).unwrap_err().contains("NaN"));
        assert_eq!(text(|s| numeric_text(&nan, s).unwrap()), "NaN");
        let inf = numeric(0, 0xF000, 0, &[]);
        assert_eq!(text(|s| numeric_text(&inf, s).unwrap()), "-Infinity");
        assert!(Numeric::parse(&numeric(0, 0x1234, 0, &[])).is_err());
        assert!(Numeric::parse(&[0, 1, 0, 0]).is_err());
    }

    #[test]
    fn dates_and_timestamps_print_like_iso_datestyle() {
        assert_eq!(text(|s| date_text(0, s)), "2000-01-01");
        assert_eq!(text(|s| date_text(i32::MAX, s)), "infinity");
        // 0044-03-15 BC is astronomical year -43.
        let bc = -(2000 + 43) * 365; // roughly; exact value checked against Postgres in tests/
        assert!(text(|s| date_text(bc, s)).ends_with(" BC"));
        assert_eq!(
            text(|s| timestamp_text(500_000, true, s)),
            "2000-01-01 00:00:00.5+00"
        );
        assert_eq!(
            text(|s| timestamp_text(-1, false, s)),
            "1999-12-31 23:59:59.999999"
        );
        assert_eq!(text(|s| timestamp_text(i64::MIN, true, s)), "-infinity");
    }

    #[test]
    fn timetz_is_shifted_to_utc() {
        let tz = |micros: i64, zone: i32| {
            let mut v = micros.to_be_bytes().to_vec();
            v.extend(zone.to_be_bytes());
            text(|s| zoned_time(&v, s).unwrap())
        };
        // 10:30:00.123456+02 → zone is seconds *west* of UTC: -7200.
        assert_eq!(tz(37_800_123_456, -7200), "08:30:00.123456Z");
        assert_eq!(tz(3_600_000_000, -7200), "23:00:00Z");
        assert_eq!(tz(1_500_000, 0), "00:00:01.5Z");
        assert_eq!(tz(86_400_000_000, 0), "24:00:00Z");
    }

    #[test]
    fn inet_forms() {
        let inet = |family: u8, bits: u8, cidr: u8, addr: &[u8]| {
            let mut v = vec![family, bits, cidr, addr.len() as u8];
            v.extend_from_slice(addr);
            text(|s| inet_text(&v, s).unwrap())
        };
        assert_eq!(inet(2, 32, 0, &[192, 168, 0, 1]), "192.168.0.1");
        assert_eq!(inet(2, 24, 0, &[192, 168, 0, 1]), "192.168.0.1/24");
        assert_eq!(inet(2, 32, 1, &[10, 0, 0, 1]), "10.0.0.1/32");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(inet(3, 128, 0, &v6), "::1");
        assert_eq!(inet(3, 128, 0, &[0; 16]), "::");
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4];
        assert_eq!(inet(3, 128, 0, &mapped), "::ffff:1.2.3.4");
        let doc = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        assert_eq!(inet(3, 64, 0, &doc), "2001:db8::1:0:0:1/64");
    }

    #[test]
    fn tsvector_and_bits() {
        let mut v = 2i32.to_be_bytes().to_vec();
        v.extend(b"it's\0");
        v.extend(2i16.to_be_bytes());
        v.extend(((3u16 << 14) | 1).to_be_bytes());
        v.extend(4u16.to_be_bytes());
        v.extend(b"b\0");
        v.extend(0i16.to_be_bytes());
        assert_eq!(text(|s| tsvector_text(&v, s).unwrap()), "'it''s':1A,4 'b'");
        let mut b = 10i32.to_be_bytes().to_vec();
        b.extend([0b1010_0000, 0b0100_0000]);
        assert_eq!(text(|s| bits_text(&b, s).unwrap()), "1010000001");
        assert_eq!(text(|s| char_text(&[0xe9], s).unwrap()), "\\351");
        assert_eq!(text(|s| char_text(&[0], s).unwrap()), "");
    }
}
