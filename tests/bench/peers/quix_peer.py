#!/usr/bin/env python3
"""The benchmark's Quix Streams peer: count + sum + avg by page over the Avro page views
of --input (decoded with fastavro), grouped by page (Quix repartitions through a topic of
its own), exactly-once, each update to --output as a JSON row keyed by page. It stops
once it has folded --records records.

Prints one JSON line: {"records": N, "secs": S}, S from the first record decoded to the
end of the run (the final commit included)."""
import argparse
import io
import json
import shutil
import sys
import tempfile
import time

import fastavro
from quixstreams import Application


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--app", required=True, help="consumer group, in its internal topics' names")
    args = ap.parse_args()
    schema = fastavro.parse_schema(json.load(open(args.schema)))
    state = tempfile.mkdtemp(prefix="bench-quix-")
    app = Application(broker_address=args.bootstrap,
                      consumer_group=args.app,
                      auto_offset_reset="earliest", processing_guarantee="exactly-once",
                      state_dir=state, loglevel="WARNING")
    src = app.topic(args.input, value_deserializer="bytes", key_deserializer="bytes")
    out = app.topic(args.output, value_serializer="json", key_serializer="str")
    first = [None]
    folded = [0]

    def decode(value):
        if first[0] is None:
            first[0] = time.time()
        r = fastavro.schemaless_reader(io.BytesIO(value), schema)
        return {"page": r["page"], "bytes": r["bytes"], "latency_ms": r["latency_ms"]}

    def fold(v, st):
        a = st.get("a", [0, 0, 0])
        a[0] += 1
        a[1] += v["bytes"]
        a[2] += v["latency_ms"]
        st.set("a", a)
        folded[0] += 1
        if folded[0] == args.records:
            app.stop()
        return {"page": v["page"], "views": a[0], "sum_bytes": a[1],
                "avg_latency_ms": a[2] / a[0]}

    sdf = app.dataframe(src).apply(decode).group_by("page", value_deserializer="json")
    sdf.apply(fold, stateful=True).to_topic(out)
    app.run()
    secs = time.time() - (first[0] or time.time())
    shutil.rmtree(state, ignore_errors=True)
    print(json.dumps({"records": folded[0], "secs": secs}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
