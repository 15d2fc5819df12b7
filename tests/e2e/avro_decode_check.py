#!/usr/bin/env python3
"""Independent check of cdcql's Avro messages with fastavro (no Kafka, no registry).

    avro_decode_check.py CASES.json
    avro_decode_check.py --self-test

CASES.json: {"schemas": {"<id>": <Avro schema>}, "messages": [{"name": str,
"bytes": "<hex>" | null, "expected": "<Kafka Connect JSON payload, as text>" | null}]}
(the payload is text so that its field order survives the writer's JSON library)

Each message must be Confluent's wire format (magic byte 0, 4-byte big-endian schema id of a
schema in "schemas", then one Avro datum and nothing more); fastavro's schemaless_reader decodes
the datum with that schema. The decoded value is turned into the form Kafka Connect's
JsonConverter gives the same data (bytes and decimals as base64 of the unscaled two's-complement
integer, see shared/reference/debezium-format.md §3) and must equal "expected". A null "bytes"
is a tombstone and must go with a null "expected".

Prints `N passed, M failed` and exits 1 with the mismatches when anything differs; exits 2 when
fastavro is not installed (the caller decides whether that is a skip).
"""
import base64
import io
import json
import struct
import sys
from decimal import Decimal

try:
    import fastavro
except ImportError:  # pragma: no cover - reported to the caller
    print("fastavro is not installed", file=sys.stderr)
    sys.exit(2)


def unscaled_bytes(d: Decimal) -> bytes:
    """Java BigInteger.toByteArray() of the unscaled value: minimal big-endian two's complement."""
    sign, digits, exponent = d.as_tuple()
    n = int("".join(map(str, digits)) or "0")
    if sign:
        n = -n
    bits = n.bit_length() if n >= 0 else (-n - 1).bit_length()
    return n.to_bytes(bits // 8 + 1, "big", signed=True)


def connect_json(v):
    """A decoded Avro value in JsonConverter's payload form."""
    if isinstance(v, Decimal):
        return base64.b64encode(unscaled_bytes(v)).decode()
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, dict):
        return {k: connect_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [connect_json(x) for x in v]
    return v


def decode(message: bytes, schemas: dict):
    if len(message) < 5:
        raise ValueError(f"{len(message)} bytes is shorter than the 5-byte Confluent header")
    magic, schema_id = struct.unpack(">bI", message[:5])
    if magic != 0:
        raise ValueError(f"magic byte {magic}, expected 0")
    if schema_id not in schemas:
        raise ValueError(f"schema id {schema_id} is not one of {sorted(schemas)}")
    body = io.BytesIO(message[5:])
    value = fastavro.schemaless_reader(body, schemas[schema_id])
    rest = body.read()
    if rest:
        raise ValueError(f"{len(rest)} bytes left after the datum: {rest.hex()}")
    return value


def check(cases: dict) -> list:
    schemas = {int(k): fastavro.parse_schema(s) for k, s in cases["schemas"].items()}
    failures = []
    for m in cases["messages"]:
        name, raw, expected = m["name"], m["bytes"], m["expected"]
        if isinstance(expected, str):
            expected = json.loads(expected)
        if raw is None or expected is None:
            if raw is not None or expected is not None:
                failures.append(f"{name}: bytes {raw!r} but expected {expected!r}")
            continue
        try:
            got = connect_json(decode(bytes.fromhex(raw), schemas))
        except Exception as e:  # any decoding problem is a failure of the writer
            failures.append(f"{name}: cannot decode: {e}")
            continue
        if got != expected:
            failures.append(f"{name}:\n  decoded  {json.dumps(got)}\n  expected {json.dumps(expected)}")
        elif list(got) != list(expected):
            failures.append(f"{name}: field order {list(got)} != {list(expected)}")
    return failures


def self_test():
    """The checker itself must accept a hand-made message and reject damaged ones."""
    schema = {"type": "record", "name": "K", "fields": [
        {"name": "id", "type": "int"},
        {"name": "amount", "type": ["null", {"type": "bytes", "logicalType": "decimal",
                                             "precision": 10, "scale": 2}], "default": None}]}
    # id 1 → 02; amount branch 1, 2 bytes 04 d2 (12.34)
    good = "0000000007" + "02" + "02" + "04" + "04d2"
    cases = {"schemas": {"7": schema}, "messages": [
        {"name": "good", "bytes": good, "expected": {"id": 1, "amount": "BNI="}}]}
    assert check(cases) == [], check(cases)
    cases["messages"][0]["expected"] = {"id": 1, "amount": "BNM="}
    assert check(cases), "a wrong value not detected"
    cases["messages"][0]["expected"] = {"amount": "BNI=", "id": 1}
    assert check(cases), "a wrong field order not detected"
    cases["messages"][0]["expected"] = {"id": 1, "amount": "BNI="}
    for bad, why in [(good + "00", "trailing byte"), ("01" + good[2:], "magic"),
                     (good[:-2], "truncated decimal")]:
        cases["messages"][0]["bytes"] = bad
        assert check(cases), f"{why} not detected"
    assert base64.b64encode(unscaled_bytes(Decimal("-1.28"))).decode() == "gA=="
    assert base64.b64encode(unscaled_bytes(Decimal("1.28"))).decode() == "AIA="
    print("self-test passed")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    failures = check(cases)
    n = len(cases["messages"])
    print(f"{n - len(failures)} passed, {len(failures)} failed")
    for f in failures[:20]:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
