#!/usr/bin/env python3
"""Differential test: sluice against Spark Structured Streaming itself.

Both read the same Kafka topics (produced here once) with the same query, sluice through
its CLI with the file sink and an available-now trigger, Spark through pyspark with the
Kafka source, foreachBatch and an available-now trigger. The final result tables are
compared row by row: in update mode the last row of each key, in complete mode the last
batch's table, in append mode every row emitted. The input's event times are out of
order by less than the watermark delay, so no record is late however either engine cuts
its batches, and both must give the same rows.

    differential.py --bootstrap HOST:PORT --sluice build/cmd/sluice/sluice \
                    --jars a.jar,b.jar [--only NAME]
"""
import argparse
import collections
import glob
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

BASE = 1700000000000  # event times start here, in epoch ms
PAGES = 7
EVENTS = 6000
DISORDER_MS = 1500  # less than every watermark delay below


def create_topics(bootstrap, topics):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, num_partitions=p, replication_factor=1)
                                   for t, p in topics.items()])
    for f in futures.values():
        f.result(30)
    deadline = time.time() + 30
    while time.time() < deadline:
        md = admin.list_topics(timeout=10)
        if all(t in md.topics and not md.topics[t].error for t in topics):
            return
        time.sleep(0.2)
    raise SystemExit("topics did not appear")


