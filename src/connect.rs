//! The Kafka Connect data model, which is what Debezium's consumers actually depend on.
//!
//! Envelopes describe their key and value as a Connect [`Schema`] and hand over Arrow columns
//! whose physical types follow it. Encoders only know this model, never Postgres or Debezium;
//! that keeps envelopes and encodings independent. The Arrow form of each Connect type:
//!
//! | Connect | Arrow |
//! |---|---|
//! | BOOLEAN | `Boolean` |
//! | INT8 / INT16 / INT32 / INT64 | `Int8` / `Int16` / `Int32` / `Int64` |
//! | FLOAT32 / FLOAT64 | `Float32` / `Float64` |
//! | STRING | `Utf8` |
//! | BYTES | `Binary`, or `Decimal128` for a `Decimal` (the unscaled value; encoders write its minimal two's complement) |
//! | STRUCT | `Struct`, one child per field in schema order, same names |
//! | ARRAY | `List` (i32 offsets) of the item's Arrow form; a NULL element is a NULL in the child |
//! | MAP | `Map` with entries `{keys, values}` (keys non-null, not sorted), keys and values in their own Arrow forms |
//!
//! A NULL at any level is an Arrow NULL; a child of a NULL struct or list entry holds
//! placeholder values that encoders must not read.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum ConnectType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bytes,
    String,
    Array(Box<Schema>),
    /// Keys, values.
    Map(Box<Schema>, Box<Schema>),
    Struct(Vec<Field>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    String(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub ty: ConnectType,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    /// Insertion-ordered, as Connect's `SchemaBuilder` keeps them.
    pub parameters: Vec<(String, String)>,
    pub default: Option<DefaultValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
}

impl Field {
    pub fn new(name: impl Into<String>, schema: Schema) -> Self {
        Field {
            name: name.into(),
            schema,
        }
    }
}

impl Schema {
    pub fn new(ty: ConnectType) -> Self {
        Schema {
            ty,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: Vec::new(),
            default: None,
        }
    }

    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn version(mut self, v: i32) -> Self {
        self.version = Some(v);
        self
    }

    pub fn param(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.parameters.push((k.into(), v.into()));
        self
    }

    pub fn doc(mut self, d: impl Into<String>) -> Self {
        self.doc = Some(d.into());
        self
    }

    pub fn with_default(mut self, d: DefaultValue) -> Self {
        self.default = Some(d);
        self
    }

    pub fn fields(&self) -> &[Field] {
        match &self.ty {
            ConnectType::Struct(f) => f,
            _ => &[],
        }
    }

    /// The schema as Kafka Connect's `JsonConverter` writes it (`schemas.enable=true`):
    /// compact, keys in the converter's order (type, fields/items, optional, name, version,
    /// doc, parameters, default), `field` last for struct members.
    pub fn to_connect_json(&self) -> String {
        let mut out = String::new();
        self.write_connect_json(&mut out, None);
        out
    }

    fn write_connect_json(&self, out: &mut String, field: Option<&str>) {
        out.push_str("{\"type\":\"");
        out.push_str(match &self.ty {
            ConnectType::Boolean => "boolean",
            ConnectType::Int8 => "int8",
            ConnectType::Int16 => "int16",
            ConnectType::Int32 => "int32",
            ConnectType::Int64 => "int64",
            ConnectType::Float32 => "float",
            ConnectType::Float64 => "double",
            ConnectType::Bytes => "bytes",
            ConnectType::String => "string",
            ConnectType::Array(_) => "array",
            ConnectType::Map(_, _) => "map",
            ConnectType::Struct(_) => "struct",
        });
        out.push('"');
        match &self.ty {
            ConnectType::Struct(fields) => {
                out.push_str(",\"fields\":[");
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    f.schema.write_connect_json(out, Some(&f.name));
                }
                out.push(']');
            }
            ConnectType::Array(items) => {
                out.push_str(",\"items\":");
                items.write_connect_json(out, None);
            }
            ConnectType::Map(keys, values) => {
                out.push_str(",\"keys\":");
                keys.write_connect_json(out, None);
                out.push_str(",\"values\":");
                values.write_connect_json(out, None);
            }
            _ => {}
        }
        let _ = write!(out, ",\"optional\":{}", self.optional);
        if let Some(n) = &self.name {
            out.push_str(",\"name\":");
            json_string(out, n);
        }
        if let Some(v) = self.version {
            let _ = write!(out, ",\"version\":{v}");
        }
        if let Some(d) = &self.doc {
            out.push_str(",\"doc\":");
            json_string(out, d);
        }
        if !self.parameters.is_empty() {
            out.push_str(",\"parameters\":{");
            for (i, (k, v)) in self.parameters.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                json_string(out, v);
            }
            out.push('}');
        }
        if let Some(DefaultValue::String(d)) = &self.default {
            out.push_str(",\"default\":");
            json_string(out, d);
        }
        if let Some(f) = field {
            out.push_str(",\"field\":");
            json_string(out, f);
        }
        out.push('}');
    }
}

/// Append `s` as a JSON string literal, escaping as Jackson does (control characters as
/// `\uXXXX` except the common short forms).
pub fn json_string(out: &mut String, s: &str) {
    let mut buf = Vec::with_capacity(s.len() + 2);
    json_string_bytes(&mut buf, s);
    out.push_str(std::str::from_utf8(&buf).expect("escaped UTF-8 stays UTF-8"));
}

pub fn json_string_bytes(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_schema_matches_connect_json_converter() {
        let key = Schema::new(ConnectType::Struct(vec![Field::new(
            "id",
            Schema::new(ConnectType::Int32),
        )]))
        .named("dbserver1.public.orders.Key");
        assert_eq!(
            key.to_connect_json(),
            r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"dbserver1.public.orders.Key"}"#
        );
    }

    #[test]
    fn array_and_map_schemas_match_connect_json_converter() {
        let arr = Schema::new(ConnectType::Array(Box::new(
            Schema::new(ConnectType::Int32).optional(true),
        )))
        .optional(true);
        assert_eq!(
            arr.to_connect_json(),
            r#"{"type":"array","items":{"type":"int32","optional":true},"optional":true}"#
        );
        let map = Schema::new(ConnectType::Map(
            Box::new(Schema::new(ConnectType::String)),
            Box::new(Schema::new(ConnectType::String).optional(true)),
        ));
        assert_eq!(
            map.to_connect_json(),
            r#"{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"string","optional":true},"optional":false}"#
        );
    }

    #[test]
    fn escapes_control_characters() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
