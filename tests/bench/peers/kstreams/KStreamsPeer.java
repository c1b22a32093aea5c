/*
 * The benchmark's Kafka Streams peer: count + sum + avg by page over the Avro page views
 * of the input topic (decoded with Avro's GenericDatumReader), re-keyed by page and
 * aggregated in a RocksDB store, exactly_once_v2, each update to the output topic as a
 * JSON row keyed by page. Stops once it has folded the given number of records; close()
 * flushes the store's cache and commits.
 *
 * Prints one JSON line: {"records": N, "secs": S}, S from the first record decoded to the
 * end of close().
 *
 *   java KStreamsPeer BOOTSTRAP INPUT OUTPUT SCHEMA RECORDS STATE_DIR APPLICATION_ID
 */
import java.io.File;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

public final class KStreamsPeer {
    private static final AtomicLong FIRST = new AtomicLong();
    private static final AtomicLong FOLDED = new AtomicLong();

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], input = args[1], output = args[2];
        Schema schema = new Schema.Parser().parse(new File(args[3]));
        long records = Long.parseLong(args[4]);
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[6]);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 2);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");

        ThreadLocal<GenericDatumReader<GenericRecord>> reader =
            ThreadLocal.withInitial(() -> new GenericDatumReader<>(schema));
        ThreadLocal<BinaryDecoder> decoder = new ThreadLocal<>();
        StreamsBuilder b = new StreamsBuilder();
        b.stream(input, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
            .map((k, v) -> {
                FIRST.compareAndSet(0, System.nanoTime());
                try {
                    BinaryDecoder d = DecoderFactory.get().binaryDecoder(v, decoder.get());
                    decoder.set(d);
                    GenericRecord r = reader.get().read(null, d);
                    ByteBuffer bb = ByteBuffer.allocate(12);
                    bb.putLong((Long) r.get("bytes")).putInt((Integer) r.get("latency_ms"));
                    return KeyValue.pair(r.get("page").toString(), bb.array());
                } catch (java.io.IOException e) {
                    throw new RuntimeException(e);
                }
            })
            .groupByKey(Grouped.with(Serdes.String(), Serdes.ByteArray()))
            .aggregate(() -> new byte[24], (k, v, agg) -> {
                ByteBuffer in = ByteBuffer.wrap(v), a = ByteBuffer.wrap(agg);
                long views = a.getLong(0) + 1, sum = a.getLong(8) + in.getLong(0);
                long lat = a.getLong(16) + in.getInt(8);
                FOLDED.incrementAndGet();
                return ByteBuffer.allocate(24).putLong(views).putLong(sum).putLong(lat).array();
            }, Materialized.<String, byte[], KeyValueStore<Bytes, byte[]>>as("views")
                   .withKeySerde(Serdes.String()).withValueSerde(Serdes.ByteArray()))
            .toStream()
            .mapValues((k, agg) -> {
                ByteBuffer a = ByteBuffer.wrap(agg);
                long views = a.getLong(0);
                return "{\"page\":\"" + k + "\",\"views\":" + views + ",\"sum_bytes\":"
                    + a.getLong(8) + ",\"avg_latency_ms\":" + ((double) a.getLong(16) / views)
                    + "}";
            })
            .to(output, Produced.with(Serdes.String(), Serdes.String()));

        KafkaStreams ks = new KafkaStreams(b.build(), p);
        ks.start();
        while (FOLDED.get() < records)
            Thread.sleep(10);
        ks.close(Duration.ofMinutes(2));
        double secs = (System.nanoTime() - FIRST.get()) / 1e9;
        System.out.println("{\"records\": " + FOLDED.get() + ", \"secs\": " + secs + "}");
    }
}
