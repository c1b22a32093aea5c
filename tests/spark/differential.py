#!/usr/bin/env python3
"""Differential test: sluice against Spark Structured Streaming itself.

Both read the same Kafka topics (produced here once) with the same query, sluice through
its CLI with the file sink and an available-now trigger, Spark through pyspark with the
Kafka source, foreachBatch and an available-now trigger. The final result tables are
compared row by row: in update mode the last row of each key, in complete mode the last
batch's table, in append mode every row emitted. On the "events" topic the event times
are out of order by less than the watermark delay, so no record is late however either
engine cuts its batches, and both must give the same rows.

The multi-batch cases read one-partition topics in batches of a fixed number of records
(sluice's trigger.max_records, Spark's maxOffsetsPerTrigger), so both cut the same batches,
and are compared batch by batch: late records (some one batch late, which Spark still
counts: it filters late records with the previous batch's watermark and evicts state with
the current one), doubles with NaN, infinities and signed zeros, and long sums that
overflow (both must fail: Spark's ANSI mode with ARITHMETIC_OVERFLOW).

    differential.py --bootstrap HOST:PORT --sluice build/cmd/sluice/sluice \
                    --jars a.jar,b.jar [--only NAME]
"""
import argparse
import collections
import glob
import json
import logging
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
LATE_EVENTS = 1200
BATCH = 40  # records a batch in the multi-batch cases
INT64_MAX = 2**63 - 1

# Declared fields of each JSON topic, for sluice's source and Spark's from_json.
FIELDS = {"events": {"page": "string", "ts": "timestamp", "n": "long"},
          "late": {"page": "string", "ts": "timestamp", "n": "long"},
          "dbl": {"k": "string", "g": "double", "d": "double"},
          "big": {"k": "string", "x": "long"}}


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


