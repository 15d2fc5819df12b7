//! Connect schema → Avro schema, as Confluent's `AvroData.fromConnectSchema` builds it under its
//! defaults (`connect.meta.data=true`, no enhanced schema support, no name scrubbing) and as
//! Avro Java's `Schema.toString()` prints it. AvroConverter registers exactly that string, so
//! producing it byte for byte lets cdcql share subjects, and schema ids, with a Debezium +
//! AvroConverter deployment. The rules are in shared/reference/debezium-format.md §4.

use std::fmt::Write;

use crate::connect::{json_string, ConnectType, DefaultValue, Field, Schema};

/// Where AvroData puts the records it has to invent names for.
const NAMESPACE: &str = "io.confluent.connect.avro";
const DEFAULT_RECORD: &str = "ConnectDefault";
const MAP_ENTRY: &str = "MapEntry";
const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
/// Connect's Decimal has no precision of its own; AvroData assumes this one.
const DEFAULT_DECIMAL_PRECISION: i64 = 64;
/// Avro type names: a named type may not be called like one, and a reference to a named type
/// that is spelled like one is always written in full (Avro's `Name.shouldWriteFull`).
const AVRO_TYPE_NAMES: &[&str] = &[
    "record", "enum", "array", "map", "union", "fixed", "string", "bytes", "int", "long", "float",
    "double", "boolean", "null",
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AvroSchemaError {
    #[error(
        "`{name}` is not a valid Avro {what}: Avro names are ASCII letters, digits and `_`, \
         and do not start with a digit"
    )]
    InvalidName { name: String, what: &'static str },
    #[error(
        "two different schemas are both named `{0}` (as Avro type names); an Avro schema can \
         define each name once"
    )]
    Redefined(String),
    #[error(
        "`{path}`: Decimal parameter `{param}` is {value:?}, not an integer: this is a bug in \
         cdcql, please report it"
    )]
    DecimalParameter {
        path: String,
        param: &'static str,
        value: Option<String>,
    },
    #[error(
        "`{path}`: a string default on a Connect {connect} schema: this is a bug in cdcql, \
         please report it"
    )]
    DefaultType { path: String, connect: &'static str },
}

/// An Avro schema built from a Connect schema: the compact text AvroConverter would register,
/// its parsed form, and the full name of the top-level record (for record-based subject names).
#[derive(Debug, Clone, PartialEq)]
pub struct AvroSchema {
    tree: Json,
    canonical: String,
    full_name: Option<String>,
}

impl AvroSchema {
    pub fn from_connect(schema: &Schema) -> Result<Self, AvroSchemaError> {
        let mut c = Converter::default();
        let tree = c.convert(schema, None, "")?;
        let mut canonical = String::new();
        tree.write_compact(&mut canonical);
        Ok(AvroSchema {
            tree,
            canonical,
            // Confluent's `AvroSchema.name()` of a union is "union": no record name then.
            full_name: c.top_name.filter(|_| !schema.optional),
        })
    }

    /// Compact JSON, keys in Avro Java's order: the text to register.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    pub fn to_json(&self) -> serde_json::Value {
        self.tree.to_value()
    }

    /// Indented, same key order; short objects stay on one line. For people (explain, snapshots).
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.tree.write_pretty(&mut out, 0);
        out
    }

    /// `namespace.name` of the top-level record, which `RecordNameStrategy` subjects are named
    /// after; `None` unless the schema is a required struct.
    pub fn full_name(&self) -> Option<&str> {
        self.full_name.as_deref()
    }
}

/// Which union branch holds null for an optional schema: `None` when the schema is required.
/// AvroData puts null first unless the schema has a default, because an Avro field default must
/// match the union's first branch; optional structs always get `["null", record]`.
pub(super) fn null_branch(schema: &Schema) -> Option<u8> {
    if !schema.optional {
        None
    } else if schema.default.is_some() && !matches!(schema.ty, ConnectType::Struct(_)) {
        Some(1)
    } else {
        Some(0)
    }
}

