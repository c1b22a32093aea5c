/*
 * changelog.c - the changelog's records and topic (see changelog.h).
 */
#include "changelog.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "layout.h"
#include "log.h"

sl_err_t sl__marker_add(sl_marker_t *m, const char *name, const void *val, size_t vlen)
{
    if (SL_GROW(m->meta, m->cap, m->nmeta + 1, 16))
        return SL_ERR_NOMEM;
    sl_meta_entry_t *e = &m->meta[m->nmeta];
    e->name = strdup(name);
    e->val = malloc(vlen ? vlen : 1);
    if (!e->name || !e->val) {
        free(e->name);
        free(e->val);
        return SL_ERR_NOMEM;
    }
    if (vlen)
        memcpy(e->val, val, vlen);
    e->vlen = vlen;
    m->nmeta++;
    return SL_OK;
}

void sl__marker_fini(sl_marker_t *m)
{
    for (size_t i = 0; i < m->nmeta; i++) {
        free(m->meta[i].name);
        free(m->meta[i].val);
    }
    free(m->meta);
    memset(m, 0, sizeof(*m));
}

static const char hexd[] = "0123456789abcdef";

sl_err_t sl__marker_encode(const sl_marker_t *m, const char *job, sl_buf_t *out)
{
    char nonce[17], fp[17];
    snprintf(nonce, sizeof(nonce), "%016" PRIx64, m->nonce);
    snprintf(fp, sizeof(fp), "%016" PRIx64, m->fingerprint);
    json_t *meta = json_object();
    json_t *doc = json_pack("{s:i,s:s,s:i,s:I,s:s,s:s,s:I,s:o}", "sluice", SL_MARKER_FORMAT, "job",
                            job, "task", m->task, "seq", (json_int_t)m->seq, "nonce", nonce,
                            "fingerprint", fp, "committed_ms", (json_int_t)m->committed_ms,
                            "meta", meta);
    if (!doc)
        return SL_ERR_NOMEM;
    sl_err_t e = SL_OK;
    for (size_t i = 0; i < m->nmeta && !e; i++) {
        char *hex = malloc(2 * m->meta[i].vlen + 1);
        if (!hex) {
            e = SL_ERR_NOMEM;
            break;
        }
        for (size_t j = 0; j < m->meta[i].vlen; j++) {
            hex[2 * j] = hexd[m->meta[i].val[j] >> 4];
            hex[2 * j + 1] = hexd[m->meta[i].val[j] & 15];
        }
        hex[2 * m->meta[i].vlen] = 0;
        if (json_object_set_new(meta, m->meta[i].name, json_string(hex)))
            e = SL_ERR_NOMEM;
        free(hex);
    }
    char *text = e ? NULL : json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (!text)
        return SL_ERR_NOMEM;
    e = sl__buf_append(out, text, strlen(text));
    free(text);
    return e;
}

