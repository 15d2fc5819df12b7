//! Avro binary bodies straight from Arrow columns. A [`Shape`] tree is compiled once per encoder
//! from the Connect schema (union branch bytes, pre-encoded defaults, what each node expects);
//! each batch binds it to downcast arrays ([`Column`]) and writes rows with no allocation.
//! The encoding follows the Avro spec: zig-zag varints, length-prefixed bytes and strings,
//! records as their fields in order, arrays and maps as one counted block and a 0 terminator
//! (what Avro Java's `BinaryEncoder` writes).

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryViewArray, BooleanArray, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, LargeBinaryArray, LargeListArray,
    LargeStringArray, ListArray, MapArray, StringArray, StringViewArray, StructArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::DataType;

use super::schema::{check_default, connect_type_name, decimal_scale, is_decimal, null_branch};
use crate::connect::{ConnectType, DefaultValue, Schema};
use crate::encode::json::minimal_twos_complement;
use crate::encode::EncodeError;

/// The Avro form of one Connect node, independent of any batch.
#[derive(Debug, Clone)]
pub(super) struct Shape {
    /// Where the node sits (`after.amount`, `tags[]`), for error messages.
    path: String,
    /// Zig-zag bytes of the union branches when the node is optional: (value, null).
    branches: Option<(u8, u8)>,
    /// Avro body of the Connect default, written for a null as Connect's `Struct.get` does.
    /// Only struct fields use it; array items and map values are written as they are.
    default: Option<Vec<u8>>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    /// `scale` is set for Connect Decimals: a Decimal128 column must have that scale.
    Bytes {
        scale: Option<i8>,
    },
    Record(Vec<Shape>),
    Array(Box<Shape>),
    /// String-keyed maps (Avro maps) and the others (arrays of key/value records) have the same
    /// binary form: a block of key, value, key, value...
    #[allow(dead_code)] // built once ConnectType has MAP (types branch); tested directly
    Map(Box<Shape>, Box<Shape>),
}

fn branch_bytes(null_branch: u8) -> (u8, u8) {
    // Zig-zag of 0 is 0x00, of 1 is 0x02.
    if null_branch == 0 {
        (2, 0)
    } else {
        (0, 2)
    }
}

impl Shape {
    /// `field`: the node is a struct field, where a null is replaced by the schema's default.
    pub(super) fn compile(
        schema: &Schema,
        path: String,
        field: bool,
    ) -> Result<Shape, EncodeError> {
        check_default(schema, &path)?;
        if let ConnectType::Map(keys, values) = &schema.ty {
            return Shape::compile_map(schema, keys, values, path);
        }
        let kind = match &schema.ty {
            ConnectType::Map(..) => unreachable!("handled above"),
            ConnectType::Boolean => Kind::Boolean,
            ConnectType::Int8 => Kind::Int8,
            ConnectType::Int16 => Kind::Int16,
            ConnectType::Int32 => Kind::Int32,
            ConnectType::Int64 => Kind::Int64,
            ConnectType::Float32 => Kind::Float32,
            ConnectType::Float64 => Kind::Float64,
            ConnectType::String => Kind::String,
            ConnectType::Bytes => Kind::Bytes {
                scale: if is_decimal(schema) {
                    let s = decimal_scale(schema, &path)?;
                    Some(i8::try_from(s).map_err(|_| EncodeError::TypeMismatch {
                        arrow: "Decimal128".into(),
                        connect: format!("Decimal with scale {s} at `{path}`"),
                    })?)
                } else {
                    None
                },
            },
            ConnectType::Struct(fields) => Kind::Record(
                fields
                    .iter()
                    .map(|f| {
                        let p = if path.is_empty() {
                            f.name.clone()
                        } else {
                            format!("{path}.{}", f.name)
                        };
                        Shape::compile(&f.schema, p, true)
                    })
                    .collect::<Result<_, _>>()?,
            ),
            ConnectType::Array(items) => {
                Kind::Array(Box::new(Shape::compile(items, format!("{path}[]"), false)?))
            }
        };
        let default = match (&schema.default, field) {
            (Some(DefaultValue::String(s)), true) => {
                let mut b = Vec::with_capacity(s.len() + 2);
                write_bytes(&mut b, s.as_bytes());
                Some(b)
            }
            _ => None,
        };
        Ok(Shape {
            path,
            branches: null_branch(schema).map(branch_bytes),
            default,
            kind,
        })
    }

    pub(super) fn compile_map(
        schema: &Schema,
        keys: &Schema,
        values: &Schema,
        path: String,
    ) -> Result<Shape, EncodeError> {
        check_default(schema, &path)?;
        Ok(Shape {
            branches: null_branch(schema).map(branch_bytes),
            default: None,
            kind: Kind::Map(
                Box::new(Shape::compile(keys, format!("{path}{{key}}"), false)?),
                Box::new(Shape::compile(values, format!("{path}{{}}"), false)?),
            ),
            path,
        })
    }

