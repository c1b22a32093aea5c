#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/): valid inputs
of each kind, which libFuzzer mutates. Run it again after a target's input format changes;
the seeds are checked in.

    tests/fuzz/seeds.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def zz(v):
    """An Avro zigzag varint."""
    u = (v << 1) ^ (v >> 63)
    u &= (1 << 64) - 1
    out = bytearray()
    while u & ~0x7F:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def s(text):
    b = text.encode()
    return zz(len(b)) + b


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def codec():
    pv = s("u42") + s("/p/7") + zz(1764000000000) + zz(51234) + zz(812)
    write("codec", "pageview", b"\x00" + pv)
    write("codec", "pageview-negative", b"\x00" + s("") + s("/") + zz(-5) + zz(-(1 << 62)) + zz(-1))
    tree = (zz(7) + b"\x02" + s("name") + zz(2) + s("a") + s("bb") + zz(0) +
            zz(-1) + zz(len(s("k") + b"\x02" + zz(9))) + s("k") + b"\x02" + zz(9) + zz(0) +
            s("nl") + struct.pack("<d", 52.37) + struct.pack("<f", 4.89) + b"abcd" + zz(2) +
            s("\x00\xff") + b"\x01" + zz(3) + zz(0) + zz(2) + s("x"))
    write("codec", "tree", b"\x01" + tree)
    write("codec", "tree-nulls", b"\x01" + zz(0) + b"\x00" + zz(0) + zz(0) + s("") +
          struct.pack("<d", 0.0) + struct.pack("<f", 0.0) + b"\x00\x00\x00\x00" + zz(0) +
          s("") + b"\x00" + zz(0) + b"\x00")
    write("codec", "confluent", b"\x02\x00\x00\x00\x00\x07" + tree)
    write("codec", "resolved", b"\x03" + s("/home") + zz(12) + zz(2) + zz(1) + zz(2) + zz(0) +
          s("bytes"))
    write("codec", "json", b"\x04" + json.dumps(
        {"page": "/a\u0000b", "n": -3, "x": "NaN", "ok": True, "ts": "2026-11-25T09:00:00Z"}).encode())
    write("codec", "json-numbers", b'\x04{"n": 9223372036854775807, "x": -0.0, "ts": 0}')
    write("codec", "text", b"\x05to be or not to be\r\n")


def schema():
    pv = open(os.path.join(HERE, "..", "..", "schemas", "pageview.avsc")).read()
    write("schema", "pageview", pv.encode() + b"\x00" + s("u") + s("/p") + zz(1) + zz(2) + zz(3))
    rich = {"type": "record", "name": "R", "fields": [
        {"name": "u", "type": ["null", "string"], "default": None},
        {"name": "a", "type": {"type": "array", "items": {"type": "map", "values": "int"}}},
        {"name": "f", "type": {"type": "fixed", "name": "F", "size": 3}},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
        {"name": "r", "type": {"type": "record", "name": "In", "fields": [
            {"name": "d", "type": "double", "default": 1.5}]}},
        {"name": "next", "type": ["null", "R"]}]}
    write("schema", "rich", json.dumps(rich).encode() + b"\x00" + b"\x02" + s("x") + zz(0) +
          b"abc" + zz(1) + struct.pack("<d", 2.0) + b"\x00")
    write("schema", "empty-record", b'{"type":"record","name":"E","fields":[]}\x00')


def job():
    base = {"name": "fuzz", "kafka": {"bootstrap.servers": "127.0.0.1:9092"},
            "source": {"topics": ["pv"], "schema": "pageview.avsc"},
            "query": {"where": "bytes > 0 and page in ('/a', '/b')", "group_by": ["page"],
                      "aggregates": [{"fn": "count"}, {"fn": "sum", "field": "bytes"}]},
            "output": {"sink": "kafka", "topic": "out"}, "state": {"dir": "st"}}
    write("job", "kafka", json.dumps(base))
    windowed = json.loads(json.dumps(base))
    windowed["query"] = {"fields": [{"as": "kb", "expr": "bytes / 1024"}],
                         "window": {"time": "ts_ms", "size": "10 minutes", "slide": "5m"},
                         "watermark": {"field": "ts_ms", "delay": "1m", "idle_timeout": "30s"},
                         "group_by": ["page", {"expr": "lower(user_id)", "as": "u"}],
                         "aggregates": [{"fn": "approx_count_distinct", "field": "user_id",
                                         "rsd": 0.02}, {"fn": "last", "field": "kb"}]}
    windowed["output"] = {"sink": "kafka", "topic": "out", "mode": "append", "format": "avro"}
    windowed["trigger"] = {"interval": "500ms", "max_records": 1000}
    write("job", "windowed-avro", json.dumps(windowed))
    files = {"name": "f", "source": {"type": "files", "path": "in", "format": "json",
                                     "fields": {"k": "string", "ts": "timestamp"}},
             "query": {"window": {"time": "ts", "gap": "3s"}, "group_by": "k",
                       "aggregates": [{"fn": "count_distinct", "field": "k"}]},
             "output": {"sink": "file", "path": "out", "mode": "complete"},
             "state": {"dir": "st"}}
    write("job", "files-session", json.dumps(files))
    nested = {"name": "n", "kafka": {"bootstrap.servers": "h:1"},
              "source": {"topics": "t", "schema": "nested.avsc", "confluent_wire": True,
                         "schema_ids": [3], "on_decode_error": {"dead_letter_topic": "dlq"}},
              "query": {"select": ["geo.country", {"expr": "coalesce(n, 0.0) * 2", "as": "n2"}]},
              "output": {"sink": "console", "mode": "append"}, "state": {"dir": "s"}}
    write("job", "nested-select", json.dumps(nested))


def expr():
    for i, text in enumerate([
            "a > 5 and (s = 'x' or s in ('a', 'b')) and not f",
            "length(substring(s, -3, 2)) + abs(a) * 2 - a % 7 / 3.5",
            "coalesce(null, b, a) >= -1.5e3 or t < '2026-11-25T09:00:00Z'",
            "concat(lower(s), upper(`geo.country`), 'it''s') is not null",
            "unix_millis(timestamp_millis(a)) - unix_millis(t) = 0",
            "a not in (1, 2, null) and b <> b"]):
        write("expr", "e%d" % i, text)


if __name__ == "__main__":
    codec()
    schema()
    job()
    expr()