def produce_multi_batch(p, topics, rng):
    """The one-partition topics of the multi-batch cases."""
    # Late: 25 ms of event time a record (a batch of 40 is 1 s), every 9th record behind
    # by 1 to 16 s, so with a delay of 3 s many fall in the batch after their window
    # closed to the watermark, and some later still.
    for i in range(LATE_EVENTS):
        ts = BASE + i * 25
        if i % 9 == 4:
            ts -= rng.randrange(1000, 16000)
        rec = {"page": "p%d" % (i // 30 % 3), "ts": ts, "n": rng.randrange(0, 100)}
        p.produce(topics["late"], value=json.dumps(rec).encode(), partition=0)
    # Doubles: NaN, infinities and signed zeros, as the strings Spark's JSON reader and
    # sluice's both take; min and max see every order across batches of 2.
    specials = ["NaN", "Infinity", "-Infinity", 1.5, -7.25, 0.5, "NaN", 3.0]
    keys = ["NaN", 0.0, -0.0, 2.5, "Infinity", -0.0, "NaN", 0.0]
    for i in range(48):
        rec = {"k": "k%d" % (i % 3), "g": keys[i % len(keys)], "d": specials[(i * 5) % 8]}
        p.produce(topics["dbl"], value=json.dumps(rec).encode(), partition=0)
    # Longs near the top of their range: a sum over them overflows a long.
    for i in range(10):
        rec = {"k": "a" if i % 2 else "b", "x": INT64_MAX - i * 1000}
        p.produce(topics["big"], value=json.dumps(rec).encode(), partition=0)


def produce(bootstrap, topics):
    """Writes the input: JSON events (page, ts, n; every tenth without n), text lines, and
    the multi-batch cases' topics."""
    events_topic, lines_topic = topics["events"], topics["lines"]
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
    produce_multi_batch(p, topics, rng)
    if p.flush(60):
        raise SystemExit("input not delivered")


# ---- the queries, as sluice job members and as Spark DataFrames ----

def spark_json(spark, bootstrap, topic, fields, per_batch=None):
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType
    types = {"string": StringType(), "long": LongType(), "timestamp": LongType(),
             "double": DoubleType()}
    schema = StructType([StructField(n, types[t]) for n, t in fields.items()])
    reader = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
              .option("subscribe", topic).option("startingOffsets", "earliest"))
    if per_batch:
        reader = reader.option("maxOffsetsPerTrigger", per_batch)
    df = (reader.load().select(F.from_json(F.col("value").cast("string"), schema).alias("r"))
          .select("r.*"))
    return df.withColumn("et", F.expr("timestamp_millis(ts)")) if "ts" in fields else df


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


def q_late_tumbling(df, F):
    return windowed(df.withWatermark("et", "3 seconds"), F.window("et", "4 seconds"),
                    [F.count(F.lit(1)).alias("count"), F.sum("n").alias("sum_n")])


def q_late_session(df, F):
    return windowed(df.withWatermark("et", "3 seconds"), F.session_window("et", "2 seconds"),
                    [F.count(F.lit(1)).alias("count")])


def q_dbl_minmax(df, F):
    return df.groupBy("k").agg(F.min("d").alias("min_d"), F.max("d").alias("max_d"),
                               F.count(F.lit(1)).alias("count"))


def q_dbl_keys(df, F):
    return df.groupBy("g").count()


def q_big_sum(df, F):
    return df.groupBy("k").agg(F.sum("x").alias("sum_x"))


def q_big_avg(df, F):
    return df.groupBy("k").agg(F.avg("x").alias("avg_x"), F.max("x").alias("max_x"))


WINDOW = {"time": "ts"}
# Tumbling windows of late data (compared batch by batch, in update and in append mode).
LATE_TUMBLING = {"window": dict(WINDOW, size="4s"), "watermark": {"field": "ts", "delay": "3s"},
                 "group_by": "page",
                 "aggregates": [{"fn": "count"}, {"fn": "sum", "field": "n"}]}
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
    # Multi-batch, compared batch by batch.
    {"name": "late-update", "topic": "late", "mode": "update", "per_batch": BATCH,
     "keys": ["window_start", "page"], "sluice": LATE_TUMBLING, "spark": q_late_tumbling},
    {"name": "late-append", "topic": "late", "mode": "append", "per_batch": BATCH,
     "keys": ["window_start", "page"], "sluice": LATE_TUMBLING, "spark": q_late_tumbling},
    {"name": "late-session", "topic": "late", "mode": "append", "per_batch": BATCH,
     "keys": ["window_start", "page"],
     "sluice": {"window": dict(WINDOW, gap="2s"), "watermark": {"field": "ts", "delay": "3s"},
                "group_by": "page", "aggregates": [{"fn": "count"}]},
     "spark": q_late_session},
    {"name": "double-min-max", "topic": "dbl", "mode": "update", "per_batch": 2, "keys": ["k"],
     "sluice": {"group_by": "k", "aggregates": [
         {"fn": "min", "field": "d"}, {"fn": "max", "field": "d"}, {"fn": "count"}]},
     "spark": q_dbl_minmax},
    {"name": "double-keys", "topic": "dbl", "mode": "update", "per_batch": 3, "keys": ["g"],
     "sluice": {"group_by": "g", "aggregates": [{"fn": "count"}]}, "spark": q_dbl_keys},
    {"name": "long-sum-overflow", "topic": "big", "mode": "update", "per_batch": 3,
     "keys": ["k"], "expect_error": ("ARITHMETIC_OVERFLOW", "beyond a long's range"),
     "sluice": {"group_by": "k", "aggregates": [{"fn": "sum", "field": "x"}]},
     "spark": q_big_sum},
    {"name": "long-avg-large", "topic": "big", "mode": "update", "per_batch": 3, "keys": ["k"],
     "sluice": {"group_by": "k", "aggregates": [{"fn": "avg", "field": "x"},
                                                 {"fn": "max", "field": "x"}]},
     "spark": q_big_avg},
]


# ---- running each side ----

