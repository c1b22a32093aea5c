#!/usr/bin/env python3
"""The benchmark's Spark Structured Streaming peer: count + sum + avg by page over the
Avro page views of --input, update mode, to --output as JSON rows keyed by page, with an
availableNow trigger (Kafka source and sink, spark-avro's from_avro, local[2]).

Prints one JSON line: {"records": N, "secs": S}, S from the query's start to its end
(the JVM and session start-up are not counted)."""
import argparse
import json
import shutil
import sys
import tempfile
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--jars", required=True)
    args = ap.parse_args()
    schema = open(args.schema).read()
    spark = (SparkSession.builder.master("local[2]").appName("bench-spark")
             .config("spark.jars", args.jars)
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.memory", "4g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    ckpt = tempfile.mkdtemp(prefix="bench-spark-")
    rows = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", args.bootstrap)
            .option("subscribe", args.input).option("startingOffsets", "earliest").load()
            .select(from_avro(F.col("value"), schema).alias("v")).select("v.*")
            .groupBy("page").agg(F.count(F.lit(1)).alias("views"),
                                 F.sum("bytes").alias("sum_bytes"),
                                 F.avg("latency_ms").alias("avg_latency_ms")))
    t0 = time.time()
    q = (rows.select(F.col("page").alias("key"),
                     F.to_json(F.struct("page", "views", "sum_bytes", "avg_latency_ms")).alias("value"))
         .writeStream.format("kafka").option("kafka.bootstrap.servers", args.bootstrap)
         .option("topic", args.output).option("checkpointLocation", ckpt)
         .outputMode("update").trigger(availableNow=True).start())
    q.awaitTermination()
    secs = time.time() - t0
    records = sum(p.get("numInputRows", 0) for p in q.recentProgress)
    spark.stop()
    shutil.rmtree(ckpt, ignore_errors=True)
    print(json.dumps({"records": records, "secs": secs}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
