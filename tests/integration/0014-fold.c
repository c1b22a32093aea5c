/*
 * 0014-fold.c - the batch fold. A query whose aggregates are all counts, sums and
 * averages of numbers folds each record from plain numbers (job_record.c's fast folds);
 * any other aggregate takes the general sl__acc_update() path for all of them. Both must
 * give the totals computed here, null inputs skipped, an integer in a double field taken
 * as a double, over batches and keys enough to fill the fold queue and grow the batch
 * table, with some keys too long for the queue. Files source, no broker.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sluice/sluice.h"
#include "tk.h"

#define NKEYS 3000
#define NLINES 40000

static char *dir;

static void setup(void)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    dir = tk_tmpdir("sluice-fold");
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(fold, .init = setup, .fini = teardown, .timeout = 300);

typedef struct totals {
    int64_t n, nx, sx, nd;
    double sd;
} totals_t;

/* Writes the input (a key, a long x and a double d, each sometimes null or missing, d
 * sometimes written as an integer) to @p sub/in.json, and the totals per key. */
static void write_input(const char *sub, totals_t *t)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/%s/in.json", dir, sub);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    memset(t, 0, NKEYS * sizeof(*t));
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < NLINES; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int k = (int)(s % NKEYS);
        totals_t *kt = &t[k];
        kt->n++;
        /* Every 50th key is longer than the fold queue holds (it folds at once). */
        fprintf(f, "{\"k\": \"key-%d%s\"", k,
                k % 50 ? "" : "-a-name-longer-than-sixty-four-bytes-0123456789012345678901234567");
        if (i % 5 == 1) {
            fputs(", \"x\": null", f);
        } else if (i % 11 != 3) { /* else missing */
            int64_t x = (int64_t)(s >> 20) % 2000001 - 1000000;
            fprintf(f, ", \"x\": %lld", (long long)x);
            kt->nx++;
            kt->sx += x;
        }
        if (i % 4 == 2) {
            fputs(", \"d\": null", f);
        } else if (i % 6 == 0) {
            int d = i % 97 - 40;
            fprintf(f, ", \"d\": %d", d);
            kt->nd++;
            kt->sd += d;
        } else {
            double d = (double)(i % 1000) * 0.25 - 50.0;
            fprintf(f, ", \"d\": %.2f", d);
            kt->nd++;
            kt->sd += d;
        }
        fputs("}\n", f);
    }
    fclose(f);
}

static const char *JOB =
    "{\"name\": \"fold-%s\","
    " \"source\": {\"type\": \"files\", \"path\": \"%s\", \"format\": \"json\","
    "              \"fields\": {\"k\": \"string\", \"x\": \"long\", \"d\": \"double\"}},"
    " \"query\": {\"group_by\": \"k\", \"aggregates\": ["
    "   {\"fn\": \"count\", \"as\": \"n\"}, {\"fn\": \"count\", \"field\": \"x\", \"as\": \"nx\"},"
    "   {\"fn\": \"sum\", \"field\": \"x\", \"as\": \"sx\"},"
    "   {\"fn\": \"avg\", \"field\": \"x\", \"as\": \"ax\"},"
    "   {\"fn\": \"sum\", \"field\": \"d\", \"as\": \"sd\"},"
    "   {\"fn\": \"avg\", \"field\": \"d\", \"as\": \"ad\"}%s]},"
    " \"trigger\": {\"available_now\": true, \"max_records\": 7000},"
    " \"output\": {\"sink\": \"memory\", \"mode\": \"complete\"},"
    " \"state\": {\"dir\": \"state-%s\"}}";

/* Runs the query (with @p extra aggregates) and checks every key's row against @p t. */
static void check(const char *sub, const char *extra, const totals_t *t)
{
    char job[4096];
    snprintf(job, sizeof(job), JOB, sub, sub, extra, sub);
    tk_job_result_t r = tk_run_job(job, dir);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(r.st.records_in, NLINES);
    cr_assert_geq(r.st.batches, NLINES / 7000, "several batches: state is folded in too");
    size_t i, seen = 0;
    json_t *row;
    json_array_foreach(r.rows, i, row)
    {
        int k;
        cr_assert_eq(sscanf(json_string_value(json_object_get(row, "k")), "key-%d", &k), 1);
        cr_assert(k >= 0 && k < NKEYS);
        const totals_t *kt = &t[k];
        cr_assert_eq(json_integer_value(json_object_get(row, "n")), kt->n, "%s key %d", sub, k);
        cr_assert_eq(json_integer_value(json_object_get(row, "nx")), kt->nx, "%s key %d", sub, k);
        if (kt->nx) {
            cr_assert_eq(json_integer_value(json_object_get(row, "sx")), kt->sx, "%s key %d", sub,
                         k);
            cr_assert_eq(json_number_value(json_object_get(row, "ax")),
                         (double)kt->sx / (double)kt->nx, "%s key %d", sub, k);
        } else {
            cr_assert(json_is_null(json_object_get(row, "sx")), "%s key %d: no x", sub, k);
        }
        if (kt->nd) {
            cr_assert_eq(json_number_value(json_object_get(row, "sd")), kt->sd, "%s key %d", sub,
                         k);
            cr_assert_eq(json_number_value(json_object_get(row, "ad")), kt->sd / (double)kt->nd,
                         "%s key %d", sub, k);
        }
        seen++;
    }
    cr_assert_eq(seen, NKEYS, "%s: one row a key", sub);
    json_decref(r.rows);
}

Test(fold, the_fast_and_the_general_fold_give_the_same_totals)
{
    static totals_t t[NKEYS];
    write_input("fast", t);
    check("fast", "", t);
    write_input("general", t);
    check("general", ", {\"fn\": \"max\", \"field\": \"x\", \"as\": \"mx\"}", t);
}