    fn describe(&self) -> String {
        let what = match &self.kind {
            Kind::Boolean => "BOOLEAN".to_string(),
            Kind::Int8 => "INT8".into(),
            Kind::Int16 => "INT16".into(),
            Kind::Int32 => "INT32".into(),
            Kind::Int64 => "INT64".into(),
            Kind::Float32 => "FLOAT32".into(),
            Kind::Float64 => "FLOAT64".into(),
            Kind::String => "STRING".into(),
            Kind::Bytes { scale: Some(s) } => format!("Decimal(scale {s})"),
            Kind::Bytes { scale: None } => "BYTES".into(),
            Kind::Record(_) => "STRUCT".into(),
            Kind::Array(_) => "ARRAY".into(),
            Kind::Map(..) => "MAP".into(),
        };
        format!("{what} at `{}`", self.path)
    }
}

/// The top level of a key or value: a record, possibly in a `["null", record]` union.
#[derive(Debug, Clone)]
pub(super) struct TopShape {
    pub(super) fields: Vec<Shape>,
    /// Union branch written before the fields when the top-level schema is optional.
    pub(super) branch: Option<u8>,
}

impl TopShape {
    pub(super) fn compile(schema: &Schema) -> Result<TopShape, EncodeError> {
        let shape = Shape::compile(schema, String::new(), false)?;
        match shape.kind {
            Kind::Record(fields) => Ok(TopShape {
                fields,
                branch: shape.branches.map(|(value, _)| value),
            }),
            _ => Err(EncodeError::NotAStruct(connect_type_name(&schema.ty))),
        }
    }
}

/// A shape bound to one batch's array.
pub(super) struct Column<'a> {
    shape: &'a Shape,
    nulls: Option<&'a NullBuffer>,
    data: Data<'a>,
}

