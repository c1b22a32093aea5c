#!/usr/bin/env bash
# A real Apache Kafka broker for sluice's tests: KRaft, one node (broker and controller),
# on free loopback ports, from jars that Maven fetches from Maven Central into a cache
# outside the tree. Kafka's own scripts are thin wrappers; with the jars on a classpath,
# java runs kafka.tools.StorageTool and kafka.Kafka directly.
#
#   kafka.sh fetch               fetch the jars (once; cached)
#   kafka.sh start DIR           start a broker with its data in DIR; prints host:port
#   kafka.sh stop DIR            stop it and remove DIR
#   kafka.sh topic DIR NAME [PARTITIONS]
#                                create a topic on the broker started in DIR
#   kafka.sh kill DIR            kill -9 the broker, keeping its data
#   kafka.sh restart DIR         start a killed broker again on the same port and data
#
# KAFKA_VERSION picks the release (default 3.9.1); SLUICE_CACHE the cache folder
# (default ~/.cache/sluice).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${KAFKA_VERSION:-3.9.1}
cache=${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
libs="$cache/kafka-$version/libs"

die() { echo "kafka.sh: $*" >&2; exit 1; }

jvm=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
     -Dorg.slf4j.simpleLogger.defaultLogLevel=warn
     -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info
     -Dorg.slf4j.simpleLogger.log.kafka.server.BrokerServer=info)

fetch() {
    [ -f "$libs/.complete" ] && return 0
    command -v mvn >/dev/null || die "mvn is not installed (apt-get install maven)"
    command -v java >/dev/null || die "java is not installed (apt-get install openjdk-17-jre-headless)"
    local slf4j=1.7.36
    case "$version" in 4.*) slf4j=2.0.16 ;; esac
    rm -rf "$libs"
    mkdir -p "$libs"
    echo "kafka.sh: fetching Apache Kafka $version from Maven Central into $libs" >&2
    mvn -q -B -f "$here/pom.xml" -Dkafka.version="$version" -Dslf4j.version="$slf4j" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >&2 ||
        die "mvn could not fetch Kafka $version"
    touch "$libs/.complete"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local dir=$1
    fetch
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local port cport
    port=$(free_port)
    cport=$(free_port)
    while [ "$cport" = "$port" ]; do cport=$(free_port); done
    cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
log.segment.bytes=67108864
PROPS
    java "${jvm[@]}" -cp "$libs/*" kafka.tools.StorageTool format -t "c2x1aWNlLXRlc3QtMDAw" \
        -c "$dir/server.properties" --ignore-formatted > "$dir/format.log" 2>&1 ||
        { cat "$dir/format.log" >&2; die "cannot format the KRaft log directory"; }
    echo "127.0.0.1:$port" > "$dir/bootstrap"
    launch "$dir"
}

launch() {
    local dir=$1
    local port
    port=$(cut -d: -f2 "$dir/bootstrap")
    : > "$dir/server.log"
    setsid java "${jvm[@]}" -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
        > "$dir/server.log" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
    local i
    for i in $(seq 1 240); do
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            tail -20 "$dir/server.log" >&2
            die "the broker exited during start-up (log: $dir/server.log)"
        fi
        if grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null &&
           (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "127.0.0.1:$port"
            return 0
        fi
        sleep 0.25
    done
    stop "$dir"
    die "the broker did not start within 60 s"
}

kill9() {
    local dir=$1
    [ -f "$dir/pid" ] || die "no broker was started in $dir"
    kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
    while kill -0 "$(cat "$dir/pid")" 2>/dev/null; do sleep 0.1; done
}

stop() {
    local dir=$1
    if [ -f "$dir/pid" ]; then
        local pid
        pid=$(cat "$dir/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 80); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}

topic() {
    local dir=$1 name=$2 parts=${3:-1}
    [ -f "$dir/bootstrap" ] || die "no broker was started in $dir"
    java -Xmx256m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$libs/*" \
        org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$(cat "$dir/bootstrap")" --create --topic "$name" \
        --partitions "$parts" --replication-factor 1 2>&1 | grep -vE '^(SLF4J|log4j:WARN)' >&2 || true
}

case "${1:-}" in
    fetch) fetch ;;
    start) [ $# -eq 2 ] || die "usage: kafka.sh start DIR"; start "$2" ;;
    stop) [ $# -eq 2 ] || die "usage: kafka.sh stop DIR"; stop "$2" ;;
    kill) [ $# -eq 2 ] || die "usage: kafka.sh kill DIR"; kill9 "$2" ;;
    restart) [ $# -eq 2 ] || die "usage: kafka.sh restart DIR"; fetch; launch "$2" ;;
    topic) [ $# -ge 3 ] || die "usage: kafka.sh topic DIR NAME [PARTITIONS]"; topic "$2" "$3" "${4:-1}" ;;
    *) die "usage: kafka.sh fetch | start DIR | stop DIR | kill DIR | restart DIR | topic DIR NAME [PARTITIONS]" ;;
esac
