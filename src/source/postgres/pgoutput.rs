//! Decoding of `pgoutput` (protocol version 1) logical replication messages.
//!
//! The transport (`pgwire-replication`) already splits out Begin, Commit and logical
//! messages; everything else arrives here as raw `XLogData` payloads. Values are kept as
//! slices of the received buffer (`Bytes`), so decoding a change copies nothing; the column
//! decoders turn them into Arrow later, a batch at a time.

use bytes::{Buf, Bytes};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed pgoutput message ({what}); this is a bug in cdcql or an unsupported server")]
pub struct DecodeError {
    pub what: String,
}

fn err(what: impl Into<String>) -> DecodeError {
    DecodeError { what: what.into() }
}

/// A table's shape as the server announces it before the first change that uses it (and
/// again after any schema change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub namespace: String,
    pub name: String,
    /// `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<RelationColumn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key sent with updates and deletes).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub typmod: i32,
}

/// One column's value in a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A TOASTed value the update did not change; the server does not resend it.
    UnchangedToast,
    Text(Bytes),
    Binary(Bytes),
}

pub type Tuple = Vec<Value>;

/// Which old image an update or delete carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldImage {
    /// Only the replica identity columns (others are `Null`).
    Key,
    /// Every column (REPLICA IDENTITY FULL).
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Relation(Relation),
    /// A user-defined type's name, sent before a Relation that uses it.
    Type {
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        relation: u32,
        new: Tuple,
    },
    Update {
        relation: u32,
        old: Option<(OldImage, Tuple)>,
        new: Tuple,
    },
    Delete {
        relation: u32,
        old: (OldImage, Tuple),
    },
    Truncate {
        relations: Vec<u32>,
        cascade: bool,
        restart_identity: bool,
    },
    Origin {
        lsn: u64,
        name: String,
    },
    /// Begin, Commit, logical messages and anything newer: handled by the transport or ignored.
    Other(u8),
}