/// Validates that a default fits its schema the way Connect's `SchemaBuilder.defaultValue` does;
/// our defaults are strings, so only STRING schemas may have one.
pub(super) fn check_default(schema: &Schema, path: &str) -> Result<(), AvroSchemaError> {
    match (&schema.default, &schema.ty) {
        (None, _) | (Some(DefaultValue::String(_)), ConnectType::String) => Ok(()),
        (Some(DefaultValue::String(_)), ty) => Err(AvroSchemaError::DefaultType {
            path: path.to_string(),
            connect: connect_type_name(ty),
        }),
    }
}

pub(super) fn connect_type_name(ty: &ConnectType) -> &'static str {
    match ty {
        ConnectType::Boolean => "BOOLEAN",
        ConnectType::Int8 => "INT8",
        ConnectType::Int16 => "INT16",
        ConnectType::Int32 => "INT32",
        ConnectType::Int64 => "INT64",
        ConnectType::Float32 => "FLOAT32",
        ConnectType::Float64 => "FLOAT64",
        ConnectType::Bytes => "BYTES",
        ConnectType::String => "STRING",
        ConnectType::Array(_) => "ARRAY",
        ConnectType::Map(..) => "MAP",
        ConnectType::Struct(_) => "STRUCT",
    }
}

pub(super) fn is_decimal(schema: &Schema) -> bool {
    schema
        .name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case(DECIMAL))
}

/// The Connect Decimal's `scale` parameter, which every Decimal schema must have.
pub(super) fn decimal_scale(schema: &Schema, path: &str) -> Result<i64, AvroSchemaError> {
    decimal_param(schema, "scale", path)?.ok_or_else(|| AvroSchemaError::DecimalParameter {
        path: path.to_string(),
        param: "scale",
        value: None,
    })
}

fn decimal_param(
    schema: &Schema,
    param: &'static str,
    path: &str,
) -> Result<Option<i64>, AvroSchemaError> {
    match param_value(schema, param) {
        None => Ok(None),
        Some(v) => v.parse::<i32>().map(|v| Some(i64::from(v))).map_err(|_| {
            AvroSchemaError::DecimalParameter {
                path: path.to_string(),
                param,
                value: Some(v.to_string()),
            }
        }),
    }
}

fn param_value<'a>(schema: &'a Schema, key: &str) -> Option<&'a str> {
    schema
        .parameters
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Java's `LinkedHashMap` keeps the first insertion position when a key is set again.
fn unique_params(schema: &Schema) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(schema.parameters.len());
    for (k, v) in &schema.parameters {
        match out.iter_mut().find(|(ok, _)| *ok == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

fn default_json(d: &DefaultValue) -> Json {
    match d {
        DefaultValue::String(s) => Json::Str(s.clone()),
    }
}

/// `a.b.C` → (`a.b`, `C`); a name without a dot has no namespace.
fn split_name(full: &str) -> (Option<&str>, &str) {
    match full.rfind('.') {
        Some(i) => (Some(&full[..i]), &full[i + 1..]),
        None => (None, full),
    }
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_name(name: &str, what: &'static str) -> Result<(), AvroSchemaError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(AvroSchemaError::InvalidName {
            name: name.to_string(),
            what,
        })
    }
}

/// What an Avro named type was made from; a second use of the same name must come from an
/// equal source, and is then written as a reference (as Avro Java does for equal schemas).
#[derive(Debug)]
enum Source<'a> {
    Struct(Schema),
    MapEntry(&'a Schema, &'a Schema),
}

impl PartialEq for Source<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Source::Struct(a), Source::Struct(b)) => a == b,
            (Source::MapEntry(ak, av), Source::MapEntry(bk, bv)) => ak == bk && av == bv,
            _ => false,
        }
    }
}

#[derive(Default)]
struct Converter<'a> {
    defined: Vec<(String, Source<'a>)>,
    /// Unnamed structs get `ConnectDefault`, `ConnectDefault2`, ... in the order they appear.
    unnamed: u32,
    top_name: Option<String>,
}

impl<'a> Converter<'a> {
    /// `ns` is the namespace of the enclosing record, which decides how names are written.
    fn convert(
        &mut self,
        schema: &'a Schema,
        ns: Option<&str>,
        path: &str,
    ) -> Result<Json, AvroSchemaError> {
        check_default(schema, path)?;
        if let (true, ConnectType::Struct(fields)) = (schema.optional, &schema.ty) {
            let record = self.record(schema, fields, ns, path)?;
            return Ok(Json::Arr(vec![Json::str("null"), record]));
        }
        let base = self.base(schema, ns, path)?;
        Ok(optional_union(schema, base))
    }