def run_sluice(q, args, topics, work):
    """The batches sluice's file sink wrote; or the error text, for a query that fails."""
    out = os.path.join(work, "sluice-" + q["name"])
    source = ({"topics": topics["lines"], "format": "text"} if q["topic"] == "lines" else
              {"topics": topics[q["topic"]], "format": "json", "fields": FIELDS[q["topic"]]})
    trigger = {"available_now": True}
    if q.get("per_batch"):
        # Batches end at max_records only, never at the interval, so they are Spark's.
        trigger.update(max_records=q["per_batch"], interval="10m")
    job = {"name": "diff-%s-%d" % (q["name"], os.getpid()),
           "kafka": {"bootstrap.servers": args.bootstrap},
           "source": source, "query": q["sluice"],
           "trigger": trigger,
           "output": {"sink": "file", "path": out, "mode": q["mode"]},
           "state": {"dir": os.path.join(work, "state-" + q["name"])}}
    path = os.path.join(work, q["name"] + ".json")
    with open(path, "w") as f:
        json.dump(job, f)
    r = subprocess.run([args.sluice, "run", "-q", path], capture_output=True, text=True,
                       timeout=300)
    if r.returncode and q.get("expect_error"):
        return r.stderr
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
        df = spark_json(spark, args.bootstrap, topics[q["topic"]], FIELDS[q["topic"]],
                        q.get("per_batch"))
    batches = []

    def collect(batch_df, batch_id):
        rows = [r.asDict() for r in batch_df.collect()]
        if rows or q["mode"] != "complete":
            batches.append(rows)

    writer = q["spark"](df, F).writeStream.outputMode(q["mode"])
    # A query that must fail writes nowhere: failing inside foreachBatch's Python callback
    # would print the callback's traceback besides.
    writer = writer.format("noop") if q.get("expect_error") else writer.foreachBatch(collect)
    query = (writer.option("checkpointLocation", os.path.join(work, "spark-ckpt-" + q["name"]))
             .trigger(availableNow=True).start())
    quiet = q.get("expect_error")
    if quiet:  # the failure is the expected outcome: no stack traces for it
        spark.sparkContext.setLogLevel("OFF")
        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL + 1)
    try:
        query.awaitTermination()
    except Exception as e:  # StreamingQueryException
        if quiet:
            return str(e)
        raise
    finally:
        if quiet:
            spark.sparkContext.setLogLevel("ERROR")
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
            latest[tuple(str(num(r[k])) for k in q["keys"])] = r
    return list(latest.values())


NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def num(v):
    """A JSON value as a number: the strings sluice writes for non-finite doubles too."""
    return NON_FINITE.get(v, v) if isinstance(v, str) else v


def same(a, b):
    a, b = num(a), num(b)
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def compare(q, mine, theirs):
    """Problems found, as lines; empty when the tables are equal."""
    key = lambda r: tuple(str(num(r.get(k))) for k in q["keys"])
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


def compare_batches(q, mine, theirs):
    """Batch by batch: the same rows in each batch that emitted any (both cut the same
    batches; Spark also runs batches that emit nothing, sluice writes no file for them)."""
    mine = [b for b in mine if b]
    theirs = [b for b in theirs if b]
    problems = []
    if len(mine) != len(theirs):
        problems.append("%d batches with rows in sluice, %d in Spark" % (len(mine), len(theirs)))
    for i, (a, b) in enumerate(zip(mine, theirs)):
        problems += ["batch %d: %s" % (i + 1, p) for p in compare(q, a, b)]
    late = sum(1 for b in theirs for r in b)
    if not problems and late == 0:
        problems.append("no rows at all: the query tests nothing")
    return problems


def failed_alike(q, mine, theirs):
    """Both must have failed, each with its own words for the overflow."""
    spark_word, sluice_word = q["expect_error"]
    problems = []
    if not isinstance(theirs, str) or spark_word not in theirs:
        problems.append("Spark did not fail with %s: %s" % (spark_word, str(theirs)[:300]))
    if not isinstance(mine, str) or sluice_word not in mine:
        problems.append("sluice did not fail with \"%s\": %s" % (sluice_word, str(mine)[:300]))
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
    topics = {t: "diff-%s-%s" % (t, suffix) for t in ("events", "lines", "late", "dbl", "big")}
    create_topics(args.bootstrap, {topics["events"]: 3, topics["lines"]: 2, topics["late"]: 1,
                                   topics["dbl"]: 1, topics["big"]: 1})
    produce(args.bootstrap, topics)

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
        mine_b = run_sluice(q, args, topics, work)
        t1 = time.time()
        theirs_b = run_spark(spark, q, args, topics, work)
        t2 = time.time()
        if q.get("expect_error"):
            mine, theirs = [], []
            problems = failed_alike(q, mine_b, theirs_b)
        elif q.get("per_batch"):
            mine, theirs = final_table(q, mine_b), final_table(q, theirs_b)
            problems = compare_batches(q, mine_b, theirs_b)
        else:
            mine, theirs = final_table(q, mine_b), final_table(q, theirs_b)
            problems = compare(q, mine, theirs)
        print("%-16s %-8s sluice %4d rows (%.1f s), Spark %4d rows (%.1f s): %s" % (
            q["name"], q["mode"], len(mine), t1 - t0, len(theirs), t2 - t1,
            "same" if not problems else "%d difference(s)" % len(problems)), flush=True)
        if not mine and not q.get("expect_error"):
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
