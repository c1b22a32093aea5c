/*
 * malloc_conf.c - jemalloc's settings in sluice's executables (built in when they link
 * jemalloc, see meson.build).
 *
 * Each batch frees its buffers (the merged rows, the encoded outbox, the producer's
 * records) when it commits. jemalloc keeps freed pages resident for 10 s by default, so
 * with millions of keys a job held about 90 MB of freed memory; after 1 s they go back
 * to the system, at no measurable cost in speed (returning them at once doubled the
 * system time).
 */
#include <jemalloc/jemalloc.h>

const char *malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";
