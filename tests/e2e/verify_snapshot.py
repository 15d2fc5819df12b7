#!/usr/bin/env python3
"""Independent check of a cdcql snapshot of e2e.type_matrix (tests/e2e/type_matrix.sql) in Kafka.

    verify_snapshot.py TOPIC PG_URL BROKERS types|filtered|opt_string|opt_double|opt_base64|avro_types|avro_native
                       [--partitions N] [--timeout S] [--registry URL]
    verify_snapshot.py --self-test [--brokers BROKERS]
    verify_snapshot.py --brokers BROKERS --delete-topics TOPIC...   (test clean-up)
    verify_snapshot.py --registry URL --delete-subjects PREFIX

Reads every message of TOPIC with Confluent's consumer (librdkafka) and compares it with what
Postgres holds, converted by Debezium's default rules (../shared/reference/debezium-format.md
§1, §3, §5), written here from the spec, not from cdcql's code:

- `types`: the pass-through pipeline with `json_schemas = true` and 4 partitions. Key bytes must
  equal the Kafka Connect JSON key exactly, the partition must be Java's murmur2 partitioner's,
  the value is {"schema","payload"} with a Debezium 3.x envelope whose `after` equals the row.
- `filtered`: the pipeline `SELECT id, upper(t) AS t_upper, n * 2 AS n2, CASE WHEN b THEN 'yes'
  ELSE 'no' END AS flag, CAST(i4 AS int8) AS i4_big ... WHERE i4 % 3 = 0`, payload-only JSON,
  2 partitions; expected rows come from running that SELECT in Postgres.
- `opt_string`, `opt_double`, `opt_base64`: the type-option pipelines of options_pipelines.sql
  over e2e.type_options (decimal/time/binary/interval/hstore handling and money digits), with
  Postgres' NaN and ±Infinity numerics.
- `avro_types`, `avro_native`: e2e.type_matrix with `FORMAT AVRO` in the Debezium and the native
  envelope, 3 partitions. Every key and value must carry Confluent's framing with a schema id the
  registry knows (the subjects' latest versions), decode with Confluent's `AvroDeserializer`, and
  follow the Avro schema AvroConverter derives from the Connect schema of `types`; the decoded
  values, put back into JsonConverter's representation, pass the same per-column checks. The key
  is the record {id}; native rows end with __op = 'r', __version = 0, __source_ts_ms, __deleted = false.

Types Debezium reads as Postgres' text (inet, ranges, tsvector, "char", ...) are compared with
Postgres' own output function (`format('%s', v)`, session TimeZone UTC).

Prints `N passed, M failed` and exits 1 with the first mismatches when anything differs.
"""
import argparse
import base64
import datetime as dt
import json
import os
import struct
import sys
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal

TABLE_SCHEMA, TABLE_NAME = "e2e", "type_matrix"
SNAPSHOT_MARKERS = {"first", "true", "last", "first_in_data_collection", "last_in_data_collection"}
EPOCH_DATE = dt.date(1970, 1, 1)
EPOCH = dt.datetime(1970, 1, 1)
MICRO = dt.timedelta(microseconds=1)

# --- Kafka's Java partitioner ---------------------------------------------------------------


def murmur2(data: bytes) -> int:
    """org.apache.kafka.common.utils.Utils.murmur2, as a signed 32-bit int."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail, rest = length & ~3, length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    """BuiltInPartitioner.partitionForKey: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# --- Debezium / Kafka Connect value rules ---------------------------------------------------


def unscaled(value: Decimal, scale: int) -> int:
    """The unscaled integer of `value` at `scale`, exactly (no context rounding)."""
    sign, digits, exponent = value.as_tuple()
    n = int("".join(map(str, digits)) or "0")
    shift = exponent + scale
    if shift < 0:
        raise ValueError(f"{value} has more than {scale} fractional digits")
    n *= 10**shift
    return -n if sign else n