def produce(bootstrap, events_topic, lines_topic):
    """Writes the input: JSON events (page, ts, n; every tenth without n) and text lines."""
    rng = random.Random(20261125)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(EVENTS):
        ts = BASE + i * 25 + rng.randrange(DISORDER_MS)
        # Bursts of one page (1 s each, a page's next burst 7 s later), so sessions
        # (gap 3 s) open and close; now and then a record of another page.
        page = (i // 40) % PAGES if i % 50 else rng.randrange(PAGES)
        rec = {"page": "p%d" % page, "ts": ts}
        if i % 10:
            rec["n"] = rng.randrange(-50, 1000)
        p.produce(events_topic, key=rec["page"].encode(), value=json.dumps(rec).encode())
        if i % 1000 == 0:
            p.poll(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis"]
    for i in range(3000):
        line = " ".join(rng.choice(words) for _ in range(rng.randrange(0, 9)))
        p.produce(lines_topic, value=line.encode())
    if p.flush(60):
        raise SystemExit("input not delivered")


# ---- the queries, as sluice job members and as Spark DataFrames ----

def spark_events(spark, bootstrap, topic):
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType
    schema = StructType([StructField("page", StringType()), StructField("ts", LongType()),
                         StructField("n", LongType())])
    raw = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
           .option("subscribe", topic).option("startingOffsets", "earliest").load())
    return (raw.select(F.from_json(F.col("value").cast("string"), schema).alias("r"))
            .select("r.*").withColumn("et", F.expr("timestamp_millis(ts)")))


def iso(col):
    from pyspark.sql import functions as F
    return F.date_format(col, "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")


def windowed(df, w, aggs):
    from pyspark.sql import functions as F
    return (df.groupBy(w.alias("w"), "page").agg(*aggs)
            .select(iso(F.col("w.start")).alias("window_start"),
                    iso(F.col("w.end")).alias("window_end"), "*").drop("w"))


def q_count(df, F):
    return df.groupBy("page").count()


def q_stats(df, F):
    return df.groupBy("page").agg(F.sum("n").alias("sum_n"), F.min("n").alias("min_n"),
                                  F.max("n").alias("max_n"), F.avg("n").alias("avg_n"))


def q_tumbling(df, F):
    return windowed(df.withWatermark("et", "5 seconds"), F.window("et", "10 seconds"),
                    [F.count(F.lit(1)).alias("count")])


def q_hopping(df, F):
    return windowed(df.withWatermark("et", "5 seconds"),
                    F.window("et", "10 seconds", "4 seconds"),
                    [F.count(F.lit(1)).alias("count"), F.sum("n").alias("sum_n")])


def q_session(df, F):
    return windowed(df.withWatermark("et", "2 seconds"), F.session_window("et", "3 seconds"),
                    [F.count(F.lit(1)).alias("count"), F.max("n").alias("max_n")])


def q_lines(df, F):
    return df.groupBy(F.length("value").alias("len")).count()


WINDOW = {"time": "ts"}
QUERIES = [
    {"name": "count-by-key", "topic": "events", "mode": "update", "keys": ["page"],
     "sluice": {"group_by": "page", "aggregates": [{"fn": "count"}]}, "spark": q_count},
    {"name": "sum-min-max-avg", "topic": "events", "mode": "update", "keys": ["page"],
     "sluice": {"group_by": "page", "aggregates": [
         {"fn": "sum", "field": "n"}, {"fn": "min", "field": "n"}, {"fn": "max", "field": "n"},
         {"fn": "avg", "field": "n"}]}, "spark": q_stats},
    {"name": "tumbling-update", "topic": "events", "mode": "update",
     "keys": ["window_start", "page"],
     "sluice": {"window": dict(WINDOW, size="10s"),
                "watermark": {"field": "ts", "delay": "5s"},
                "group_by": "page", "aggregates": [{"fn": "count"}]}, "spark": q_tumbling},
    {"name": "tumbling-append", "topic": "events", "mode": "append",
     "keys": ["window_start", "page"],
     "sluice": {"window": dict(WINDOW, size="10s"),
                "watermark": {"field": "ts", "delay": "5s"},
                "group_by": "page", "aggregates": [{"fn": "count"}]}, "spark": q_tumbling},
    {"name": "hopping-update", "topic": "events", "mode": "update",
     "keys": ["window_start", "page"],
     "sluice": {"window": dict(WINDOW, size="10s", slide="4s"),
                "watermark": {"field": "ts", "delay": "5s"},
                "group_by": "page",
                "aggregates": [{"fn": "count"}, {"fn": "sum", "field": "n"}]},
     "spark": q_hopping},
    {"name": "session-append", "topic": "events", "mode": "append",
     "keys": ["window_start", "page"],
     "sluice": {"window": dict(WINDOW, gap="3s"),
                "watermark": {"field": "ts", "delay": "2s"},
                "group_by": "page",
                "aggregates": [{"fn": "count"}, {"fn": "max", "field": "n"}]},
     "spark": q_session},
    {"name": "complete-count", "topic": "events", "mode": "complete", "keys": ["page"],
     "sluice": {"group_by": "page", "aggregates": [{"fn": "count"}]}, "spark": q_count},
    {"name": "line-length", "topic": "lines", "mode": "complete", "keys": ["len"],
     "sluice": {"group_by": [{"expr": "length(value)", "as": "len"}],
                "aggregates": [{"fn": "count"}]}, "spark": q_lines},
]


# ---- running each side ----

def run_sluice(q, args, topics, work):
    out = os.path.join(work, "sluice-" + q["name"])
    source = ({"topics": topics["lines"], "format": "text"} if q["topic"] == "lines" else
              {"topics": topics["events"], "format": "json",
               "fields": {"page": "string", "ts": "timestamp", "n": "long"}})
    job = {"name": "diff-%s-%d" % (q["name"], os.getpid()),
           "kafka": {"bootstrap.servers": args.bootstrap},
           "source": source, "query": q["sluice"],
           "trigger": {"available_now": True},
           "output": {"sink": "file", "path": out, "mode": q["mode"]},
           "state": {"dir": os.path.join(work, "state-" + q["name"])}}
    path = os.path.join(work, q["name"] + ".json")
    with open(path, "w") as f:
        json.dump(job, f)
    r = subprocess.run([args.sluice, "run", "-q", path], capture_output=True, text=True,
                       timeout=300)
    if r.returncode:
        raise SystemExit("sluice %s failed: %s" % (q["name"], r.stderr))
    batches = []
    for name in sorted(glob.glob(os.path.join(out, "batch-*.jsonl"))):
        with open(name) as f:
            batches.append([json.loads(line) for line in f])
    return batches


def run_spark(spark, q, args, topics, work):
    from pyspark.sql import functions as F
    if q["topic"] == "lines":
        df = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", args.bootstrap)
              .option("subscribe", topics["lines"]).option("startingOffsets", "earliest")
              .load().select(F.col("value").cast("string").alias("value")))
    else:
        df = spark_events(spark, args.bootstrap, topics["events"])
    batches = []

    def collect(batch_df, batch_id):
        rows = [r.asDict() for r in batch_df.collect()]
        if rows or q["mode"] != "complete":
            batches.append(rows)

    query = (q["spark"](df, F).writeStream.outputMode(q["mode"]).foreachBatch(collect)
             .option("checkpointLocation", os.path.join(work, "spark-ckpt-" + q["name"]))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    return batches


def final_table(q, batches):
    """The rows a consumer of the output ends up with."""
    if q["mode"] == "complete":
        return batches[-1] if batches else []
    if q["mode"] == "append":
        return [r for b in batches for r in b]
    latest = collections.OrderedDict()
    for b in batches:
        for r in b:
            latest[tuple(r[k] for k in q["keys"])] = r
    return list(latest.values())


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def compare(q, mine, theirs):
    """Problems found, as lines; empty when the tables are equal."""
    key = lambda r: tuple(str(r.get(k)) for k in q["keys"])
    problems = []
    by_key = collections.defaultdict(list)
    for r in theirs:
        by_key[key(r)].append(r)
    for r in mine:
        others = by_key.get(key(r))
        if not others:
            problems.append("only in sluice: %s" % json.dumps(r, sort_keys=True))
            continue
        o = others.pop(0)
        cols = set(r) | set(o)
        diff = [c for c in sorted(cols) if not same(r.get(c), o.get(c))]
        if diff:
            problems.append("differs in %s: sluice %s, Spark %s" % (
                ", ".join(diff), json.dumps(r, sort_keys=True), json.dumps(o, sort_keys=True)))
    for rows in by_key.values():
        for o in rows:
            problems.append("only in Spark: %s" % json.dumps(o, sort_keys=True, default=str))
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--jars", required=True)
    ap.add_argument("--only")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-diff-")
    suffix = "%d-%d" % (os.getpid(), int(time.time()))
    topics = {"events": "diff-events-" + suffix, "lines": "diff-lines-" + suffix}
    create_topics(args.bootstrap, {topics["events"]: 3, topics["lines"]: 2})
    produce(args.bootstrap, topics["events"], topics["lines"])

    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("sluice-differential")
             .config("spark.jars", args.jars)
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    failed = 0
    for q in QUERIES:
        if args.only and q["name"] != args.only:
            continue
        t0 = time.time()
        mine = final_table(q, run_sluice(q, args, topics, work))
        t1 = time.time()
        theirs = final_table(q, run_spark(spark, q, args, topics, work))
        t2 = time.time()
        problems = compare(q, mine, theirs)
        print("%-16s %-8s sluice %4d rows (%.1f s), Spark %4d rows (%.1f s): %s" % (
            q["name"], q["mode"], len(mine), t1 - t0, len(theirs), t2 - t1,
            "same" if not problems else "%d difference(s)" % len(problems)), flush=True)
        if not mine:
            problems.append("no rows at all: the query tests nothing")
        for p in problems[:20]:
            print("    " + p)
        failed += bool(problems)
    spark.stop()
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for f in admin.delete_topics(list(topics.values())).values():
        try:
            f.result(30)
        except Exception:
            pass
    shutil.rmtree(work, ignore_errors=True)
    print("differential: %d of %d query shapes differ" % (
        failed, sum(1 for q in QUERIES if not args.only or q["name"] == args.only)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