    /// The schema without its optional union: the type and AvroData's `connect.*` properties.
    fn base(
        &mut self,
        schema: &'a Schema,
        ns: Option<&str>,
        path: &str,
    ) -> Result<Json, AvroSchemaError> {
        let (ty, mut entries, connect_type) = match &schema.ty {
            ConnectType::Struct(fields) => return self.record(schema, fields, ns, path),
            ConnectType::Map(k, v) => return self.map(schema, k, v, ns, path),
            ConnectType::Boolean => ("boolean", Vec::new(), None),
            ConnectType::Int8 => ("int", Vec::new(), Some("int8")),
            ConnectType::Int16 => ("int", Vec::new(), Some("int16")),
            ConnectType::Int32 => ("int", Vec::new(), None),
            ConnectType::Int64 => ("long", Vec::new(), None),
            ConnectType::Float32 => ("float", Vec::new(), None),
            ConnectType::Float64 => ("double", Vec::new(), None),
            ConnectType::String => ("string", Vec::new(), None),
            ConnectType::Bytes => {
                let mut entries = Vec::new();
                if is_decimal(schema) {
                    let scale = decimal_scale(schema, path)?;
                    let precision = decimal_param(schema, "connect.decimal.precision", path)?
                        .unwrap_or(DEFAULT_DECIMAL_PRECISION);
                    entries.push(("scale".to_string(), Json::Int(scale)));
                    entries.push(("precision".to_string(), Json::Int(precision)));
                }
                ("bytes", entries, None)
            }
            ConnectType::Array(items) => {
                let items = self.convert(items, ns, &format!("{path}[]"))?;
                ("array", vec![("items".to_string(), items)], None)
            }
        };
        entries.insert(0, ("type".to_string(), Json::str(ty)));
        push_connect_props(schema, connect_type, &mut entries);
        Ok(if entries.len() == 1 {
            Json::str(ty)
        } else {
            Json::Obj(entries)
        })
    }

    /// A Connect MAP without its optional union. Avro maps only have string keys, so AvroData
    /// writes other maps as an array of `{key, value}` records.
    fn map(
        &mut self,
        schema: &'a Schema,
        keys: &'a Schema,
        values: &'a Schema,
        ns: Option<&str>,
        path: &str,
    ) -> Result<Json, AvroSchemaError> {
        check_default(schema, path)?;
        let mut entries = if keys.ty == ConnectType::String && !keys.optional {
            vec![
                ("type".to_string(), Json::str("map")),
                (
                    "values".to_string(),
                    self.convert(values, ns, &format!("{path}{{}}"))?,
                ),
            ]
        } else {
            let (space, name) = match &schema.name {
                None => (Some(NAMESPACE), MAP_ENTRY),
                Some(n) => split_name(n),
            };
            let full = full_name(space, name);
            let source = Source::MapEntry(keys, values);
            let entry = if self.seen(&full, &source)? {
                Json::Str(qualified(space, name, ns))
            } else {
                check_record_name(space, name)?;
                self.defined.push((full, source));
                let mut rec = record_head(space, name, ns, None);
                let fields = vec![
                    self.field("key", keys, None, space, &format!("{path}{{key}}"))?,
                    self.field("value", values, None, space, &format!("{path}{{}}"))?,
                ];
                rec.push(("fields".to_string(), Json::Arr(fields)));
                if schema.name.is_some() {
                    rec.push(("connect.internal.type".to_string(), Json::str(MAP_ENTRY)));
                }
                Json::Obj(rec)
            };
            vec![
                ("type".to_string(), Json::str("array")),
                ("items".to_string(), entry),
            ]
        };
        push_connect_props(schema, None, &mut entries);
        Ok(Json::Obj(entries))
    }

    /// Whether `full` is already defined; an error when it was defined from something else.
    fn seen(&self, full: &str, source: &Source<'_>) -> Result<bool, AvroSchemaError> {
        match self.defined.iter().find(|(n, _)| n == full) {
            None => Ok(false),
            Some((_, s)) if s == source => Ok(true),
            Some(_) => Err(AvroSchemaError::Redefined(full.to_string())),
        }
    }