def twos_complement(n: int) -> bytes:
    """Java BigInteger.toByteArray(): minimal big-endian two's complement."""
    return n.to_bytes((n if n >= 0 else ~n).bit_length() // 8 + 1, "big", signed=True)


def connect_decimal(value: Decimal, scale: int) -> str:
    """org.apache.kafka.connect.data.Decimal in JsonConverter: base64 of the unscaled bytes."""
    return base64.b64encode(twos_complement(unscaled(value, scale))).decode()


def decode_connect_decimal(b64: str, scale: int) -> Decimal:
    n = int.from_bytes(base64.b64decode(b64, validate=True), "big", signed=True)
    return Decimal(f"{n}E{-scale}")  # from text: exact, unlike scaleb() in a 28-digit context


def epoch_days(d: dt.date) -> int:  # io.debezium.time.Date
    return (d - EPOCH_DATE).days


def micros_of_day(t: dt.time) -> int:  # io.debezium.time.MicroTime
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def epoch_micros(ts: dt.datetime) -> int:  # io.debezium.time.MicroTimestamp (wall clock read as UTC)
    return (ts - EPOCH) // MICRO


def exact_div(n: int, d: int) -> int:
    if n % d:
        raise ValueError(f"{n} is not a multiple of {d}: the column holds more precision than expected")
    return n // d


def zoned_timestamp(ts: dt.datetime, digits: int) -> str:
    """io.debezium.time.ZonedTimestamp: UTC ISO-8601 with exactly `digits` fractional digits."""
    u = ts.astimezone(dt.timezone.utc)
    s = f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
    if digits:
        s += "." + f"{u.microsecond:06d}"[:digits]
    return s + "Z"


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def key_bytes(topic: str, id_value: int, schemas: bool, id_type: str = "int64") -> bytes:
    payload = {"id": id_value}
    if not schemas:
        return compact(payload).encode()
    schema = {
        "type": "struct",
        "fields": [{"type": id_type, "optional": False, "field": "id"}],
        "optional": False,
        "name": f"{topic}.Key",
    }
    return compact({"schema": schema, "payload": payload}).encode()


# --- the table: Connect schema and expected JSON value per column ----------------------------


def field_schema(name, type_, optional=True, logical=None, params=None):
    """A struct member in JsonConverter's key order: type, optional, name, version, parameters, field."""
    f = {"type": type_, "optional": optional}
    if logical:
        f["name"] = logical
        f["version"] = 1
    if params:
        f["parameters"] = params
    f["field"] = name
    return f


def decimal_params(precision, scale):
    return {"scale": str(scale), "connect.decimal.precision": str(precision)}


DECIMAL = "org.apache.kafka.connect.data.Decimal"
# (column, Connect field schema, PG value -> expected JSON value, kind used to compare)
COLUMNS = [
    ("id", field_schema("id", "int64", optional=False), int, "int"),
    ("b", field_schema("b", "boolean"), bool, "bool"),
    ("i2", field_schema("i2", "int16"), int, "int"),
    ("i4", field_schema("i4", "int32"), int, "int"),
    ("i8", field_schema("i8", "int64"), int, "int"),
    ("f4", field_schema("f4", "float"), lambda v: json_float(float(v)), "float32"),
    ("f8", field_schema("f8", "double"), lambda v: json_float(float(v)), "float64"),
    ("n", field_schema("n", "bytes", logical=DECIMAL, params=decimal_params(12, 3)), lambda v: connect_decimal(v, 3), "str"),
    ("nbig", field_schema("nbig", "bytes", logical=DECIMAL, params=decimal_params(38, 10)), lambda v: connect_decimal(v, 10), "str"),
    ("t", field_schema("t", "string"), str, "str"),
    ("vc", field_schema("vc", "string"), str, "str"),
    ("ch", field_schema("ch", "string"), str, "str"),
    ("by", field_schema("by", "bytes"), lambda v: base64.b64encode(bytes(v)).decode(), "str"),
    ("d", field_schema("d", "int32", logical="io.debezium.time.Date"), epoch_days, "int"),
    ("tm", field_schema("tm", "int64", logical="io.debezium.time.MicroTime"), micros_of_day, "int"),
    ("tm3", field_schema("tm3", "int32", logical="io.debezium.time.Time"), lambda v: exact_div(micros_of_day(v), 1000), "int"),
    ("ts", field_schema("ts", "int64", logical="io.debezium.time.MicroTimestamp"), epoch_micros, "int"),
    ("ts3", field_schema("ts3", "int64", logical="io.debezium.time.Timestamp"), lambda v: exact_div(epoch_micros(v), 1000), "int"),
    ("tstz", field_schema("tstz", "string", logical="io.debezium.time.ZonedTimestamp"), lambda v: zoned_timestamp(v, 6), "str"),
    ("tstz0", field_schema("tstz0", "string", logical="io.debezium.time.ZonedTimestamp"), lambda v: zoned_timestamp(v, 0), "str"),
    ("u", field_schema("u", "string", logical="io.debezium.data.Uuid"), str, "str"),
    ("j", field_schema("j", "string", logical="io.debezium.data.Json"), str, "str"),
    ("jb", field_schema("jb", "string", logical="io.debezium.data.Json"), str, "str"),
]


# --- the rest of Debezium's type mapping (reference §5) -------------------------------------
# Each column is selected by an SQL expression whose result Python can hold (e.g. ±infinity
# dates as text, intervals as their parts, text-printed types through their output function),
# then converted here by the reference's rules.

def nullable(sql_value, column):
    """`sql_value` for a non-NULL `column`, else NULL (format('%s', NULL) would be '')."""
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {sql_value} END"


def output_text(column):
    """The value as the type's output function prints it: what Debezium's JDBC/pgoutput reads."""
    return nullable(f"format('%s', {column})", column)


def elements(column, element_sql):
    """An array's elements through `element_sql` (with `x` as the element), order kept."""
    return nullable(
        f"ARRAY(SELECT CASE WHEN x IS NULL THEN NULL ELSE {element_sql} END "
        f"FROM unnest({column}) WITH ORDINALITY AS u(x, i) ORDER BY i)", column)


def bitset_bytes(bits: str) -> str:
    """io.debezium.data.Bits: java.util.BitSet.toByteArray() of the bit string with its rightmost
    bit as bit 0 - little-endian, no trailing zero bytes."""
    v = int(bits, 2) if bits else 0
    return base64.b64encode(v.to_bytes((v.bit_length() + 7) // 8, "little")).decode()


def variable_scale_decimal(v: Decimal):
    """io.debezium.data.VariableScaleDecimal: BigDecimal.stripTrailingZeros, scale at least 0."""
    sign, digits, exponent = v.as_tuple()
    digits = list(digits)
    while exponent < 0 and len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    n = int("".join(map(str, digits)) or "0")
    if n == 0:
        return {"scale": 0, "value": base64.b64encode(twos_complement(0)).decode()}
    if exponent > 0:
        n *= 10**exponent
        exponent = 0
    return {"scale": -exponent, "value": base64.b64encode(twos_complement(-n if sign else n)).decode()}


def zoned_time(t: dt.time) -> str:
    """io.debezium.time.ZonedTime: the time moved to UTC, ISO_OFFSET_TIME (minimal fraction)."""
    offset_us = t.utcoffset() // MICRO
    us = (micros_of_day(t.replace(tzinfo=None)) - offset_us) % (86_400 * 1_000_000)
    s, frac = divmod(us, 1_000_000)
    out = f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
    if frac:
        out += ("." + f"{frac:06d}").rstrip("0")
    return out + "Z"


def micro_duration(parts) -> int:
    """io.debezium.time.MicroDuration.durationMicros in Java's double arithmetic (months are
    365.25/12 days; the seconds come from pgjdbc's PGInterval as whole + micros/1e6), then
    Java's saturating (long) cast."""
    years, months, days, hours, minutes, sec_us = parts
    whole = sec_us // 1_000_000 if sec_us >= 0 else -((-sec_us) // 1_000_000)
    micros = sec_us - whole * 1_000_000
    seconds = float(whole) + float(micros) / 1e6
    number_of_days = float(years * 12 + months) * (365.25 / 12.0) + float(days)
    number_of_seconds = ((number_of_days * 24.0 + hours) * 60.0 + minutes) * 60.0 + seconds
    total = number_of_seconds * 1e6 + 0.0
    if total != total:
        return 0
    return max(-(2**63), min(2**63 - 1, int(total)))


def json_float(v: float):
    """A double as JsonConverter writes it (Jackson quotes the non-finite ones)."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def point(xy):
    x, y = xy
    wkb = b"\x01\x01\x00\x00\x00" + struct.pack("<dd", x, y)
    return {"x": json_float(x), "y": json_float(y), "wkb": base64.b64encode(wkb).decode(), "srid": None}


DATE_INFINITY = {"infinity": -2147472692, "-infinity": -2147472691}
TIMESTAMP_INFINITY_US = {"infinity": 9223372036825200000, "-infinity": -9223372036832400000}


def date_or_infinity(text):
    return DATE_INFINITY[text] if text in DATE_INFINITY else int(text)


def micros_or_infinity(text, divisor=1):
    if text in TIMESTAMP_INFINITY_US:
        return TIMESTAMP_INFINITY_US[text] // divisor
    return exact_div(int(text), divisor)


def zoned_or_infinity(text):
    if text in ("infinity", "-infinity"):
        return text
    return zoned_timestamp(EPOCH.replace(tzinfo=dt.timezone.utc) + int(text) * MICRO, 6)


def listed(convert):
    return lambda values: [None if v is None else convert(v) for v in values]


def named(type_, logical, params=None, optional=True):
    s = {"type": type_, "optional": optional, "name": logical, "version": 1}
    if params:
        s["parameters"] = params
    return s


def plain(type_, optional=True):
    return {"type": type_, "optional": optional}


def with_field(schema, name):
    return dict(schema, field=name)


def array_of(item, item_optional=True):
    return {"type": "array", "items": dict(item, optional=item_optional), "optional": True}


MOOD_ALLOWED = "sad,meh,ok,happy"  # enumsortorder: 'meh' was added BEFORE 'ok'
EPOCH_SQL = "(extract(epoch from {c}) * 1000000)::numeric(30, 0)::text"
DECIMAL_S = lambda p, s: named("bytes", DECIMAL, decimal_params(p, s))  # noqa: E731
EPOCH_TZ = EPOCH.replace(tzinfo=dt.timezone.utc)

# column -> (select expression, Connect schema without `field`, PG value -> JSON value, kind)
EXTRA = {
    "bit1": ("bit1::text", plain("boolean"), lambda v: v == "1", "bool"),
    "bits": ("bits::text", named("bytes", "io.debezium.data.Bits", {"length": "12"}), bitset_bytes, "str"),
    "vbits": ("vbits::text", named("bytes", "io.debezium.data.Bits", {"length": "2147483647"}), bitset_bytes, "str"),
    "o": ("o::int8", plain("int64"), int, "int"),
    "nvar": ("nvar", {"type": "struct", "fields": [
        {"type": "int32", "optional": False, "field": "scale"},
        {"type": "bytes", "optional": False, "field": "value"}],
        "optional": True, "name": "io.debezium.data.VariableScaleDecimal", "version": 1,
        "doc": "Variable scaled decimal"}, variable_scale_decimal, "exact"),
    "nwide": ("nwide", DECIMAL_S(50, 5), lambda v: connect_decimal(v, 5), "str"),
    "pr": ("pr", DECIMAL_S(8, 2), lambda v: connect_decimal(v, 2), "str"),
    # money: Decimal with money.fraction.digits (2) as scale and no precision parameter
    "m": ("m::numeric", named("bytes", DECIMAL, {"scale": "2"}), lambda v: connect_decimal(v, 2), "str"),
    "c1": (output_text("c1"), plain("string"), str, "str"),
    "nm": ("nm::text", plain("string"), str, "str"),
    "ttz": ("ttz", named("string", "io.debezium.time.ZonedTime"), zoned_time, "str"),
    "iv": (nullable("ARRAY[extract(year from iv), extract(month from iv), extract(day from iv), "
                    "extract(hour from iv), extract(minute from iv), extract(microseconds from iv)]::int8[]", "iv"),
           named("int64", "io.debezium.time.MicroDuration"), micro_duration, "int"),
    "x": ("x::text", named("string", "io.debezium.data.Xml"), str, "str"),
    "e": ("e::text", named("string", "io.debezium.data.Enum", {"allowed": MOOD_ALLOWED}), str, "str"),
    "tv": (output_text("tv"), named("string", "io.debezium.data.Tsvector"), str, "str"),
    "pt": (nullable("ARRAY[pt[0], pt[1]]", "pt"), {"type": "struct", "fields": [
        {"type": "double", "optional": False, "field": "x"},
        {"type": "double", "optional": False, "field": "y"},
        {"type": "bytes", "optional": True, "field": "wkb"},
        {"type": "int32", "optional": True, "field": "srid"}],
        "optional": True, "name": "io.debezium.data.geometry.Point", "version": 1, "doc": "Geometry (POINT)"},
        point, "exact"),
    "d_inf": (nullable("CASE WHEN isfinite(d_inf) THEN (d_inf - date '1970-01-01')::text ELSE d_inf::text END", "d_inf"),
              named("int32", "io.debezium.time.Date"), date_or_infinity, "int"),
    "ts_inf": (nullable(f"CASE WHEN isfinite(ts_inf) THEN {EPOCH_SQL.format(c='ts_inf')} ELSE ts_inf::text END", "ts_inf"),
               named("int64", "io.debezium.time.MicroTimestamp"), micros_or_infinity, "int"),
    "ts3_inf": (nullable(f"CASE WHEN isfinite(ts3_inf) THEN {EPOCH_SQL.format(c='ts3_inf')} ELSE ts3_inf::text END", "ts3_inf"),
                named("int64", "io.debezium.time.Timestamp"), lambda t: micros_or_infinity(t, 1000), "int"),
    "tstz_inf": (nullable(f"CASE WHEN isfinite(tstz_inf) THEN {EPOCH_SQL.format(c='tstz_inf')} ELSE tstz_inf::text END", "tstz_inf"),
                 named("string", "io.debezium.time.ZonedTimestamp"), zoned_or_infinity, "str"),
    "ai": ("ai", array_of(plain("int32")), list, "exact"),
    "ai8": ("ai8", array_of(plain("int64")), list, "exact"),
    "at": ("at", array_of(plain("string")), list, "exact"),
    "an": ("an", array_of(DECIMAL_S(10, 2)), listed(lambda v: connect_decimal(v, 2)), "exact"),
    "af": ("af", array_of(plain("double")), listed(json_float), "exact"),
    "ab": ("ab", array_of(plain("boolean")), list, "exact"),
    "ad": ("ad", array_of(named("int32", "io.debezium.time.Date")), listed(epoch_days), "exact"),
    "ats": ("ats", array_of(named("int64", "io.debezium.time.Timestamp")),
            listed(lambda v: exact_div(epoch_micros(v), 1000)), "exact"),
    "atz": ("atz", array_of(named("string", "io.debezium.time.ZonedTimestamp")),
            listed(lambda v: zoned_timestamp(v, 6)), "exact"),
    "au": ("au", array_of(named("string", "io.debezium.data.Uuid")), listed(str), "exact"),
    "aj": (elements("aj", "x::text"), array_of(named("string", "io.debezium.data.Json")), list, "exact"),
    "aby": ("aby", array_of(plain("bytes")), listed(lambda v: base64.b64encode(bytes(v)).decode()), "exact"),
    # Debezium builds enum and tsvector array items without making them optional.
    "ae": ("ae::text[]", array_of(named("string", "io.debezium.data.Enum", {"allowed": MOOD_ALLOWED}), False),
           list, "exact"),
    "atv": (elements("atv", "format('%s', x)"), array_of(named("string", "io.debezium.data.Tsvector"), False),
            list, "exact"),
    "h": (nullable("hstore_to_json(h)::text", "h"), named("string", "io.debezium.data.Json"), json.loads, "jsonstr"),
    "ah": (elements("ah", "hstore_to_json(x)::text"), array_of(named("string", "io.debezium.data.Json")),
           listed(json.loads), "jsonstrs"),
    "l": ("l::text", named("string", "io.debezium.data.Ltree"), str, "str"),
    "al": ("al::text[]", array_of(named("string", "io.debezium.data.Ltree")), list, "exact"),
    "ci": ("ci::text", plain("string"), str, "str"),
    "aci": ("aci::text[]", array_of(plain("string")), list, "exact"),
}
# Types printed by Postgres' own output function, compared as text.
for _c in ("ip", "net", "mac", "mac8", "r4", "r8", "rn", "rts", "rtz", "rd"):
    EXTRA[_c] = (output_text(_c), plain("string"), str, "str")
EXTRA["ainet"] = (elements("ainet", "format('%s', x)"), array_of(plain("string")), list, "exact")

# --- the type-option pipelines over e2e.type_options (tests/e2e/options_pipelines.sql) ---------

OPTIONS_TABLE = "type_options"


def java_double_str(v: float) -> str:
    """Java's Double.toString: shortest digits; plain for 1e-3 <= |v| < 1e7, else d.dddE±n."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "-0.0" if struct.pack(">d", v)[0] & 0x80 else "0.0"
    sign, digits, exponent = Decimal(repr(v)).as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    sci = len(digits) - 1 + exponent
    text = "".join(map(str, digits))
    if 1e-3 <= abs(v) < 1e7:
        point = len(text) + exponent
        if point <= 0:
            out = "0." + "0" * -point + text
        elif point >= len(text):
            out = text + "0" * (point - len(text)) + ".0"
        else:
            out = text[:point] + "." + text[point:]
    else:
        out = text[0] + "." + (text[1:] or "0") + f"E{sci}"
    return ("-" if sign else "") + out


def decimal_string(v: Decimal) -> str:
    """decimal_handling 'string': BigDecimal.toString(), specials by their enum names."""
    if v.is_nan():
        return "NAN"
    if v.is_infinite():
        return "POSITIVE_INFINITY" if v > 0 else "NEGATIVE_INFINITY"
    return str(v)  # Python's to-sci-string uses BigDecimal.toString's rule


def interval_parts(parts):
    years, months, days, hours, minutes, sec_us = parts
    whole = sec_us // 1_000_000 if sec_us >= 0 else -((-sec_us) // 1_000_000)
    return years, months, days, hours, minutes, whole, sec_us - whole * 1_000_000


def interval_iso(parts) -> str:
    """io.debezium.time.Interval: P<y>Y<m>M<d>DT<h>H<mi>M<s>S with the seconds of pgjdbc's
    PGInterval (a double) through BigDecimal.valueOf().stripTrailingZeros().toPlainString()."""
    years, months, days, hours, minutes, whole, micros = interval_parts(parts)
    seconds = Decimal(java_double_str(float(whole) + float(micros) / 1e6)).normalize()
    return f"P{years}Y{months}M{days}DT{hours}H{minutes}M{format(seconds, 'f')}S"


def money_half_up(v: Decimal, digits: int) -> str:
    q = v.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return connect_decimal(q, digits)


INTERVAL_SQL = nullable("ARRAY[extract(year from iv), extract(month from iv), extract(day from iv), "
                        "extract(hour from iv), extract(minute from iv), extract(microseconds from iv)]::int8[]", "iv")
CONNECT_TIME = "org.apache.kafka.connect.data."


def options_specs(variant):
    """column -> (select, schema, convert, kind) for one option pipeline's output columns."""
    ms = lambda v: exact_div(micros_of_day(v) - micros_of_day(v) % 1000, 1000)  # noqa: E731
    ts_ms = lambda v: epoch_micros(v) // 1000  # noqa: E731 (floor, like Instant.toEpochMilli)
    specs = {"id": ("id", plain("int64", optional=False), int, "int")}
    if variant == "opt_string":
        specs.update({
            "n": ("n", plain("string"), decimal_string, "str"),
            "nvar": ("nvar", plain("string"), decimal_string, "str"),
            # Debezium reads money as a Java double: String.valueOf(double)
            "m": ("m::numeric", plain("string"), lambda v: java_double_str(float(v)), "str"),
            "by": ("by", plain("string"), lambda v: bytes(v).hex(), "str"),
            "iv": (INTERVAL_SQL, named("string", "io.debezium.time.Interval"), interval_iso, "str"),
            "tm3": ("tm3", named("int32", CONNECT_TIME + "Time"), ms, "int"),
            "tm": ("tm", named("int32", CONNECT_TIME + "Time"), ms, "int"),
            "ts3": ("ts3", named("int64", CONNECT_TIME + "Timestamp"), ts_ms, "int"),
            "ts": ("ts", named("int64", CONNECT_TIME + "Timestamp"), ts_ms, "int"),
            "d": ("d", named("int32", CONNECT_TIME + "Date"), epoch_days, "int"),
            "h": (nullable("hstore_to_json(h)::text", "h"),
                  {"type": "map", "keys": plain("string", optional=False), "values": plain("string"),
                   "optional": True}, json.loads, "map"),
        })
    elif variant == "opt_double":
        specs.update({
            "n": ("n", plain("double"), lambda v: json_float(float(v)), "float64"),
            "nvar": ("nvar", plain("double"), lambda v: json_float(float(v)), "float64"),
            "m": ("m::numeric", plain("double"), lambda v: json_float(float(v)), "float64"),
            "by": ("by", plain("string"), lambda v: base64.urlsafe_b64encode(bytes(v)).decode(), "str"),
            "iv": (INTERVAL_SQL, named("int64", "io.debezium.time.MicroDuration"), micro_duration, "int"),
            "tm3": ("tm3", named("int64", "io.debezium.time.MicroTime"), micros_of_day, "int"),
            "tm": ("tm", named("int64", "io.debezium.time.MicroTime"), micros_of_day, "int"),
            "ts3": ("ts3", named("int64", "io.debezium.time.Timestamp"), lambda v: exact_div(epoch_micros(v), 1000), "int"),
            "ts": ("ts", named("int64", "io.debezium.time.MicroTimestamp"), epoch_micros, "int"),
            "d": ("d", named("int32", "io.debezium.time.Date"), epoch_days, "int"),
            "h": (nullable("hstore_to_json(h)::text", "h"), named("string", "io.debezium.data.Json"),
                  json.loads, "jsonstr"),
        })
    elif variant == "opt_base64":
        specs.update({
            "m": ("m::numeric", named("bytes", DECIMAL, {"scale": "1"}), lambda v: money_half_up(v, 1), "str"),
            "by": ("by", plain("string"), lambda v: base64.b64encode(bytes(v)).decode(), "str"),
            "iv": (INTERVAL_SQL, named("int64", "io.debezium.time.MicroDuration"), micro_duration, "int"),
            "tm3": ("tm3", named("int32", "io.debezium.time.Time"), ms, "int"),
            "tm": ("tm", named("int64", "io.debezium.time.MicroTime"), micros_of_day, "int"),
            "ts3": ("ts3", named("int64", "io.debezium.time.Timestamp"), lambda v: exact_div(epoch_micros(v), 1000), "int"),
            "ts": ("ts", named("int64", "io.debezium.time.MicroTimestamp"), epoch_micros, "int"),
            "d": ("d", named("int32", "io.debezium.time.Date"), epoch_days, "int"),
        })
    return specs


def options_columns(conn, variant):
    specs = options_specs(variant)
    names = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position", (TABLE_SCHEMA, OPTIONS_TABLE)).fetchall()]
    columns = [(n, with_field(specs[n][1], n), specs[n][2], specs[n][3]) for n in names if n in specs]
    query = "SELECT {} FROM {}.{}".format(
        ", ".join(f"{specs[n][0]} AS {n}" for n, *_ in columns), TABLE_SCHEMA, OPTIONS_TABLE)
    return query, columns


BASE_COLUMN_NAMES = [c for c, *_ in COLUMNS]


def table_columns(conn):
    """The type matrix's columns in table order; extension columns exist only where the
    extensions could be created."""
    names = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position", (TABLE_SCHEMA, TABLE_NAME)).fetchall()]
    specs = []
    for name in names:
        if name in BASE_COLUMN_NAMES:
            specs.append(COLUMNS[BASE_COLUMN_NAMES.index(name)])
        elif name in EXTRA:
            sql, schema, convert, kind = EXTRA[name]
            specs.append((name, with_field(schema, name), convert, kind))
        else:
            raise SystemExit(f"verify_snapshot.py has no expectation for column {name}: add one to EXTRA")
    return specs


def select_sql(name):
    if name in ("j", "jb"):
        return f"{name}::text AS {name}"
    if name in EXTRA:
        return f"{EXTRA[name][0]} AS {name}"
    return name


def types_query(specs):
    return "SELECT {} FROM {}.{}".format(", ".join(select_sql(c) for c, *_ in specs), TABLE_SCHEMA, TABLE_NAME)

FILTERED_COLUMNS = ["id", "t_upper", "n2", "flag", "i4_big"]
FILTERED_QUERY = f"""SELECT id, upper(t) AS t_upper, n * 2 AS n2, CASE WHEN b THEN 'yes' ELSE 'no' END AS flag,
                            CAST(i4 AS int8) AS i4_big
                       FROM {TABLE_SCHEMA}.{TABLE_NAME} WHERE i4 % 3 = 0"""

# Debezium 3.6 envelope members after before/after (reference §3; example-value.json).
ENVELOPE_TAIL_SCHEMA = json.loads("""[
{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"},{"type":"string","optional":true,"field":"origin"},{"type":"int64","optional":true,"field":"origin_lsn"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","version":1,"field":"source"},
{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"},
{"type":"string","optional":false,"field":"op"},
{"type":"int64","optional":true,"field":"ts_ms"},
{"type":"int64","optional":true,"field":"ts_us"},
{"type":"int64","optional":true,"field":"ts_ns"}
]""")
ENVELOPE_FIELDS = ["before", "after"] + [f["field"] for f in ENVELOPE_TAIL_SCHEMA]
SOURCE_FIELDS = [f["field"] for f in ENVELOPE_TAIL_SCHEMA[0]["fields"]]


def envelope_schema(topic, columns):
    value = {"type": "struct", "fields": [f for _, f, _, _ in columns], "optional": True, "name": f"{topic}.Value"}
    return {
        "type": "struct",
        "fields": [dict(value, field="before"), dict(value, field="after")] + ENVELOPE_TAIL_SCHEMA,
        "optional": False,
        "name": f"{topic}.Envelope",
        "version": 2,
    }


# --- comparison -----------------------------------------------------------------------------


def short(v, limit=160):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + f"...({len(s)} chars)"


def strictly_equal(a, b):
    """JSON values equal with their types (1 is not 1.0 nor true), in order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(strictly_equal(a[k], b[k]) for k in a)
    return a == b


def same(kind, expected, got):
    if expected is None or got is None:
        return expected is None and got is None
    if kind == "exact":
        return strictly_equal(expected, got)
    if kind == "jsonstr":  # a JSON object in a string; key order is the map's, not compared
        try:
            return type(got) is str and json.loads(got) == expected
        except ValueError:
            return False
    if kind == "map":  # a Connect MAP with string keys: a JSON object
        return type(got) is dict and got == expected
    if kind == "jsonstrs":
        return (type(got) is list and len(got) == len(expected)
                and all(same("jsonstr", e, g) for e, g in zip(expected, got)))
    if kind == "bool":
        return type(got) is bool and got == expected
    if kind == "int":
        return type(got) is int and got == expected
    if kind in ("float32", "float64"):
        if isinstance(expected, str):  # non-finite: Jackson writes "NaN" / "Infinity" quoted
            return got == expected
        if type(got) is not float:
            return False
        if kind == "float64":
            return got == expected
        try:
            return struct.pack("<f", got) == struct.pack("<f", expected)
        except OverflowError:
            return False
    return type(got) is str and got == expected


class Report:
    def __init__(self, topic, mode):
        self.topic, self.mode = topic, mode
        self.passed = self.failed = 0
        self.mismatches = []

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            if len(self.mismatches) < 5:
                self.mismatches.append(what)
        return ok

    def finish(self):
        print(f"{self.topic} ({self.mode}): {self.passed} passed, {self.failed} failed")
        for m in self.mismatches:
            print(f"  MISMATCH {m}")
        return self.failed == 0


def check_timestamps(rep, where, block):
    """Reference §7.4: ts_us/1000 == ts_ms and ts_ns/1000 == ts_us when present."""
    ms, us, ns = block.get("ts_ms"), block.get("ts_us"), block.get("ts_ns")
    ok = ms is None or type(ms) is int
    ok = ok and (us is None or (type(us) is int and ms is not None and us // 1000 == ms))
    ok = ok and (ns is None or (type(ns) is int and us is not None and ns // 1000 == us))
    rep.check(ok, f"{where}: inconsistent ts_ms/ts_us/ts_ns {ms!r}/{us!r}/{ns!r}")


def check_payload(rep, where, payload, db, table=TABLE_NAME):
    """What every snapshot record's envelope payload must hold, with or without schemas."""
    if not rep.check(isinstance(payload, dict), f"{where}: payload is not an object: {short(payload)}"):
        return None
    rep.check(list(payload) == ENVELOPE_FIELDS, f"{where}: payload members {list(payload)}, want {ENVELOPE_FIELDS}")
    rep.check(payload.get("op") == "r", f"{where}: op {payload.get('op')!r}, want 'r'")
    rep.check("before" in payload and payload["before"] is None, f"{where}: before {short(payload.get('before'))}, want null")
    check_timestamps(rep, where, payload)
    source = payload.get("source")
    if rep.check(isinstance(source, dict), f"{where}: source {short(source)} is not an object"):
        rep.check(list(source) == SOURCE_FIELDS, f"{where}: source members {list(source)}, want {SOURCE_FIELDS}")
        want = {"connector": "postgresql", "db": db, "schema": TABLE_SCHEMA, "table": table}
        got = {k: source.get(k) for k in want}
        rep.check(got == want, f"{where}: source {got}, want {want}")
        rep.check(all(type(source.get(k)) is str for k in ("version", "name")),
                  f"{where}: source.version/name not strings: {source.get('version')!r}/{source.get('name')!r}")
        rep.check(source.get("snapshot") in SNAPSHOT_MARKERS, f"{where}: source.snapshot {source.get('snapshot')!r}")
        check_timestamps(rep, where + " source", source)
    after = payload.get("after")
    rep.check(isinstance(after, dict), f"{where}: after {short(after)} is not an object")
    return payload


def check_snapshot_markers(rep, records):
    """Debezium marks a single table's first snapshot record `first`, its last `last`, the rest `true`."""
    markers = {}
    for r in records:
        src = r["payload"].get("source") if isinstance(r["payload"], dict) else None
        markers.setdefault(src.get("snapshot") if isinstance(src, dict) else None, []).append(r)
    counts = {k: len(v) for k, v in markers.items()}
    want = {"first": 1, "last": 1, "true": len(records) - 2}
    if not rep.check(counts == want, f"snapshot markers {counts}, want {want}"):
        return
    ends = {}
    for r in records:
        lo, hi = ends.get(r["partition"], (r["offset"], r["offset"]))
        ends[r["partition"]] = (min(lo, r["offset"]), max(hi, r["offset"]))
    first, last = markers["first"][0], markers["last"][0]
    rep.check(first["offset"] == ends[first["partition"]][0],
              f"the `first` record is not at the start of partition {first['partition']} (offset {first['offset']})")
    rep.check(last["offset"] == ends[last["partition"]][1],
              f"the `last` record is not at the end of partition {last['partition']} (offset {last['offset']})")


def check_ids(rep, records, expected_ids):
    ids = [r["id"] for r in records if r["id"] is not None]
    seen = set(ids)
    dups = len(ids) - len(seen)
    missing = sorted(set(expected_ids) - seen)
    extra = sorted(seen - set(expected_ids))
    rep.check(len(records) == len(expected_ids), f"{len(records)} messages, want {len(expected_ids)} (rows in Postgres)")
    rep.check(not dups and not missing and not extra,
              f"ids: {dups} duplicates, missing {short(missing)}, unexpected {short(extra)}")


def parse_record(rep, msg):
    where = f"p{msg['partition']}@{msg['offset']}"
    try:
        value = json.loads(msg["value"]) if msg["value"] is not None else None
    except (ValueError, UnicodeDecodeError) as e:
        rep.check(False, f"{where}: value is not JSON ({e}): {short(msg['value'])}")
        return None
    if not rep.check(isinstance(value, dict), f"{where}: value is not a JSON object: {short(msg['value'])}"):
        return None
    return value


def key_id(raw_key, schemas):
    """The id the key claims, used only to find the row; the bytes are compared separately."""
    try:
        k = json.loads(raw_key)
        return (k["payload"] if schemas else k)["id"]
    except Exception:
        return None


def check_keyed_message(rep, msg, topic, partitions, by_id, schemas, records, rows_desc):
    """Checks what every message shares: its key names a row, the key bytes are exactly the
    expected JSON, and the partition is Java's murmur2 of them. Records the message in
    `records`. Returns (where, row, parsed value), or None when there is nothing more to check."""
    where = f"p{msg['partition']}@{msg['offset']}"
    value = parse_record(rep, msg)
    rid = key_id(msg["key"], schemas)
    payload = (value or {}).get("payload") if schemas else value
    records.append(dict(msg, id=rid, payload=payload))
    where += f" id={rid}"
    row = by_id.get(rid)
    if not rep.check(row is not None, f"{where}: key {short(msg['key'])} names no row {rows_desc}"):
        return None
    want_key = key_bytes(topic, rid, schemas=schemas)
    rep.check(msg["key"] == want_key, f"{where}: key bytes {short(msg['key'])}, want {short(want_key)}")
    want_p = java_partition(want_key, partitions)
    rep.check(msg["partition"] == want_p, f"{where}: partition {msg['partition']}, Java murmur2 says {want_p}")
    if value is None:
        return None
    return where, row, value


def verify_types(rep, topic, msgs, rows, partitions, db, columns, table=TABLE_NAME):
    by_id = {row[0]: row for row in rows}
    want_schema = envelope_schema(topic, columns)
    want_schema_json = compact(want_schema)
    seen_schemas = {}
    records = []
    for msg in msgs:
        checked = check_keyed_message(rep, msg, topic, partitions, by_id, True, records, "of the table")
        if checked is None:
            continue
        where, row, value = checked
        rep.check(list(value) == ["schema", "payload"], f"{where}: value members {list(value)}, want ['schema', 'payload']")
        schema_json = compact(value.get("schema"))
        if schema_json not in seen_schemas:
            seen_schemas[schema_json] = where
            if schema_json != want_schema_json:
                describe_schema_difference(rep, where, value.get("schema"), want_schema)
        payload = check_payload(rep, where, value.get("payload"), db, table)
        if payload is None or not isinstance(payload.get("after"), dict):
            continue
        after = payload["after"]
        rep.check(list(after) == [c for c, *_ in columns], f"{where}: after members {list(after)}")
        for i, (col, _, convert, kind) in enumerate(columns):
            pg = row[i]
            want = None if pg is None else convert(pg)
            got = after.get(col)
            rep.check(same(kind, want, got), f"{where} column {col}: got {short(got)}, want {short(want)} (Postgres: {short(pg)})")
    rep.check(len(seen_schemas) <= 1, f"{len(seen_schemas)} different value schemas, first at {list(seen_schemas.values())}")
    check_ids(rep, records, list(by_id))
    if records:
        check_snapshot_markers(rep, records)


def describe_schema_difference(rep, where, got, want):
    """Name the first envelope member whose schema differs, rather than dumping 4 KB of JSON."""
    if not isinstance(got, dict):
        rep.check(False, f"{where}: value schema is {short(got)}")
        return
    failed_before = rep.failed
    for key in ("type", "optional", "name", "version"):
        rep.check(got.get(key) == want[key], f"{where}: envelope schema {key} {got.get(key)!r}, want {want[key]!r}")
    got_fields = got.get("fields") if isinstance(got.get("fields"), list) else []
    names = [f.get("field") if isinstance(f, dict) else f for f in got_fields]
    if not rep.check(names == ENVELOPE_FIELDS, f"{where}: envelope members {names}, want {ENVELOPE_FIELDS}"):
        return
    for g, w in zip(got_fields, want["fields"]):
        if compact(g) == compact(w):
            continue
        if w["field"] in ("before", "after"):
            gf = g.get("fields") if isinstance(g.get("fields"), list) else []
            for gc, wc in zip(gf, w["fields"]):
                rep.check(compact(gc) == compact(wc), f"{where}: {w['field']} schema of column {wc['field']}: got {compact(gc)}, want {compact(wc)}")
            rep.check(len(gf) == len(w["fields"]), f"{where}: {w['field']} schema has {len(gf)} columns, want {len(w['fields'])}")
            rest_g = {k: v for k, v in g.items() if k != "fields"}
            rest_w = {k: v for k, v in w.items() if k != "fields"}
            rep.check(compact(rest_g) == compact(rest_w), f"{where}: {w['field']} schema {compact(rest_g)}, want {compact(rest_w)}")
        else:
            rep.check(False, f"{where}: envelope member {w['field']} schema: got {compact(g)}, want {compact(w)}")
    if rep.failed == failed_before:  # nothing above named the difference: it is in the layout
        rep.check(False, f"{where}: value schema differs from Debezium's in member order or extra members")


def decimal_value(v, default_scale):
    """n2 has no declared scale: accept Connect Decimal base64 (scale 3) or Debezium's VariableScaleDecimal."""
    if isinstance(v, str):
        return decode_connect_decimal(v, default_scale)
    if isinstance(v, dict) and set(v) == {"scale", "value"} and type(v["scale"]) is int:
        return decode_connect_decimal(v["value"], v["scale"])
    raise ValueError(f"not a decimal encoding: {short(v)}")


def verify_filtered(rep, topic, msgs, rows, partitions, db):
    by_id = {row[0]: row for row in rows}
    records = []
    for msg in msgs:
        checked = check_keyed_message(rep, msg, topic, partitions, by_id, False, records, "the query selects")
        if checked is None:
            continue
        where, row, value = checked
        rep.check("schema" not in value, f"{where}: value has a schema wrapper, json_schemas defaults to false")
        payload = check_payload(rep, where, value, db)
        if payload is None or not isinstance(payload.get("after"), dict):
            continue
        after = payload["after"]
        rep.check(list(after) == FILTERED_COLUMNS, f"{where}: after members {list(after)}, want {FILTERED_COLUMNS}")
        rid_, t_upper, n2, flag, i4_big = row
        rep.check(same("int", rid_, after.get("id")), f"{where} id: got {short(after.get('id'))}")
        rep.check(same("str", t_upper, after.get("t_upper")), f"{where} t_upper: got {short(after.get('t_upper'))}, want {short(t_upper)}")
        rep.check(same("str", flag, after.get("flag")), f"{where} flag: got {short(after.get('flag'))}, want {short(flag)}")
        rep.check(same("int", i4_big, after.get("i4_big")), f"{where} i4_big: got {short(after.get('i4_big'))}, want {i4_big}")
        got_n2 = after.get("n2")
        try:
            ok = (n2 is None and got_n2 is None) or (n2 is not None and got_n2 is not None and decimal_value(got_n2, 3) == n2)
        except Exception:
            ok = False
        rep.check(ok, f"{where} n2: got {short(got_n2)}, want {n2} (scale 3)")
    check_ids(rep, records, list(by_id))
    if records:
        check_snapshot_markers(rep, records)


# --- Avro through the schema registry (FORMAT AVRO, pipelines avro_types / avro_native) ------
# Each message is decoded by Confluent's AvroDeserializer (the registry client fetches the
# writer schema by the id in the frame), then the decoded Python values are put back into
# JsonConverter's representation, walking the writer schema, so the JSON checks above apply
# unchanged: bytes and Decimals become base64 strings, floats go through json_float, records
# become dicts in field order.

AVRO_OF_CONNECT = {"int8": "int", "int16": "int", "int32": "int", "int64": "long", "float": "float",
                   "double": "double", "boolean": "boolean", "string": "string", "bytes": "bytes",
                   "struct": "record", "array": "array", "map": "map"}
AVRO_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
NATIVE_META = ["__op", "__version", "__source_ts_ms", "__deleted"]


class AvroNames:
    """The named types of a writer schema, so references by name can be followed."""

    def __init__(self, schema):
        self.types = {}
        self.fullnames = {}  # id(schema dict) -> full name, the namespace inherited when absent
        self._collect(schema, None)

    def _collect(self, s, namespace):
        if isinstance(s, list):
            for b in s:
                self._collect(b, namespace)
        elif isinstance(s, dict):
            t = s.get("type")
            if t in ("record", "enum", "fixed"):
                name = s["name"]
                ns = s.get("namespace", namespace)
                full = name if "." in name or not ns else f"{ns}.{name}"
                self.types[full] = s
                self.fullnames[id(s)] = full
                self.types.setdefault(name, s)
                namespace = full.rsplit(".", 1)[0] if "." in full else None
                for f in s.get("fields", []):
                    self._collect(f["type"], namespace)
            elif t in ("array", "map"):
                self._collect(s.get("items", s.get("values")), namespace)
            elif isinstance(t, (dict, list)):
                self._collect(t, namespace)

    def resolve(self, s):
        if isinstance(s, str) and s not in AVRO_PRIMITIVES:
            return self.types.get(s) or next((v for k, v in self.types.items() if k.endswith("." + s)), s)
        if isinstance(s, dict) and isinstance(s.get("type"), (dict, list)):
            return self.resolve(s["type"])
        return s




def avro_to_connect_json(value, schema, names):
    """A decoded Avro value as Kafka Connect's JsonConverter would have written the same datum."""
    s = names.resolve(schema)
    if isinstance(s, list):  # union: Debezium's are null plus one type
        if value is None:
            if "null" not in s:
                raise ValueError(f"null for a union without null: {s}")
            return None
        branches = [b for b in s if b != "null"]
        if len(branches) != 1:
            raise ValueError(f"union with {len(branches)} non-null branches: {short(s)}")
        return avro_to_connect_json(value, branches[0], names)
    if value is None:
        raise ValueError(f"null for non-optional {short(s)}")
    t = s if isinstance(s, str) else s.get("type")
    logical = s.get("logicalType") if isinstance(s, dict) else None
    if logical == "decimal":
        if not isinstance(value, Decimal):
            raise ValueError(f"decimal decoded as {type(value).__name__}")
        return connect_decimal(value, int(s.get("scale", 0)))
    if logical == "date" and isinstance(value, dt.date):
        return epoch_days(value)
    if logical in ("time-millis", "time-micros") and isinstance(value, dt.time):
        us = micros_of_day(value)
        return us // 1000 if logical == "time-millis" else us
    if logical in ("timestamp-millis", "timestamp-micros") and isinstance(value, dt.datetime):
        us = (value - EPOCH_TZ) // MICRO
        return us // 1000 if logical == "timestamp-millis" else us
    if t == "record":
        fields = [f["name"] for f in s["fields"]]
        if not isinstance(value, dict) or list(value) != fields:
            raise ValueError(f"record {names.fullnames.get(id(s))} decoded as {short(value)}")
        return {f["name"]: avro_to_connect_json(value[f["name"]], f["type"], names) for f in s["fields"]}
    if t == "array":
        return [avro_to_connect_json(v, s["items"], names) for v in value]
    if t == "map":
        return {k: avro_to_connect_json(v, s["values"], names) for k, v in value.items()}
    if t in ("bytes", "fixed"):
        return base64.b64encode(bytes(value)).decode()
    if t in ("float", "double"):
        return json_float(float(value))
    if t in ("int", "long"):
        if type(value) is not int:
            raise ValueError(f"{t} decoded as {type(value).__name__}")
        return value
    return value  # boolean, string, enum symbol


def check_avro_field(rep, where, avro_type, connect, names):
    """The Avro schema AvroConverter derives from the column's Connect schema: optional is a
    ["null", T] union, the Avro type and connect.name / connect.parameters / decimal scale."""
    s = avro_type
    if connect.get("optional"):
        if not rep.check(isinstance(s, list) and len(s) == 2 and s[0] == "null",
                         f"{where}: optional field is not a [\"null\", T] union: {short(s)}"):
            return
        s = s[1]
    elif not rep.check(not isinstance(s, list), f"{where}: required field is a union: {short(s)}"):
        return
    s = names.resolve(s)
    t = s if isinstance(s, str) else s.get("type")
    want_t = AVRO_OF_CONNECT[connect["type"]]
    if not rep.check(t == want_t, f"{where}: Avro type {t!r}, want {want_t!r} (Connect {connect['type']})"):
        return
    props = s if isinstance(s, dict) else {}
    name = connect.get("name")
    if t == "record":
        rep.check(names.fullnames.get(id(props)) == name, f"{where}: record {names.fullnames.get(id(props))!r}, want {name!r}")
        fields = props.get("fields", [])
        if rep.check([f["name"] for f in fields] == [f["field"] for f in connect["fields"]],
                     f"{where}: record fields {[f['name'] for f in fields]}"):
            for f, c in zip(fields, connect["fields"]):
                check_avro_field(rep, f"{where}.{f['name']}", f["type"], c, names)
        return
    rep.check(props.get("connect.name") == name, f"{where}: connect.name {props.get('connect.name')!r}, want {name!r}")
    rep.check(props.get("connect.parameters") == connect.get("parameters"),
              f"{where}: connect.parameters {props.get('connect.parameters')!r}, want {connect.get('parameters')!r}")
    if connect["type"] in ("int8", "int16"):
        rep.check(props.get("connect.type") == connect["type"], f"{where}: connect.type {props.get('connect.type')!r}")
    if name == DECIMAL:
        rep.check(props.get("logicalType") == "decimal" and props.get("scale") == int(connect["parameters"]["scale"]),
                  f"{where}: decimal schema {short(props)}")
    else:
        rep.check("logicalType" not in props, f"{where}: unexpected logicalType {props.get('logicalType')!r}")
    if t == "array":
        check_avro_field(rep, where + "[]", s["items"], connect["items"], names)


class AvroReader:
    """Confluent framing checks plus AvroDeserializer decoding, with the writer schemas cached."""

    def __init__(self, registry, topic):
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer

        self.sr = SchemaRegistryClient({"url": registry})
        self.deser = AvroDeserializer(self.sr)
        self.topic = topic
        self.schemas = {}  # id -> (parsed schema, AvroNames)

    def decode(self, rep, where, raw, field):
        """(decoded value, writer schema JSON, AvroNames), or None after a recorded failure."""
        from confluent_kafka.serialization import MessageField, SerializationContext

        if not rep.check(isinstance(raw, bytes) and len(raw) > 5 and raw[0] == 0,
                         f"{where}: {field} is not Confluent-framed (magic byte 0 + schema id): {short(raw)}"):
            return None
        schema_id = int.from_bytes(raw[1:5], "big")
        if schema_id not in self.schemas:
            try:
                parsed = json.loads(self.sr.get_schema(schema_id).schema_str)
            except Exception as e:
                rep.check(False, f"{where}: {field} schema id {schema_id} is not in the registry: {e}")
                return None
            self.schemas[schema_id] = (parsed, AvroNames(parsed))
        rep.check(True, "schema id known")
        parsed, names = self.schemas[schema_id]
        mf = MessageField.KEY if field == "key" else MessageField.VALUE
        try:
            value = self.deser(raw, SerializationContext(self.topic, mf))
        except Exception as e:
            rep.check(False, f"{where}: AvroDeserializer failed on the {field}: {e}")
            return None
        return value, parsed, names

    def check_subjects(self, rep):
        """Subjects by the default TopicNameStrategy, whose latest versions are the ids used."""
        used = set(self.schemas)
        for suffix in ("key", "value"):
            subject = f"{self.topic}-{suffix}"
            try:
                latest = self.sr.get_latest_version(subject)
            except Exception as e:
                rep.check(False, f"registry subject {subject}: {e}")
                continue
            rep.check(latest.schema_id in used, f"subject {subject} latest id {latest.schema_id} is not one the messages use {sorted(used)}")
        rep.check(len(used) == 2, f"{len(used)} schema ids in use ({sorted(used)}), want one key and one value schema")


def verify_avro(rep, topic, msgs, rows, partitions, db, columns, registry, native):
    by_id = {row[0]: row for row in rows}
    reader = AvroReader(registry, topic)
    records = []
    value_schema_checked = False
    for msg in msgs:
        where = f"p{msg['partition']}@{msg['offset']}"
        rep.check(msg["key"] is not None, f"{where}: no key")
        want_p = java_partition(msg["key"] or b"", partitions)
        rep.check(msg["partition"] == want_p, f"{where}: partition {msg['partition']}, Java murmur2 of the key bytes says {want_p}")
        decoded_key = reader.decode(rep, where, msg["key"], "key")
        rid = None
        if decoded_key is not None:
            key, key_schema, key_names = decoded_key
            rid = key.get("id") if isinstance(key, dict) else None
            ks = key_names.resolve(key_schema)
            rep.check(isinstance(ks, dict) and ks.get("type") == "record" and key_names.fullnames.get(id(ks)) == f"{topic}.Key"
                      and [f["name"] for f in ks["fields"]] == ["id"] and ks["fields"][0]["type"] == "long",
                      f"{where}: key schema {short(key_schema)}, want record {topic}.Key {{id: long}}")
        where += f" id={rid}"
        row = by_id.get(rid)
        if not rep.check(row is not None, f"{where}: key names no row of the table"):
            records.append(dict(msg, id=rid, payload={}))
            continue
        rep.check(key == {"id": row[0]}, f"{where}: key {short(key)}, want the primary key {{'id': {row[0]}}}")
        rep.check(msg["value"] is not None, f"{where}: tombstone in a snapshot")
        decoded = reader.decode(rep, where, msg["value"], "value") if msg["value"] is not None else None
        if decoded is None:
            records.append(dict(msg, id=rid, payload={}))
            continue
        value, value_schema, names = decoded
        try:
            converted = avro_to_connect_json(value, value_schema, names)
        except (ValueError, KeyError, TypeError) as e:
            rep.check(False, f"{where}: decoded value does not follow its schema: {e}")
            records.append(dict(msg, id=rid, payload={}))
            continue
        if native:
            records.append(dict(msg, id=rid, payload={"source": {"snapshot": "true"}}))
            after = check_native(rep, where, converted)
            row_schema = names.resolve(value_schema)
        else:
            records.append(dict(msg, id=rid, payload=converted))
            payload = check_payload(rep, where, converted, db)
            after = payload.get("after") if payload else None
            envelope = names.resolve(value_schema)
            rep.check(names.fullnames.get(id(envelope)) == f"{topic}.Envelope", f"{where}: value record {names.fullnames.get(id(envelope))}")
            after_type = next((f["type"] for f in envelope.get("fields", []) if f["name"] == "after"), [])
            row_schema = names.resolve(next((b for b in after_type if b != "null"), {})) if isinstance(after_type, list) else {}
        if not value_schema_checked and isinstance(row_schema, dict):
            value_schema_checked = True
            rep.check(names.fullnames.get(id(row_schema)) == f"{topic}.Value", f"{where}: row record {names.fullnames.get(id(row_schema))}, want {topic}.Value")
            fields = {f["name"]: f["type"] for f in row_schema.get("fields", [])}
            for col, connect, _, _ in columns:
                if rep.check(col in fields, f"{where}: value schema has no field {col}"):
                    check_avro_field(rep, f"{where} schema of {col}", fields[col], connect, names)
        if not isinstance(after, dict):
            continue
        want_members = [c for c, *_ in columns] + (NATIVE_META if native else [])
        rep.check(list(after) == want_members, f"{where}: row members {list(after)}, want {want_members}")
        for i, (col, _, convert, kind) in enumerate(columns):
            pg = row[i]
            want = None if pg is None else convert(pg)
            got = after.get(col)
            rep.check(same(kind, want, got), f"{where} column {col}: got {short(got)}, want {short(want)} (Postgres: {short(pg)})")
    check_ids(rep, records, list(by_id))
    if records and not native:
        check_snapshot_markers(rep, records)
    reader.check_subjects(rep)


def check_native(rep, where, value):
    """The native envelope's metadata on a snapshot row (README, 'The native envelope')."""
    if not rep.check(isinstance(value, dict), f"{where}: value {short(value)} is not a record"):
        return None
    rep.check(list(value)[-4:] == NATIVE_META, f"{where}: value ends with {list(value)[-4:]}, want {NATIVE_META}")
    rep.check(value.get("__op") == "r", f"{where}: __op {value.get('__op')!r}, want 'r'")
    rep.check(value.get("__version") == 0 and type(value.get("__version")) is int, f"{where}: __version {value.get('__version')!r}, want 0")
    ts = value.get("__source_ts_ms")
    rep.check(type(ts) is int and abs(ts / 1000 - time.time()) < 86400, f"{where}: __source_ts_ms {ts!r} is not a recent epoch ms")
    rep.check(value.get("__deleted") is False, f"{where}: __deleted {value.get('__deleted')!r}, want false")
    return value


# --- I/O ------------------------------------------------------------------------------------


def fetch_rows(pg_url, query):
    """Rows of `query`; a callable gets the connection and returns (query, columns)."""
    import psycopg

    with psycopg.connect(pg_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        columns = None
        if callable(query):
            query, columns = query(conn)
        rows = conn.execute(query).fetchall()
        return rows, conn.info.dbname, columns


def consume_all(topic, brokers, timeout_s, expected_count):
    """Every message of `topic`, read from the beginning of each partition until all hit EOF."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"cdcql-e2e-verify-{os.getpid()}-{time.time_ns()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        # noida-db ignores fetch.max.bytes on big backlogs (shared/INFRA.md).
        "receive.message.max.bytes": 2147483647,
    })
    try:
        meta = consumer.list_topics(topic, timeout=15).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise SystemExit(f"topic {topic} does not exist on {brokers}: {meta.error if meta else 'no metadata'}")
        parts = sorted(meta.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        msgs, at_eof = [], set()
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if len(at_eof) == len(parts):
                break
            # Fallback if EOF events never come: everything expected arrived and 5 s passed quietly.
            if len(msgs) >= expected_count and time.monotonic() - quiet_since > 5:
                break
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(m.partition())
                    continue
                raise SystemExit(f"consumer error on {topic}: {m.error()}")
            at_eof.discard(m.partition())
            quiet_since = time.monotonic()
            msgs.append({"partition": m.partition(), "offset": m.offset(), "key": m.key(), "value": m.value()})
        else:
            print(f"warning: stopped reading {topic} after {timeout_s}s with {len(msgs)} messages", file=sys.stderr)
        return msgs, len(parts)
    finally:
        consumer.close()


def verify(topic, pg_url, brokers, mode, partitions, timeout_s, registry=None):
    if mode in ("types", "avro_types", "avro_native"):
        def query(conn):
            specs = table_columns(conn)
            return types_query(specs), specs
        rows, db, columns = fetch_rows(pg_url, query)
    elif mode.startswith("opt_"):
        rows, db, columns = fetch_rows(pg_url, lambda conn: options_columns(conn, mode))
    else:
        rows, db, _ = fetch_rows(pg_url, FILTERED_QUERY)
    msgs, n_parts = consume_all(topic, brokers, timeout_s, len(rows))
    rep = Report(topic, mode)
    rep.check(n_parts == partitions, f"topic has {n_parts} partitions, want {partitions}")
    if mode == "types":
        verify_types(rep, topic, msgs, rows, partitions, db, columns)
    elif mode.startswith("avro_"):
        verify_avro(rep, topic, msgs, rows, partitions, db, columns, registry, native=mode == "avro_native")
    elif mode.startswith("opt_"):
        verify_types(rep, topic, msgs, rows, partitions, db, columns, OPTIONS_TABLE)
    else:
        verify_filtered(rep, topic, msgs, rows, partitions, db)
    print(f"{topic}: {len(msgs)} messages read, {len(rows)} rows expected")
    return rep.finish()


# --- self test ------------------------------------------------------------------------------


def self_test(brokers=None):
    failures = []

    def eq(what, got, want):
        if got != want:
            failures.append(f"{what}: got {got!r}, want {want!r}")

    # Kafka's UtilsTest.testMurmur2 vectors.
    for data, want in [(b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
                       (b"a-little-bit-longer-string", -1486304829),
                       (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971), (b"abc", 479470107)]:
        eq(f"murmur2({data!r})", murmur2(data), want)
    eq("java_partition(foobar, 50)", java_partition(b"foobar", 50), 1357151166 % 50)

    # Reference §3 decimal examples, plus two's complement length boundaries.
    for text, scale, want in [("12.34", 2, "BNI="), ("100.00", 2, "JxA="), ("-1.00", 2, "nA=="), ("0.00", 2, "AA=="),
                              ("1.28", 2, "AIA="), ("0.127", 3, "fw=="), ("-0.128", 3, "gA=="), ("-0.129", 3, "/38="),
                              ("32.768", 3, "AIAA"), ("-32.768", 3, "gAA="), ("1.5", 3, "Bdw="), ("-0.0000000001", 10, "/w==")]:
        eq(f"connect_decimal({text}, {scale})", connect_decimal(Decimal(text), scale), want)
    big = Decimal("9999999999999999999999999999.9999999999")  # 38 digits: beyond the default 28-digit context
    eq("nbig max bytes", len(base64.b64decode(connect_decimal(big, 10))), 16)
    eq("nbig max round trip", decode_connect_decimal(connect_decimal(big, 10), 10), big)
    eq("nbig min round trip", decode_connect_decimal(connect_decimal(-big, 10), 10), -big)
    eq("2^64 unscaled", twos_complement(2**64), b"\x01" + b"\x00" * 8)
    eq("-2^63 unscaled", twos_complement(-(2**63)), b"\x80" + b"\x00" * 7)
    eq("2^63 unscaled", twos_complement(2**63), b"\x00\x80" + b"\x00" * 7)
    try:
        unscaled(Decimal("1.2345"), 3)
        failures.append("unscaled() accepted more fractional digits than the scale")
    except ValueError:
        pass

    # Reference §5 temporal examples.
    eq("Date 2024-01-15", epoch_days(dt.date(2024, 1, 15)), 19737)
    eq("Date 0001-01-01", epoch_days(dt.date(1, 1, 1)), -719162)
    eq("MicroTimestamp", epoch_micros(dt.datetime(2024, 1, 15, 10, 30, 0, 123456)), 1705314600123456)
    eq("MicroTimestamp before 1970", epoch_micros(dt.datetime(1969, 12, 31, 23, 59, 59, 999999)), -1)
    eq("Timestamp ms before 1970", exact_div(epoch_micros(dt.datetime(1969, 12, 31, 23, 59, 59, 999000)), 1000), -1)
    eq("MicroTime 23:59:59.999999", micros_of_day(dt.time(23, 59, 59, 999999)), 86399999999)
    eq("Time(3) 23:59:59.999", exact_div(micros_of_day(dt.time(23, 59, 59, 999000)), 1000), 86399999)
    utc = dt.timezone.utc
    eq("ZonedTimestamp", zoned_timestamp(dt.datetime(2024, 1, 15, 10, 30, 0, 123456, utc), 6), "2024-01-15T10:30:00.123456Z")
    eq("ZonedTimestamp zero fraction", zoned_timestamp(dt.datetime(2024, 1, 15, 10, 30, tzinfo=utc), 6), "2024-01-15T10:30:00.000000Z")
    eq("ZonedTimestamp +05:30", zoned_timestamp(dt.datetime(2100, 3, 1, 5, 0, 0, 1, dt.timezone(dt.timedelta(hours=5, minutes=30))), 6),
       "2100-02-28T23:30:00.000001Z")
    eq("ZonedTimestamp(0)", zoned_timestamp(dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=utc), 0), "2038-01-19T03:14:08Z")
    eq("ZonedTimestamp year 1", zoned_timestamp(dt.datetime(1, 1, 1, tzinfo=utc), 6), "0001-01-01T00:00:00.000000Z")

    # Reference example-key.json, byte for byte.
    eq("key JSON", key_bytes("dbserver1.public.orders", 1, schemas=True, id_type="int32"),
       b'{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,'
       b'"name":"dbserver1.public.orders.Key"},"payload":{"id":1}}')
    eq("key JSON without schema", key_bytes("t", 42, schemas=False), b'{"id":42}')
    eq("Decimal field schema", compact(COLUMNS[7][1]),
       '{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,'
       '"parameters":{"scale":"3","connect.decimal.precision":"12"},"field":"n"}')
    eq("float32 compare", same("float32", 1.100000023841858, 1.1), True)
    eq("float32 compare differs", same("float32", 1.1, 1.2), False)
    eq("bool is not int", same("int", 1, True), False)
    eq("uuid text", str(uuid.UUID("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF")), "ffffffff-ffff-ffff-ffff-ffffffffffff")

    # The rest of the type mapping (reference §5).
    eq("Bits B'101'", bitset_bytes("101"), "BQ==")
    eq("Bits bit 12 of 16", bitset_bytes("0001000000000000"), "ABA=")
    eq("Bits all zero", bitset_bytes("00"), "")
    eq("VariableScaleDecimal 1.50", variable_scale_decimal(Decimal("1.50")), {"scale": 1, "value": "Dw=="})
    eq("VariableScaleDecimal 100", variable_scale_decimal(Decimal("100")), {"scale": 0, "value": "ZA=="})
    eq("VariableScaleDecimal 0.000", variable_scale_decimal(Decimal("0.000")), {"scale": 0, "value": "AA=="})
    eq("MicroDuration 1 mon 2 days 03:04:05.5", micro_duration([0, 1, 2, 3, 4, 5_500_000]), 2813645500000)
    eq("MicroDuration saturates", micro_duration([178000000, 0, 0, 0, 0, 0]), 2**63 - 1)
    eq("Interval 1 mon 2 days 03:04:05.5", interval_iso([0, 1, 2, 3, 4, 5_500_000]), "P0Y1M2DT3H4M5.5S")
    eq("Interval negative", interval_iso([-1, -2, 3, -4, -5, -6_000_001]), "P-1Y-2M3DT-4H-5M-6.000001S")
    eq("Interval zero", interval_iso([0, 0, 0, 0, 0, 0]), "P0Y0M0DT0H0M0S")
    eq("ZonedTime +02", zoned_time(dt.time(10, 30, 0, 123456, dt.timezone(dt.timedelta(hours=2)))), "08:30:00.123456Z")
    eq("ZonedTime wraps", zoned_time(dt.time(23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-14)))), "13:00:00Z")
    for v, want in [(1e7, "1.0E7"), (12.34, "12.34"), (0.001, "0.001"), (1e-4, "1.0E-4"), (100.0, "100.0"),
                    (-0.05, "-0.05"), (123456789.0, "1.23456789E8")]:
        eq(f"Double.toString({v!r})", java_double_str(v), want)
    for v, want in [("0.0000001", "1E-7"), ("0.00000010", "1.0E-7"), ("1.50", "1.50"), ("NaN", "NAN"),
                    ("-Infinity", "NEGATIVE_INFINITY")]:
        eq(f"BigDecimal.toString({v})", decimal_string(Decimal(v)), want)
    eq("Point WKB", point((1.0, 2.0))["wkb"], "AQEAAAAAAAAAAADwPwAAAAAAAABA")
    eq("money HALF_UP", money_half_up(Decimal("-0.05"), 1), "/w==")

    failures += avro_conversion_agrees()
    if brokers:
        failures += librdkafka_agrees(brokers)
    for f in failures:
        print(f"FAIL {f}")
    print(f"self-test: {'0 failed' if not failures else f'{len(failures)} failed'}")
    return not failures


def avro_conversion_agrees():
    """avro_to_connect_json on values fastavro wrote and read back (as AvroDeserializer does)."""
    import io

    import fastavro

    schema = {"type": "record", "name": "Value", "namespace": "t.s", "fields": [
        {"name": "n", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 3,
                                        "connect.name": DECIMAL}], "default": None},
        {"name": "by", "type": "bytes"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "a", "type": {"type": "array", "items": ["null", "long"]}},
        {"name": "m", "type": {"type": "map", "values": "string"}},
        {"name": "v", "type": ["null", {"type": "record", "name": "VariableScaleDecimal", "namespace": "io.debezium.data",
                                        "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}]}]},
        {"name": "v2", "type": ["null", "io.debezium.data.VariableScaleDecimal"]},
        {"name": "snapshot", "type": ["string", "null"], "default": "false"},
    ]}
    datum = {"n": Decimal("-0.128"), "by": b"\x00\xff", "f": float("nan"), "d": float("-inf"), "a": [1, None, -2],
             "m": {"k": "v"}, "v": {"scale": 1, "value": b"\x0f"}, "v2": None, "snapshot": "first"}
    parsed = fastavro.parse_schema(schema)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, datum)
    buf.seek(0)
    decoded = fastavro.schemaless_reader(buf, parsed)
    names = AvroNames(schema)
    got = avro_to_connect_json(decoded, schema, names)
    want = {"n": "gA==", "by": "AP8=", "f": "NaN", "d": "-Infinity", "a": [1, None, -2], "m": {"k": "v"},
            "v": {"scale": 1, "value": "Dw=="}, "v2": None, "snapshot": "first"}
    failures = [] if strictly_equal(got, want) else [f"avro_to_connect_json: got {got!r}, want {want!r}"]
    if names.fullnames.get(id(schema)) != "t.s.Value" or "io.debezium.data.VariableScaleDecimal" not in names.types:
        failures.append(f"AvroNames: {names.fullnames}")
    return failures


def librdkafka_agrees(brokers):
    """librdkafka's `murmur2` partitioner is Java-compatible: our partition for a key must be its."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"cdcql-selftest-murmur2-{os.getpid()}-{time.time_ns()}"
    admin = AdminClient({"bootstrap.servers": brokers})
    admin.create_topics([NewTopic(topic, num_partitions=7, replication_factor=1)])[topic].result(15)
    failures = []
    try:
        producer = Producer({"bootstrap.servers": brokers, "partitioner": "murmur2"})
        keys = [key_bytes(topic, i, schemas=s) for i in range(-50, 250) for s in (True, False)]
        keys += [b"", b"a", b"ab", b"abc", "日本🎉".encode()]
        got = {}

        def delivered(err, msg):
            if err:
                failures.append(f"produce failed: {err}")
            else:
                got[msg.key()] = msg.partition()

        for k in keys:
            producer.produce(topic, key=k, value=b"x", on_delivery=delivered)
        producer.flush(30)
        for k in keys:
            if got.get(k) != java_partition(k, 7):
                failures.append(f"librdkafka put key {k!r} in partition {got.get(k)}, java_partition says {java_partition(k, 7)}")
                break
        if not failures:
            print(f"self-test: librdkafka agrees on {len(got)} keys over 7 partitions")
    finally:
        admin.delete_topics([topic])[topic].result(15)
    return failures


def delete_subjects(registry, prefix):
    """Soft-deletes the registry subjects of a test run (test clean-up)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    sr = SchemaRegistryClient({"url": registry})
    for subject in sr.get_subjects():
        if subject.startswith(prefix):
            sr.delete_subject(subject)
            print(f"deleted subject {subject}")
    return True


def delete_topics(brokers, topics):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient

    ok = True
    admin = AdminClient({"bootstrap.servers": brokers})  # must outlive the futures
    for topic, fut in admin.delete_topics(topics, operation_timeout=30).items():
        try:
            fut.result(30)
            print(f"deleted topic {topic}")
        except Exception as e:  # a topic that was never created is fine
            err = e.args[0] if e.args else None
            if getattr(err, "code", lambda: None)() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                print(f"could not delete topic {topic}: {e}", file=sys.stderr)
                ok = False
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("topic", nargs="?")
    ap.add_argument("pg_url", nargs="?")
    ap.add_argument("brokers_pos", nargs="?", metavar="brokers")
    ap.add_argument("mode", nargs="?", choices=["types", "filtered", "opt_string", "opt_double", "opt_base64",
                                                   "avro_types", "avro_native"])
    ap.add_argument("--partitions", type=int, help="expected partition count (types: 4, filtered: 2)")
    ap.add_argument("--registry", default=os.environ.get("SCHEMA_REGISTRY_URL") or "http://127.0.0.1:8081",
                    help="schema registry for the avro_* modes (default: $SCHEMA_REGISTRY_URL or http://127.0.0.1:8081)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for messages")
    ap.add_argument("--self-test", action="store_true", help="check this script's encoders against known values")
    ap.add_argument("--brokers", help="with --self-test: also check murmur2 against librdkafka on this broker")
    ap.add_argument("--delete-topics", nargs="+", metavar="TOPIC", help="delete these topics on --brokers and exit")
    ap.add_argument("--delete-subjects", metavar="PREFIX", help="delete the subjects starting with PREFIX on --registry and exit")
    args = ap.parse_args()
    if args.delete_subjects:
        return 0 if delete_subjects(args.registry, args.delete_subjects) else 1
    if args.delete_topics:
        if not args.brokers:
            ap.error("--delete-topics needs --brokers")
        return 0 if delete_topics(args.brokers, args.delete_topics) else 1
    if args.self_test:
        return 0 if self_test(args.brokers) else 1
    if not (args.topic and args.pg_url and args.brokers_pos and args.mode):
        ap.error("TOPIC PG_URL BROKERS MODE are required")
    partitions = args.partitions or {"types": 4, "filtered": 2, "avro_types": 3, "avro_native": 3}.get(args.mode, 1)
    ok = verify(args.topic, args.pg_url, args.brokers_pos, args.mode, partitions, args.timeout, args.registry)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