/// Decode one XLogData payload.
pub fn decode(mut data: Bytes) -> Result<Message, DecodeError> {
    if data.is_empty() {
        return Err(err("empty message"));
    }
    let tag = data.get_u8();
    let msg = match tag {
        b'R' => {
            let id = u32_(&mut data)?;
            let namespace = cstr(&mut data)?;
            let name = cstr(&mut data)?;
            let replica_identity = u8_(&mut data)?;
            let n = u16_(&mut data)? as usize;
            let mut columns = Vec::with_capacity(n);
            for _ in 0..n {
                let flags = u8_(&mut data)?;
                let name = cstr(&mut data)?;
                let type_oid = u32_(&mut data)?;
                let typmod = u32_(&mut data)? as i32;
                columns.push(RelationColumn {
                    key: flags & 1 == 1,
                    name,
                    type_oid,
                    typmod,
                });
            }
            Message::Relation(Relation {
                id,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'Y' => Message::Type {
            oid: u32_(&mut data)?,
            namespace: cstr(&mut data)?,
            name: cstr(&mut data)?,
        },
        b'I' => {
            let relation = u32_(&mut data)?;
            expect(&mut data, b'N')?;
            Message::Insert {
                relation,
                new: tuple(&mut data)?,
            }
        }
        b'U' => {
            let relation = u32_(&mut data)?;
            let mut kind = u8_(&mut data)?;
            let old = match kind {
                b'K' | b'O' => {
                    let image = if kind == b'K' {
                        OldImage::Key
                    } else {
                        OldImage::Full
                    };
                    let t = tuple(&mut data)?;
                    kind = u8_(&mut data)?;
                    Some((image, t))
                }
                _ => None,
            };
            if kind != b'N' {
                return Err(err(format!("update without new tuple (got {kind:#x})")));
            }
            Message::Update {
                relation,
                old,
                new: tuple(&mut data)?,
            }
        }
        b'D' => {
            let relation = u32_(&mut data)?;
            let image = match u8_(&mut data)? {
                b'K' => OldImage::Key,
                b'O' => OldImage::Full,
                other => return Err(err(format!("delete with tuple kind {other:#x}"))),
            };
            Message::Delete {
                relation,
                old: (image, tuple(&mut data)?),
            }
        }
        b'T' => {
            let n = u32_(&mut data)? as usize;
            let options = u8_(&mut data)?;
            let mut relations = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                relations.push(u32_(&mut data)?);
            }
            Message::Truncate {
                relations,
                cascade: options & 1 != 0,
                restart_identity: options & 2 != 0,
            }
        }
        b'O' => Message::Origin {
            lsn: u64_(&mut data)?,
            name: cstr(&mut data)?,
        },
        other => Message::Other(other),
    };
    Ok(msg)
}

fn tuple(data: &mut Bytes) -> Result<Tuple, DecodeError> {
    let n = u16_(data)? as usize;
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        let v = match u8_(data)? {
            b'n' => Value::Null,
            b'u' => Value::UnchangedToast,
            kind @ (b't' | b'b') => {
                let len = u32_(data)? as usize;
                if data.remaining() < len {
                    return Err(err("value longer than the message"));
                }
                let bytes = data.split_to(len);
                if kind == b't' {
                    Value::Text(bytes)
                } else {
                    Value::Binary(bytes)
                }
            }
            other => return Err(err(format!("tuple value kind {other:#x}"))),
        };
        values.push(v);
    }
    Ok(values)
}

fn expect(data: &mut Bytes, want: u8) -> Result<(), DecodeError> {
    let got = u8_(data)?;
    if got != want {
        return Err(err(format!(
            "expected {:?}, got {:?}",
            want as char, got as char
        )));
    }
    Ok(())
}

/// Read a fixed-size big-endian integer, or fail on a truncated message.
fn fixed<T>(data: &mut Bytes, size: usize, read: fn(&mut Bytes) -> T) -> Result<T, DecodeError> {
    if data.remaining() < size {
        return Err(err("truncated"));
    }
    Ok(read(data))
}

fn u8_(data: &mut Bytes) -> Result<u8, DecodeError> {
    fixed(data, 1, |d| d.get_u8())
}

fn u16_(data: &mut Bytes) -> Result<u16, DecodeError> {
    fixed(data, 2, |d| d.get_u16())
}

fn u32_(data: &mut Bytes) -> Result<u32, DecodeError> {
    fixed(data, 4, |d| d.get_u32())
}

fn u64_(data: &mut Bytes) -> Result<u64, DecodeError> {
    fixed(data, 8, |d| d.get_u64())
}

fn cstr(data: &mut Bytes) -> Result<String, DecodeError> {
    let end = data
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| err("unterminated string"))?;
    let s = String::from_utf8_lossy(&data[..end]).into_owned();
    data.advance(end + 1);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation_bytes() -> Vec<u8> {
        let mut b = vec![b'R'];
        b.extend(16384u32.to_be_bytes());
        b.extend(b"public\0orders\0");
        b.push(b'f');
        b.extend(2u16.to_be_bytes());
        b.push(1);
        b.extend(b"id\0");
        b.extend(23u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.push(0);
        b.extend(b"note\0");
        b.extend(25u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b
    }

    #[test]
    fn decodes_relation() {
        let m = decode(Bytes::from(relation_bytes())).unwrap();
        let Message::Relation(r) = m else {
            panic!("not a relation: {m:?}")
        };
        assert_eq!(
            (r.id, r.namespace.as_str(), r.name.as_str()),
            (16384, "public", "orders")
        );
        assert_eq!(r.replica_identity, b'f');
        assert_eq!(r.columns.len(), 2);
        assert!(r.columns[0].key && !r.columns[1].key);
        assert_eq!(r.columns[1].type_oid, 25);
        assert_eq!(r.columns[1].typmod, -1);
    }

    #[test]
    fn decodes_update_with_old_image_and_unchanged_toast() {
        let mut b = vec![b'U'];
        b.extend(16384u32.to_be_bytes());
        b.push(b'O');
        b.extend(2u16.to_be_bytes());
        b.push(b'b');
        b.extend(4u32.to_be_bytes());
        b.extend(7i32.to_be_bytes());
        b.push(b'n');
        b.push(b'N');
        b.extend(2u16.to_be_bytes());
        b.push(b'b');
        b.extend(4u32.to_be_bytes());
        b.extend(8i32.to_be_bytes());
        b.push(b'u');
        let m = decode(Bytes::from(b)).unwrap();
        assert_eq!(
            m,
            Message::Update {
                relation: 16384,
                old: Some((
                    OldImage::Full,
                    vec![
                        Value::Binary(Bytes::from_static(&[0, 0, 0, 7])),
                        Value::Null
                    ]
                )),
                new: vec![
                    Value::Binary(Bytes::from_static(&[0, 0, 0, 8])),
                    Value::UnchangedToast
                ],
            }
        );
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let full = relation_bytes();
        for cut in 1..full.len() {
            assert!(
                decode(Bytes::copy_from_slice(&full[..cut])).is_err(),
                "cut at {cut}"
            );
        }
        let mut insert = vec![b'I'];
        insert.extend(1u32.to_be_bytes());
        insert.push(b'N');
        insert.extend(1u16.to_be_bytes());
        insert.push(b't');
        insert.extend(100u32.to_be_bytes());
        insert.extend(b"short");
        assert!(decode(Bytes::from(insert)).is_err());
    }

    #[test]
    fn decodes_delete_and_truncate() {
        let mut d = vec![b'D'];
        d.extend(5u32.to_be_bytes());
        d.push(b'K');
        d.extend(1u16.to_be_bytes());
        d.push(b't');
        d.extend(1u32.to_be_bytes());
        d.push(b'9');
        assert_eq!(
            decode(Bytes::from(d)).unwrap(),
            Message::Delete {
                relation: 5,
                old: (OldImage::Key, vec![Value::Text(Bytes::from_static(b"9"))])
            }
        );
        let mut t = vec![b'T'];
        t.extend(2u32.to_be_bytes());
        t.push(1);
        t.extend(5u32.to_be_bytes());
        t.extend(6u32.to_be_bytes());
        assert_eq!(
            decode(Bytes::from(t)).unwrap(),
            Message::Truncate {
                relations: vec![5, 6],
                cascade: true,
                restart_identity: false
            }
        );
    }
}