    fn record(
        &mut self,
        schema: &'a Schema,
        fields: &'a [Field],
        ns: Option<&str>,
        path: &str,
    ) -> Result<Json, AvroSchemaError> {
        let source = Source::Struct(schema.clone().optional(false));
        if let Some((full, _)) = self.defined.iter().find(|(_, s)| *s == source) {
            let (space, name) = split_name(full);
            return Ok(Json::Str(qualified(space, name, ns)));
        }
        let (space, name) = match &schema.name {
            Some(n) => {
                let (s, n) = split_name(n);
                (s.map(str::to_string), n.to_string())
            }
            None => {
                self.unnamed += 1;
                let name = match self.unnamed {
                    1 => DEFAULT_RECORD.to_string(),
                    i => format!("{DEFAULT_RECORD}{i}"),
                };
                (Some(NAMESPACE.to_string()), name)
            }
        };
        let full = full_name(space.as_deref(), &name);
        if self.seen(&full, &source)? {
            return Ok(Json::Str(qualified(space.as_deref(), &name, ns)));
        }
        check_record_name(space.as_deref(), &name)?;
        if path.is_empty() {
            self.top_name = Some(full.clone());
        }
        self.defined.push((full, source));

        let doc = param_value(schema, "io.confluent.connect.avro.record.doc");
        let mut rec = record_head(space.as_deref(), &name, ns, doc);
        let mut avro_fields = Vec::with_capacity(fields.len());
        for f in fields {
            check_name(&f.name, "field name")?;
            let doc = param_value(
                schema,
                &format!("io.confluent.connect.avro.field.doc.{}", f.name),
            );
            let field_path = if path.is_empty() {
                f.name.clone()
            } else {
                format!("{path}.{}", f.name)
            };
            avro_fields.push(self.field(&f.name, &f.schema, doc, space.as_deref(), &field_path)?);
        }
        rec.push(("fields".to_string(), Json::Arr(avro_fields)));
        push_connect_props(schema, None, &mut rec);
        Ok(Json::Obj(rec))
    }

    fn field(
        &mut self,
        name: &str,
        schema: &'a Schema,
        doc: Option<&str>,
        ns: Option<&str>,
        path: &str,
    ) -> Result<Json, AvroSchemaError> {
        let mut f = vec![
            ("name".to_string(), Json::str(name)),
            ("type".to_string(), self.convert(schema, ns, path)?),
        ];
        if let Some(d) = doc {
            f.push(("doc".to_string(), Json::str(d)));
        }
        // An optional struct is always `["null", record]`, where only a null default is valid;
        // Avro rejects any other and AvroData then leaves the field without one.
        let default = match (&schema.default, schema.optional) {
            (Some(d), _) if null_branch(schema) != Some(0) => Some(default_json(d)),
            (Some(_), true) => None,
            (None, true) => Some(Json::Null),
            (_, false) => None,
        };
        if let Some(d) = default {
            f.push(("default".to_string(), d));
        }
        Ok(Json::Obj(f))
    }
}

fn optional_union(schema: &Schema, base: Json) -> Json {
    match null_branch(schema) {
        None => base,
        Some(0) => Json::Arr(vec![Json::str("null"), base]),
        Some(_) => Json::Arr(vec![base, Json::str("null")]),
    }
}

fn full_name(space: Option<&str>, name: &str) -> String {
    match space {
        Some(s) => format!("{s}.{name}"),
        None => name.to_string(),
    }
}

fn check_record_name(space: Option<&str>, name: &str) -> Result<(), AvroSchemaError> {
    check_name(name, "record name")?;
    if space.is_none() && AVRO_TYPE_NAMES.contains(&name) {
        return Err(AvroSchemaError::InvalidName {
            name: name.to_string(),
            what: "record name (it is an Avro type name)",
        });
    }
    if let Some(s) = space {
        if !s.split('.').all(valid_name) {
            return Err(AvroSchemaError::InvalidName {
                name: s.to_string(),
                what: "namespace",
            });
        }
    }
    Ok(())
}

/// How Avro Java refers to an already defined type from inside namespace `ns`.
fn qualified(space: Option<&str>, name: &str, ns: Option<&str>) -> String {
    match space {
        Some(s) if Some(s) == ns && !AVRO_TYPE_NAMES.contains(&name) => name.to_string(),
        _ => full_name(space, name),
    }
}

