/*
 * fuzz_job.c - libFuzzer target: the job-file parser and checker.
 *
 * The input is a job file's text. It is parsed and checked as `sluice validate` does
 * (relative paths from a folder holding the test schemas), and a job that passes has its
 * output schema derived. Every problem must be reported, never crash the checker; a
 * refused job must say why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "fuzz.h"
#include "sink/output.h"
#include "sluice/sluice_dev.h"

static char dir[] = "/tmp/sluice-fuzz-job-XXXXXX";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!mkdtemp(dir))
        abort();
    put("pageview.avsc", sl_gen_pageview_schema());
    put("nested.avsc", "{\"type\":\"record\",\"name\":\"N\",\"fields\":["
                       "{\"name\":\"geo\",\"type\":{\"type\":\"record\",\"name\":\"G\",\"fields\":"
                       "[{\"name\":\"country\",\"type\":\"string\"},{\"name\":\"ts\",\"type\":"
                       "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}}]}},"
                       "{\"name\":\"n\",\"type\":[\"null\",\"double\"]},"
                       "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}}]}");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    if (!text)
        return 0;
    sl_conf_t *c = NULL;
    static char err[65536];
    err[0] = 0;
    if (sl__conf_parse(text, dir, "fuzz.json", &c, err, sizeof(err)) == SL_OK) {
        free(sl__out_avro_schema(&c->plan, c->name, 0));
        free(sl__out_avro_schema(&c->plan, c->name, 1));
        sl__conf_destroy(c);
    } else if (!err[0] || c) {
        abort(); /* a refusal says why and yields no configuration */
    }
    free(text);
    return 0;
}