enum Data<'a> {
    Boolean(&'a BooleanArray),
    Int8(&'a Int8Array),
    Int16(&'a Int16Array),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Float32(&'a Float32Array),
    Float64(&'a Float64Array),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    BinaryView(&'a BinaryViewArray),
    Decimal(&'a Decimal128Array),
    Record(Vec<Column<'a>>),
    List(&'a [i32], Box<Column<'a>>),
    LargeList(&'a [i64], Box<Column<'a>>),
    Map(&'a [i32], Box<Column<'a>>, Box<Column<'a>>),
}

fn mismatch(shape: &Shape, array: &dyn Array) -> EncodeError {
    EncodeError::TypeMismatch {
        arrow: array.data_type().to_string(),
        connect: shape.describe(),
    }
}

fn cast<'a, T: 'static>(shape: &Shape, array: &'a dyn Array) -> Result<&'a T, EncodeError> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| mismatch(shape, array))
}

impl<'a> Column<'a> {
    pub(super) fn bind(shape: &'a Shape, array: &'a ArrayRef) -> Result<Self, EncodeError> {
        Self::bind_dyn(shape, array.as_ref())
    }

    /// The fields of a record, bound to the columns of a struct array.
    pub(super) fn bind_fields(
        shapes: &'a [Shape],
        array: &'a StructArray,
    ) -> Result<Vec<Column<'a>>, EncodeError> {
        if array.num_columns() != shapes.len() {
            return Err(EncodeError::TypeMismatch {
                arrow: format!("a struct of {} columns", array.num_columns()),
                connect: format!("a struct of {} fields", shapes.len()),
            });
        }
        shapes
            .iter()
            .zip(array.columns())
            .map(|(s, a)| Column::bind(s, a))
            .collect()
    }

    fn bind_dyn(shape: &'a Shape, array: &'a dyn Array) -> Result<Self, EncodeError> {
        let dt = array.data_type();
        let data = match (&shape.kind, dt) {
            (Kind::Boolean, _) => Data::Boolean(cast(shape, array)?),
            (Kind::Int8, _) => Data::Int8(cast(shape, array)?),
            (Kind::Int16, _) => Data::Int16(cast(shape, array)?),
            (Kind::Int32, _) => Data::Int32(cast(shape, array)?),
            (Kind::Int64, _) => Data::Int64(cast(shape, array)?),
            (Kind::Float32, _) => Data::Float32(cast(shape, array)?),
            (Kind::Float64, _) => Data::Float64(cast(shape, array)?),
            (Kind::String, DataType::LargeUtf8) => Data::LargeUtf8(cast(shape, array)?),
            (Kind::String, DataType::Utf8View) => Data::Utf8View(cast(shape, array)?),
            (Kind::String, _) => Data::Utf8(cast(shape, array)?),
            (Kind::Bytes { scale }, DataType::Decimal128(_, s)) => {
                // The unscaled integer is only right at the schema's scale.
                if *scale != Some(*s) {
                    return Err(mismatch(shape, array));
                }
                Data::Decimal(cast(shape, array)?)
            }
            (Kind::Bytes { .. }, DataType::LargeBinary) => Data::LargeBinary(cast(shape, array)?),
            (Kind::Bytes { .. }, DataType::BinaryView) => Data::BinaryView(cast(shape, array)?),
            (Kind::Bytes { .. }, _) => Data::Binary(cast(shape, array)?),
            (Kind::Record(fields), _) => {
                Data::Record(Column::bind_fields(fields, cast(shape, array)?)?)
            }
            (Kind::Array(items), DataType::LargeList(_)) => {
                let list: &LargeListArray = cast(shape, array)?;
                Data::LargeList(
                    list.value_offsets(),
                    Box::new(Column::bind_dyn(items, list.values().as_ref())?),
                )
            }
            (Kind::Array(items), _) => {
                let list: &ListArray = cast(shape, array)?;
                Data::List(
                    list.value_offsets(),
                    Box::new(Column::bind_dyn(items, list.values().as_ref())?),
                )
            }
            (Kind::Map(keys, values), _) => {
                let map: &MapArray = cast(shape, array)?;
                Data::Map(
                    map.value_offsets(),
                    Box::new(Column::bind_dyn(keys, map.keys().as_ref())?),
                    Box::new(Column::bind_dyn(values, map.values().as_ref())?),
                )
            }
        };
        Ok(Column {
            shape,
            nulls: array.nulls(),
            data,
        })
    }

    pub(super) fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let shape = self.shape;
        if self.nulls.is_some_and(|n| n.is_null(row)) {
            return match (&shape.default, shape.branches) {
                (Some(d), branches) => {
                    if let Some((value, _)) = branches {
                        out.push(value);
                    }
                    out.extend_from_slice(d);
                    Ok(())
                }
                (None, Some((_, null))) => {
                    out.push(null);
                    Ok(())
                }
                (None, None) => Err(EncodeError::NullNotAllowed {
                    field: shape.path.clone(),
                }),
            };
        }
        if let Some((value, _)) = shape.branches {
            out.push(value);
        }
        match &self.data {
            Data::Boolean(a) => out.push(u8::from(a.value(row))),
            Data::Int8(a) => write_long(out, i64::from(a.value(row))),
            Data::Int16(a) => write_long(out, i64::from(a.value(row))),
            Data::Int32(a) => write_long(out, i64::from(a.value(row))),
            Data::Int64(a) => write_long(out, a.value(row)),
            Data::Float32(a) => out.extend_from_slice(&a.value(row).to_le_bytes()),
            Data::Float64(a) => out.extend_from_slice(&a.value(row).to_le_bytes()),
            Data::Utf8(a) => write_bytes(out, a.value(row).as_bytes()),
            Data::LargeUtf8(a) => write_bytes(out, a.value(row).as_bytes()),
            Data::Utf8View(a) => write_bytes(out, a.value(row).as_bytes()),
            Data::Binary(a) => write_bytes(out, a.value(row)),
            Data::LargeBinary(a) => write_bytes(out, a.value(row)),
            Data::BinaryView(a) => write_bytes(out, a.value(row)),
            Data::Decimal(a) => {
                let be = a.value(row).to_be_bytes();
                write_bytes(out, minimal_twos_complement(&be));
            }
            Data::Record(fields) => {
                for f in fields {
                    f.write(row, out)?;
                }
            }
            Data::List(offsets, items) => write_block(
                out,
                offsets[row] as usize,
                offsets[row + 1] as usize,
                |i, o| items.write(i, o),
            )?,
            Data::LargeList(offsets, items) => write_block(
                out,
                offsets[row] as usize,
                offsets[row + 1] as usize,
                |i, o| items.write(i, o),
            )?,
            Data::Map(offsets, keys, values) => write_block(
                out,
                offsets[row] as usize,
                offsets[row + 1] as usize,
                |i, o| {
                    keys.write(i, o)?;
                    values.write(i, o)
                },
            )?,
        }
        Ok(())
    }
}

/// One block holding every item, then the empty block that ends the array or map.
fn write_block(
    out: &mut Vec<u8>,
    start: usize,
    end: usize,
    mut item: impl FnMut(usize, &mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    if end > start {
        write_long(out, (end - start) as i64);
        for i in start..end {
            item(i, out)?;
        }
    }
    out.push(0);
    Ok(())
}

/// Avro `int` and `long`: zig-zag, then base-128 varint, low group first.
pub(super) fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(super) fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long(v: i64) -> Vec<u8> {
        let mut o = Vec::new();
        write_long(&mut o, v);
        o
    }

    #[test]
    fn zig_zag_varints_match_the_avro_spec() {
        // Examples from the Avro specification's table, plus the extremes.
        assert_eq!(long(0), [0x00]);
        assert_eq!(long(-1), [0x01]);
        assert_eq!(long(1), [0x02]);
        assert_eq!(long(-2), [0x03]);
        assert_eq!(long(2), [0x04]);
        assert_eq!(long(-64), [0x7f]);
        assert_eq!(long(64), [0x80, 0x01]);
        assert_eq!(long(300), [0xd8, 0x04]);
        assert_eq!(
            long(i64::MAX),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            long(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }
}