static int hexv(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int parse_hex64(const char *s, uint64_t *out)
{
    if (!s || strlen(s) != 16)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        int d = hexv(s[i]);
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

sl_err_t sl__marker_decode(const void *p, size_t len, sl_marker_t *m, char *errstr,
                           size_t errstr_size)
{
    memset(m, 0, sizeof(*m));
    json_error_t je;
    json_t *doc = json_loadb(p, len, 0, &je);
    sl_err_t e = SL_ERR_STATE;
    json_t *meta = json_object_get(doc, "meta");
    json_t *fmt = json_object_get(doc, "sluice"), *task = json_object_get(doc, "task"),
           *seq = json_object_get(doc, "seq"), *at = json_object_get(doc, "committed_ms");
    if (!json_is_object(doc) || !json_is_integer(fmt) || !json_is_integer(task) ||
        !json_is_integer(seq) || !json_is_object(meta)) {
        snprintf(errstr, errstr_size, "a changelog marker that is not sluice's");
        goto done;
    }
    if (json_integer_value(fmt) != SL_MARKER_FORMAT) {
        snprintf(errstr, errstr_size,
                 "a changelog marker of format %lld, which this sluice does not read (it reads "
                 "format %d): the changelog was written by a later sluice",
                 (long long)json_integer_value(fmt), SL_MARKER_FORMAT);
        goto done;
    }
    m->task = (int)json_integer_value(task);
    m->seq = json_integer_value(seq);
    m->committed_ms = json_is_integer(at) ? json_integer_value(at) : 0;
    if (parse_hex64(json_string_value(json_object_get(doc, "nonce")), &m->nonce) < 0 ||
        parse_hex64(json_string_value(json_object_get(doc, "fingerprint")), &m->fingerprint) < 0 ||
        m->seq < 1 || m->task < 0) {
        snprintf(errstr, errstr_size, "a corrupt changelog marker");
        goto done;
    }
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v)
    {
        const char *hex = json_string_value(v);
        size_t hl = hex ? strlen(hex) : 1;
        if (hl % 2) {
            snprintf(errstr, errstr_size, "a corrupt changelog marker (meta '%s')", k);
            goto done;
        }
        uint8_t *bytes = malloc(hl / 2 + 1);
        if (!bytes) {
            e = SL_ERR_NOMEM;
            goto done;
        }
        int bad = 0;
        for (size_t i = 0; i < hl / 2; i++) {
            int hi = hexv(hex[2 * i]), lo = hexv(hex[2 * i + 1]);
            bad |= hi < 0 || lo < 0;
            bytes[i] = (uint8_t)(hi << 4 | lo);
        }
        sl_err_t ae = bad ? SL_ERR_STATE : sl__marker_add(m, k, bytes, hl / 2);
        free(bytes);
        if (ae) {
            if (bad)
                snprintf(errstr, errstr_size, "a corrupt changelog marker (meta '%s')", k);
            e = ae;
            goto done;
        }
    }
    e = SL_OK;
done:
    json_decref(doc);
    return e;
}

sl_err_t sl__clog_key(const uint8_t *state_key, size_t klen, sl_buf_t *out)
{
    sl__buf_reset(out);
    char tag = SL_CLOG_STATE;
    if (klen < SL_TASK_PREFIX)
        return SL_ERR_STATE;
    return sl__buf_append(out, &tag, 1) ||
                   sl__buf_append(out, state_key + SL_TASK_PREFIX, klen - SL_TASK_PREFIX)
               ? SL_ERR_NOMEM
               : SL_OK;
}

void sl__clog_topic(char *buf, size_t size, const char *job)
{
    snprintf(buf, size, "%s-changelog", job);
}

sl_err_t sl__clog_ensure(rd_kafka_t *rk, const char *bootstrap, const char *topic,
                         int partitions, char *errstr, size_t errstr_size)
{
    char *t[] = {(char *)topic};
    int have = 0;
    char why[512];
    sl_err_t e = sl__kafka_check_topics(rk, bootstrap, t, 1, "state.changelog", &have, why,
                                        sizeof(why));
    if (e && strstr(why, "does not exist")) {
        static const char *const config[] = {"cleanup.policy", "compact", NULL};
        e = sl__kafka_create_topic(rk, topic, partitions, config, why, sizeof(why));
        if (e) {
            snprintf(errstr, errstr_size,
                     "state.changelog: %s. Create it with %d partition(s) and "
                     "cleanup.policy=compact (the embedded broker cannot create topics: "
                     "`sluice dev-broker --topic %s:%d`), or set state.changelog to false",
                     why, partitions, topic, partitions);
            return e;
        }
        /* A topic just made takes a moment to show in the brokers' metadata. */
        sl_log(SL_LOG_INFO, "state", "created the changelog topic %s (%d partitions, compacted)",
               topic, partitions);
        for (int i = 0; i < 100; i++) {
            e = sl__kafka_check_topics(rk, bootstrap, t, 1, "state.changelog", &have, why,
                                       sizeof(why));
            if (!e || !strstr(why, "does not exist"))
                break;
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (e) {
        snprintf(errstr, errstr_size, "%s", why);
        return e;
    }
    if (have != partitions) {
        snprintf(errstr, errstr_size,
                 "state.changelog: topic '%s' has %d partition(s), but the job has %d task(s), "
                 "one a partition: it was made for another job or another input. Delete it "
                 "(the job then starts with the state of its state directory) or name another "
                 "job",
                 topic, have, partitions);
        return SL_ERR_MISMATCH;
    }
    char policy[128];
    if (sl__kafka_config_string(rk, RD_KAFKA_RESOURCE_TOPIC, topic, "cleanup.policy", policy,
                                sizeof(policy)) == 0 &&
        policy[0] && !strstr(policy, "compact")) {
        snprintf(errstr, errstr_size,
                 "state.changelog: topic '%s' has cleanup.policy=%s: without compaction its "
                 "older records are deleted, and the state could not be restored from it. Set "
                 "its cleanup.policy to compact",
                 topic, policy);
        return SL_ERR_MISMATCH;
    }
    return SL_OK;
}
