#!/usr/bin/env bash
# Spark Structured Streaming for the differential test (tests/spark/differential.py):
# pyspark from PyPI in a virtual environment and Spark's Kafka connector from Maven
# Central, both cached under ~/.cache/sluice (SLUICE_CACHE) so a second run fetches
# nothing. Java 17 (the machine's default) runs Spark 4.
#
#   tests/spark/spark.sh fetch     install what is missing; prints nothing on success
#   tests/spark/spark.sh python    prints the virtual environment's python
#   tests/spark/spark.sh jars      prints the connector's jars, comma-separated
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
spark_version=$(sed -n 's:.*<spark.version>\(.*\)</spark.version>.*:\1:p' "$here/pom.xml")
cache=${SLUICE_CACHE:-$HOME/.cache/sluice}
venv=$cache/spark-$spark_version/venv
jars=$cache/spark-$spark_version/jars
# What the connector needs beyond pyspark's jars (the others it lists, Hadoop and Scala
# among them, pyspark already has in its own versions).
wanted='spark-sql-kafka-0-10_|spark-token-provider-kafka-0-10_|kafka-clients-|commons-pool2-|spark-avro_'

fetch() {
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyspark, confluent_kafka' 2>/dev/null; then
        echo "spark.sh: installing pyspark $spark_version into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "pyspark==$spark_version" \
            "confluent-kafka>=2.3"
    fi
    # The benchmark's Python peers (tests/bench/peers) share the environment.
    if [ -n "${SPARK_SH_PEERS:-}" ] && ! "$venv/bin/python" -c 'import quixstreams, fastavro' 2>/dev/null; then
        echo "spark.sh: installing quixstreams and fastavro into $venv" >&2
        "$venv/bin/pip" install -q --disable-pip-version-check "quixstreams>=3" "fastavro>=1.9"
    fi
    if ! ls "$jars"/spark-avro_*.jar >/dev/null 2>&1; then
        echo "spark.sh: fetching Spark's Kafka connector $spark_version from Maven Central" >&2
        local tmp
        tmp=$(mktemp -d)
        (cd "$here" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$tmp") >&2
        mkdir -p "$jars"
        for f in "$tmp"/*.jar; do
            if basename "$f" | grep -Eq "^($wanted)"; then
                cp "$f" "$jars/"
            fi
        done
        rm -rf "$tmp"
    fi
}

case "${1:-}" in
fetch) fetch ;;
python) echo "$venv/bin/python" ;;
jars) ls "$jars"/*.jar | paste -sd, - ;;
*)
    echo "usage: spark.sh fetch|python|jars" >&2
    exit 2
    ;;
esac