/// `type`, `name`, and `namespace` when it differs from the enclosing one (an empty namespace
/// inside a non-empty one is written as `""`), then `doc`.
fn record_head(
    space: Option<&str>,
    name: &str,
    ns: Option<&str>,
    doc: Option<&str>,
) -> Vec<(String, Json)> {
    let mut rec = vec![
        ("type".to_string(), Json::str("record")),
        ("name".to_string(), Json::str(name)),
    ];
    match (space, ns) {
        (Some(s), _) if Some(s) != ns => rec.push(("namespace".to_string(), Json::str(s))),
        (None, Some(_)) => rec.push(("namespace".to_string(), Json::str(""))),
        _ => {}
    }
    if let Some(d) = doc {
        rec.push(("doc".to_string(), Json::str(d)));
    }
    rec
}

/// AvroData's metadata properties, in its order: `connect.doc`, `connect.version`,
/// `connect.parameters`, `connect.default`, `connect.name`, `connect.type`; then the Avro
/// logical type for Connect's Decimal/Date/Time/Timestamp, then parameters whose key starts
/// with `avro`, copied as properties.
fn push_connect_props(
    schema: &Schema,
    connect_type: Option<&str>,
    entries: &mut Vec<(String, Json)>,
) {
    if let Some(d) = &schema.doc {
        entries.push(("connect.doc".to_string(), Json::str(d)));
    }
    if let Some(v) = schema.version {
        entries.push(("connect.version".to_string(), Json::Int(i64::from(v))));
    }
    let params: Vec<(&str, &str)> = unique_params(schema)
        .into_iter()
        .filter(|(k, _)| *k != "io.confluent.connect.avro.field.default")
        .collect();
    if !params.is_empty() {
        entries.push((
            "connect.parameters".to_string(),
            Json::Obj(
                params
                    .iter()
                    .map(|(k, v)| (k.to_string(), Json::str(v)))
                    .collect(),
            ),
        ));
    }
    if let Some(d) = &schema.default {
        if param_value(schema, "io.confluent.connect.avro.field.default").is_none() {
            entries.push(("connect.default".to_string(), default_json(d)));
        }
    }
    if let Some(n) = &schema.name {
        entries.push(("connect.name".to_string(), Json::str(n)));
    }
    if let Some(t) = connect_type {
        entries.push(("connect.type".to_string(), Json::str(t)));
    }
    let logical = match schema.name.as_deref() {
        Some(n) if n.eq_ignore_ascii_case(DECIMAL) => Some("decimal"),
        Some(n) if n.eq_ignore_ascii_case("org.apache.kafka.connect.data.Date") => Some("date"),
        Some(n) if n.eq_ignore_ascii_case("org.apache.kafka.connect.data.Time") => {
            Some("time-millis")
        }
        Some(n) if n.eq_ignore_ascii_case("org.apache.kafka.connect.data.Timestamp") => {
            Some("timestamp-millis")
        }
        _ => None,
    };
    if let Some(l) = logical {
        entries.push(("logicalType".to_string(), Json::str(l)));
    }
    for (k, v) in unique_params(schema) {
        // Avro's addProp keeps the first value of a property.
        if k.starts_with("avro") && !entries.iter().any(|(e, _)| e == k) {
            entries.push((k.to_string(), Json::str(v)));
        }
    }
}

