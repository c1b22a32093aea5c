/*
 * test_job.c - a job through the public API without Kafka: the counters a program reads,
 * whatever size of sl_job_stats_t it was compiled with.
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sluice/sluice.h"
#include "tk.h"

Test(job, stats_fill_as_much_as_the_caller_holds)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    char *dir = tk_tmpdir("sluice-job");
    char in[600];
    snprintf(in, sizeof(in), "%s/in", dir);
    cr_assert_eq(mkdir(in, 0755), 0);
    tk_write_file(in, "1.txt", "a\nb\na\n");
    const char *json = "{\"name\": \"stats\", \"source\": {\"type\": \"files\", \"path\": \"in\"},"
                       " \"query\": {\"group_by\": \"value\", \"aggregates\": [{\"fn\": \"count\"}]},"
                       " \"trigger\": {\"available_now\": true},"
                       " \"output\": {\"sink\": \"memory\"}, \"state\": {\"dir\": \"st\"}}";
    tk_job_result_t r = tk_run_job(json, dir);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(r.st.records_in, 3);
    cr_assert_eq(r.st.rows_out, 2);
    json_decref(r.rows);

    sl_job_t *job;
    char err[1024];
    cr_assert_eq(sl_job_new_from_json(json, dir, "job.json", &job, err, sizeof(err)), SL_OK);
    char errrun[1024];
    cr_assert_eq(sl_job_run(job, errrun, sizeof(errrun)), SL_OK, "%s", errrun);
    /* An older program's struct ends before records_kept; a newer one's goes past the end:
     * the first gets what it has room for, the second zeros beyond what this library knows. */
    unsigned char older[offsetof(sl_job_stats_t, records_kept)];
    memset(older, 0xab, sizeof(older));
    sl_job_stats(job, (sl_job_stats_t *)(void *)older, sizeof(older));
    sl_job_stats_t full;
    sl_job_stats(job, &full, sizeof(full));
    cr_assert(!memcmp(older, &full, sizeof(older)), "the prefix is the same counters");
    unsigned char newer[sizeof(sl_job_stats_t) + 16];
    memset(newer, 0xab, sizeof(newer));
    sl_job_stats(job, (sl_job_stats_t *)(void *)newer, sizeof(newer));
    cr_assert(!memcmp(newer, &full, sizeof(full)));
    for (size_t i = sizeof(full); i < sizeof(newer); i++)
        cr_assert_eq(newer[i], 0, "byte %zu past this library's fields", i);
    sl_job_destroy(job);
    tk_rmrf(dir);
    free(dir);
}