/// JSON with ordered object keys (serde_json's map sorts them without `preserve_order`).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn str(s: &str) -> Json {
        Json::Str(s.to_string())
    }

    /// Jackson's compact output, as Avro Java's `Schema.toString()` produces it.
    fn write_compact(&self, out: &mut String) {
        self.write_line(out, ",", ":");
    }

    fn write_line(&self, out: &mut String, comma: &str, colon: &str) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Str(s) => json_string(out, s),
            Json::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    v.write_line(out, comma, colon);
                }
                out.push(']');
            }
            Json::Obj(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    json_string(out, k);
                    out.push_str(colon);
                    v.write_line(out, comma, colon);
                }
                out.push('}');
            }
        }
    }

    fn write_pretty(&self, out: &mut String, indent: usize) {
        const WIDTH: usize = 100;
        let mut line = String::new();
        self.write_line(&mut line, ", ", ": ");
        let children = match self {
            Json::Arr(items) => items.len(),
            Json::Obj(entries) => entries.len(),
            _ => 0,
        };
        if children == 0 || 2 * indent + line.len() <= WIDTH {
            out.push_str(&line);
            return;
        }
        let pad = "  ".repeat(indent + 1);
        match self {
            Json::Arr(items) => {
                out.push_str("[\n");
                for (i, v) in items.iter().enumerate() {
                    out.push_str(&pad);
                    v.write_pretty(out, indent + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&"  ".repeat(indent));
                out.push(']');
            }
            Json::Obj(entries) => {
                out.push_str("{\n");
                for (i, (k, v)) in entries.iter().enumerate() {
                    out.push_str(&pad);
                    json_string(out, k);
                    out.push_str(": ");
                    v.write_pretty(out, indent + 1);
                    out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
                }
                out.push_str(&"  ".repeat(indent));
                out.push('}');
            }
            _ => unreachable!("scalars were written compactly above"),
        }
    }

    fn to_value(&self) -> serde_json::Value {
        match self {
            Json::Null => serde_json::Value::Null,
            Json::Int(i) => serde_json::Value::from(*i),
            Json::Str(s) => serde_json::Value::from(s.as_str()),
            Json::Arr(items) => {
                serde_json::Value::Array(items.iter().map(Json::to_value).collect())
            }
            Json::Obj(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::Field;

    fn avro(schema: &Schema) -> String {
        AvroSchema::from_connect(schema)
            .unwrap()
            .canonical()
            .to_string()
    }

    fn s(ty: ConnectType) -> Schema {
        Schema::new(ty)
    }

    fn parses(text: &str) {
        apache_avro::Schema::parse_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    }

    #[test]
    fn primitives_and_connect_type_annotations() {
        let schema = s(ConnectType::Struct(vec![
            Field::new("a", s(ConnectType::Int8)),
            Field::new("b", s(ConnectType::Int16).optional(true)),
            Field::new("c", s(ConnectType::Float32)),
            Field::new("d", s(ConnectType::Boolean).optional(true)),
        ]))
        .named("x.R");
        let text = avro(&schema);
        assert_eq!(
            text,
            r#"{"type":"record","name":"R","namespace":"x","fields":[{"name":"a","type":{"type":"int","connect.type":"int8"}},{"name":"b","type":["null",{"type":"int","connect.type":"int16"}],"default":null},{"name":"c","type":"float"},{"name":"d","type":["null","boolean"],"default":null}],"connect.name":"x.R"}"#
        );
        parses(&text);
    }

    #[test]
    fn a_default_puts_null_second_and_becomes_the_field_default() {
        let schema = s(ConnectType::Struct(vec![Field::new(
            "snapshot",
            s(ConnectType::String)
                .optional(true)
                .named("io.debezium.data.Enum")
                .version(1)
                .param("allowed", "true,false")
                .with_default(DefaultValue::String("false".into())),
        )]))
        .named("R");
        let text = avro(&schema);
        assert_eq!(
            text,
            r#"{"type":"record","name":"R","fields":[{"name":"snapshot","type":[{"type":"string","connect.version":1,"connect.parameters":{"allowed":"true,false"},"connect.default":"false","connect.name":"io.debezium.data.Enum"},"null"],"default":"false"}],"connect.name":"R"}"#
        );
        parses(&text);
    }

    #[test]
    fn decimal_precision_comes_from_the_parameter_or_is_64() {
        let dec = |params: &[(&str, &str)]| {
            let mut d = s(ConnectType::Bytes).named(DECIMAL).version(1);
            for (k, v) in params {
                d = d.param(*k, *v);
            }
            avro(&s(ConnectType::Struct(vec![Field::new("m", d)])))
        };
        let with = dec(&[("scale", "2"), ("connect.decimal.precision", "10")]);
        assert!(with.contains(r#"{"type":"bytes","scale":2,"precision":10,"connect.version":1,"connect.parameters":{"scale":"2","connect.decimal.precision":"10"},"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}"#), "{with}");
        let money = dec(&[("scale", "2")]);
        assert!(
            money.contains(r#""scale":2,"precision":64,"#),
            "money has no precision parameter: {money}"
        );
        assert!(
            money.ends_with(r#""logicalType":"decimal"}}]}"#),
            "an unnamed record has no connect.name: {money}"
        );
        parses(&with);
        parses(&money);
        let bad = AvroSchema::from_connect(&s(ConnectType::Struct(vec![Field::new(
            "m",
            s(ConnectType::Bytes).named(DECIMAL),
        )])));
        assert!(matches!(
            bad,
            Err(AvroSchemaError::DecimalParameter { param: "scale", .. })
        ));
    }

    #[test]
    fn unnamed_structs_get_numbered_default_names_and_equal_ones_are_shared() {
        let inner = |t| s(ConnectType::Struct(vec![Field::new("v", s(t))]));
        let schema = s(ConnectType::Struct(vec![
            Field::new("a", inner(ConnectType::Int32)),
            Field::new("b", inner(ConnectType::Int32).optional(true)),
            Field::new("c", inner(ConnectType::String)),
        ]));
        let text = avro(&schema);
        assert_eq!(
            text,
            r#"{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[{"name":"a","type":{"type":"record","name":"ConnectDefault2","fields":[{"name":"v","type":"int"}]}},{"name":"b","type":["null","ConnectDefault2"],"default":null},{"name":"c","type":{"type":"record","name":"ConnectDefault3","fields":[{"name":"v","type":"string"}]}}]}"#
        );
        parses(&text);
    }

    #[test]
    fn references_and_namespaces_follow_avro_java() {
        let leaf = s(ConnectType::Struct(vec![Field::new(
            "v",
            s(ConnectType::Int32),
        )]))
        .named("other.Leaf");
        let bare = s(ConnectType::Struct(vec![Field::new(
            "w",
            s(ConnectType::Int32),
        )]))
        .named("Bare");
        let schema = s(ConnectType::Struct(vec![
            Field::new("a", leaf.clone()),
            Field::new("b", leaf.clone().optional(true)),
            Field::new("c", bare),
            Field::new(
                "d",
                s(ConnectType::Array(Box::new(leaf.optional(true)))).optional(true),
            ),
        ]))
        .named("top.Rec");
        let text = avro(&schema);
        assert_eq!(
            text,
            r#"{"type":"record","name":"Rec","namespace":"top","fields":[{"name":"a","type":{"type":"record","name":"Leaf","namespace":"other","fields":[{"name":"v","type":"int"}],"connect.name":"other.Leaf"}},{"name":"b","type":["null","other.Leaf"],"default":null},{"name":"c","type":{"type":"record","name":"Bare","namespace":"","fields":[{"name":"w","type":"int"}],"connect.name":"Bare"}},{"name":"d","type":["null",{"type":"array","items":["null","other.Leaf"]}],"default":null}],"connect.name":"top.Rec"}"#
        );
        parses(&text);
        let parsed = AvroSchema::from_connect(&schema).unwrap();
        assert_eq!(parsed.full_name(), Some("top.Rec"));
    }

    #[test]
    fn same_name_different_content_is_an_error() {
        let a = s(ConnectType::Struct(vec![Field::new(
            "v",
            s(ConnectType::Int32),
        )]))
        .named("n.X");
        let b = s(ConnectType::Struct(vec![Field::new(
            "v",
            s(ConnectType::Int64),
        )]))
        .named("n.X");
        let schema = s(ConnectType::Struct(vec![
            Field::new("a", a),
            Field::new("b", b),
        ]));
        assert_eq!(
            AvroSchema::from_connect(&schema),
            Err(AvroSchemaError::Redefined("n.X".into()))
        );
    }

    #[test]
    fn invalid_names_are_errors() {
        let schema = s(ConnectType::Struct(vec![Field::new(
            "a b",
            s(ConnectType::Int32),
        )]));
        assert!(matches!(
            AvroSchema::from_connect(&schema),
            Err(AvroSchemaError::InvalidName { .. })
        ));
        let schema = s(ConnectType::Struct(vec![])).named("db.public.order-items.Value");
        assert!(matches!(
            AvroSchema::from_connect(&schema),
            Err(AvroSchemaError::InvalidName {
                what: "namespace",
                ..
            })
        ));
    }

    #[test]
    fn docs_logical_types_and_avro_parameters() {
        let schema = s(ConnectType::Struct(vec![
            Field::new(
                "d",
                s(ConnectType::Int32)
                    .named("org.apache.kafka.connect.data.Date")
                    .version(1),
            ),
            Field::new(
                "t",
                s(ConnectType::Int64)
                    .named("org.apache.kafka.connect.data.Timestamp")
                    .version(1)
                    .optional(true),
            ),
            Field::new(
                "vsd",
                s(ConnectType::Struct(vec![
                    Field::new("scale", s(ConnectType::Int32)),
                    Field::new("value", s(ConnectType::Bytes)),
                ]))
                .named("io.debezium.data.VariableScaleDecimal")
                .version(1)
                .doc("Variable scaled decimal"),
            ),
        ]))
        .named("r.R")
        .param("io.confluent.connect.avro.record.doc", "a record")
        .param("io.confluent.connect.avro.field.doc.d", "a day")
        .param("avro.java.string", "String");
        let text = avro(&schema);
        assert_eq!(
            text,
            r#"{"type":"record","name":"R","namespace":"r","doc":"a record","fields":[{"name":"d","type":{"type":"int","connect.version":1,"connect.name":"org.apache.kafka.connect.data.Date","logicalType":"date"},"doc":"a day"},{"name":"t","type":["null",{"type":"long","connect.version":1,"connect.name":"org.apache.kafka.connect.data.Timestamp","logicalType":"timestamp-millis"}],"default":null},{"name":"vsd","type":{"type":"record","name":"VariableScaleDecimal","namespace":"io.debezium.data","fields":[{"name":"scale","type":"int"},{"name":"value","type":"bytes"}],"connect.doc":"Variable scaled decimal","connect.version":1,"connect.name":"io.debezium.data.VariableScaleDecimal"}}],"connect.parameters":{"io.confluent.connect.avro.record.doc":"a record","io.confluent.connect.avro.field.doc.d":"a day","avro.java.string":"String"},"connect.name":"r.R","avro.java.string":"String"}"#
        );
        parses(&text);
    }

    #[test]
    fn maps_with_string_keys_are_avro_maps_others_are_entry_arrays() {
        let f64s = s(ConnectType::Float64);
        let strings = s(ConnectType::String);
        let shorts = s(ConnectType::Int16);
        let hstore = s(ConnectType::Int32).optional(true); // the map schema itself
        let mut c = Converter::default();
        let json = optional_union(
            &hstore,
            c.map(&hstore, &strings, &strings, Some("n"), "m").unwrap(),
        );
        let mut text = String::new();
        json.write_compact(&mut text);
        assert_eq!(text, r#"["null",{"type":"map","values":"string"}]"#);

        let sparse = s(ConnectType::Int32);
        let mut c = Converter::default();
        let first = c.map(&sparse, &shorts, &f64s, Some("n"), "m").unwrap();
        let again = c.map(&sparse, &shorts, &f64s, Some("n"), "m2").unwrap();
        let (mut a, mut b) = (String::new(), String::new());
        first.write_compact(&mut a);
        again.write_compact(&mut b);
        assert_eq!(
            a,
            r#"{"type":"array","items":{"type":"record","name":"MapEntry","namespace":"io.confluent.connect.avro","fields":[{"name":"key","type":{"type":"int","connect.type":"int16"}},{"name":"value","type":"double"}]}}"#
        );
        assert_eq!(
            b,
            r#"{"type":"array","items":"io.confluent.connect.avro.MapEntry"}"#
        );
        let other = c.map(&sparse, &shorts, &strings, Some("n"), "m3");
        assert!(matches!(other, Err(AvroSchemaError::Redefined(_))));
        // The whole thing is a valid Avro schema.
        parses(&format!(
            r#"{{"type":"record","name":"R","namespace":"n","fields":[{{"name":"m","type":{a}}},{{"name":"m2","type":{b}}}]}}"#
        ));
    }

    #[test]
    fn pretty_form_is_the_same_json() {
        let schema = s(ConnectType::Struct(
            (0..12)
                .map(|i| Field::new(format!("field_{i}"), s(ConnectType::Int64).optional(true)))
                .collect(),
        ))
        .named("a.B");
        let a = AvroSchema::from_connect(&schema).unwrap();
        let pretty: serde_json::Value = serde_json::from_str(&a.to_pretty()).unwrap();
        assert_eq!(pretty, a.to_json());
        assert!(a.to_pretty().lines().count() > 12);
    }
}
