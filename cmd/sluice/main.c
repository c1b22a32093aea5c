/*
 * main.c - the sluice command: argv -> a libsluice call. No engine logic lives here.
 *
 *   sluice run JOB                 run a job until SIGINT/SIGTERM
 *   sluice validate JOB            check a job file; print every problem
 *   sluice demo [--seconds N]      page counts on generated page views, on the mock broker
 *   sluice dev-broker              the mock broker alone, for trying jobs by hand
 *   sluice inspect STATE_DIR       what a job's state holds
 *   sluice generate ...            produce generated page views to a topic
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"

#define ERRSTR_SIZE 8192

static sl_job_t *volatile g_job;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_job)
        sl_job_stop(g_job);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void usage(FILE *out)
{
    fputs("usage: sluice <command> [options]\n"
          "\n"
          "commands:\n"
          "  run JOB                   run the job in JOB (a JSON job file) until SIGINT or\n"
          "                            SIGTERM, which finish and commit the current batch\n"
          "  validate JOB [--emit-schema[=key]]\n"
          "                            check JOB and print every problem found; with\n"
          "                            --emit-schema print the Avro schema of its output\n"
          "                            rows (=key: of its message keys)\n"
          "  demo [--seconds N]        count generated page views on the embedded broker\n"
          "  dev-broker [--topic T[:PARTITIONS]]...\n"
          "                            start the embedded broker and print its address\n"
          "  inspect STATE_DIR [--key K]\n"
          "                            print a job's stored positions, batch and aggregates\n"
          "  generate --bootstrap B --topic T [--count N] [--partitions P] [--pages K]\n"
          "           [--seed S] [--by-page]\n"
          "                            produce N generated Avro page views\n"
          "                            (schemas/pageview.avsc) to topic T, record i to\n"
          "                            partition i % P (--by-page: page p's to p % P)\n"
          "  version                   print the version\n"
          "\n"
          "options for every command:\n"
          "  -v, --verbose             debug logging\n"
          "  -q, --quiet               warnings and errors only\n"
          "      --log-json            log JSON lines (the default when stderr is not a\n"
          "                            terminal)\n",
          out);
}

typedef struct opts {
    int seconds;
    const char *bootstrap;
    const char *topic;
    long long count, partitions, pages, seed;
    const char *key;
    const char *topics[32];
    int ntopics;
    sl_log_level_t level;
    int json;
    int json_set;
    int by_page;
} opts_t;

/* Parses the options after the command; returns the index of the first operand. */
static int parse_opts(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {{"seconds", required_argument, NULL, 's'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"log-json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"bootstrap", required_argument, NULL, 'b'},
                                             {"count", required_argument, NULL, 'n'},
                                             {"partitions", required_argument, NULL, 'p'},
                                             {"pages", required_argument, NULL, 'P'},
                                             {"seed", required_argument, NULL, 'S'},
                                             {"by-page", no_argument, NULL, 'B'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:k:t:vqhb:n:p:", longopts, NULL)) != -1) {
        long long *num = NULL;
        switch (ch) {
        case 'b':
            o->bootstrap = optarg;
            break;
        case 'n':
            num = &o->count;
            break;
        case 'p':
            num = &o->partitions;
            break;
        case 'P':
            num = &o->pages;
            break;
        case 'S':
            num = &o->seed;
            break;
        case 'B':
            o->by_page = 1;
            break;
        case 's': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v <= 0) {
                fprintf(stderr, "sluice: --seconds wants a positive number, not '%s'\n", optarg);
                exit(2);
            }
            o->seconds = (int)v;
            break;
        }
        case 'k':
            o->key = optarg;
            break;
        case 't':
            if (o->ntopics < 32)
                o->topics[o->ntopics++] = optarg;
            break;
        case 'v':
            o->level = SL_LOG_DEBUG;
            break;
        case 'q':
            o->level = SL_LOG_WARN;
            break;
        case 'j':
            o->json = 1;
            o->json_set = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
        if (num) {
            char *end;
            *num = strtoll(optarg, &end, 10);
            if (*end || *num < 0) {
                fprintf(stderr, "sluice: --%s wants a number, not '%s'\n",
                        ch == 'n'   ? "count"
                        : ch == 'p' ? "partitions"
                        : ch == 'P' ? "pages"
                                    : "seed",
                        optarg);
                exit(2);
            }
        }
    }
    if (o->json_set)
        sl_log_configure(o->level, o->json, NULL);
    else
        sl_log_configure(o->level, !isatty(STDERR_FILENO), NULL);
    return optind;
}

static int print_error(const char *what, const char *errstr)
{
    fprintf(stderr, "sluice %s: %s\n", what, errstr);
    return 1;
}

/* Parses the options and reads the one job file named; 0 with *jobp set, else the exit
 * status to return. */
static int load_job(int argc, char **argv, const char *command, sl_job_t **jobp)
{
    opts_t o = {.level = SL_LOG_INFO};
    int i = parse_opts(argc, argv, &o);
    if (i != argc - 1) {
        fprintf(stderr, "usage: sluice %s JOB\n", command);
        return 2;
    }
    char errstr[ERRSTR_SIZE];
    if (sl_job_new_from_file(argv[i], jobp, errstr, sizeof(errstr)) != SL_OK) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    return 0;
}

static int cmd_validate(int argc, char **argv)
{
    sl_job_t *job;
    int emit = 0;
    /* --emit-schema[=key] is the command's own option, taken out before the common ones. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--emit-schema") || !strcmp(argv[i], "--emit-schema=key")) {
            emit = argv[i][13] ? 2 : 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(char *));
            argc--;
            i--;
        }
    }
    int rc = load_job(argc, argv, "validate [--emit-schema[=key]]", &job);
    if (rc)
        return rc;
    if (emit) {
        char *schema = sl_job_avro_schema(job, emit == 2);
        if (!schema) {
            sl_job_destroy(job);
            return print_error("validate", "out of memory");
        }
        printf("%s\n", schema);
        free(schema);
    } else {
        printf("%s: ok\n", argv[argc - 1]);
    }
    sl_job_destroy(job);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    sl_job_t *job;
    int rc = load_job(argc, argv, "run", &job);
    if (rc)
        return rc;
    char errstr[ERRSTR_SIZE];
    sl_job_set_console(job, stdout);
    g_job = job;
    if (g_stop) /* a signal while the job file was read */
        sl_job_stop(job);
    sl_err_t e = sl_job_run(job, errstr, sizeof(errstr));
    g_job = NULL;
    sl_job_destroy(job);
    return e ? print_error("run", errstr) : 0;
}

static int cmd_inspect(int argc, char **argv)
{
    opts_t o = {.level = SL_LOG_WARN};
    int i = parse_opts(argc, argv, &o);
    if (i != argc - 1) {
        fprintf(stderr, "usage: sluice inspect STATE_DIR [--key VALUE[,VALUE...]]\n");
        return 2;
    }
    char errstr[ERRSTR_SIZE];
    if (sl_state_inspect(argv[i], o.key, stdout, errstr, sizeof(errstr)) != SL_OK)
        return print_error("inspect", errstr);
    return 0;
}

static int cmd_dev_broker(int argc, char **argv)
{
    opts_t o = {.level = SL_LOG_INFO};
    int i = parse_opts(argc, argv, &o);
    if (i != argc) {
        fprintf(stderr, "usage: sluice dev-broker [--topic NAME[:PARTITIONS]]...\n");
        return 2;
    }
    char errstr[ERRSTR_SIZE];
    sl_mock_t *mock;
    if (sl_mock_new(1, &mock, errstr, sizeof(errstr)) != SL_OK)
        return print_error("dev-broker", errstr);
    for (int t = 0; t < o.ntopics; t++) {
        char name[256];
        int parts = 1;
        snprintf(name, sizeof(name), "%s", o.topics[t]);
        char *colon = strrchr(name, ':');
        if (colon) {
            *colon = 0;
            char *end;
            long n = strtol(colon + 1, &end, 10);
            parts = *end || n < 1 || n > 10000 ? -1 : (int)n;
        }
        if (parts <= 0) {
            sl_mock_destroy(mock);
            fprintf(stderr,
                    "sluice dev-broker: --topic %s: the partitions after ':' must be a number "
                    "from 1 to 10000\n",
                    o.topics[t]);
            return 2;
        }
        if (sl_mock_create_topic(mock, name, parts) != SL_OK) {
            sl_mock_destroy(mock);
            fprintf(stderr, "sluice dev-broker: cannot create topic '%s'\n", o.topics[t]);
            return 1;
        }
    }
    printf("%s\n", sl_mock_bootstraps(mock));
    fflush(stdout);
    fprintf(stderr,
            "sluice dev-broker: the embedded (mock) Kafka broker listens on %s; it keeps "
            "data in memory only and has no transactions. Ctrl-C stops it.\n",
            sl_mock_bootstraps(mock));
    while (!g_stop)
        pause();
    sl_mock_destroy(mock);
    return 0;
}

static int cmd_generate(int argc, char **argv)
{
    opts_t o = {.level = SL_LOG_WARN, .count = 100000, .partitions = 1, .pages = 1000, .seed = 1};
    int i = parse_opts(argc, argv, &o);
    if (i != argc || !o.bootstrap || o.ntopics != 1 || o.partitions < 1 || o.pages < 1) {
        fprintf(stderr, "usage: sluice generate --bootstrap HOST:PORT --topic T [--count N] "
                        "[--partitions P] [--pages K] [--seed S] [--by-page]\n");
        return 2;
    }
    sl_gen_spec_t spec = {.seed = (uint64_t)o.seed,
                          .pages = (uint32_t)o.pages,
                          .users = (uint32_t)o.pages * 5,
                          .start_ms = 1764000000000LL,
                          .by_page = o.by_page};
    char errstr[ERRSTR_SIZE];
    if (sl_gen_produce(o.bootstrap, NULL, o.topics[0], (int)o.partitions, &spec, 0,
                       (uint64_t)o.count, errstr, sizeof(errstr)) != SL_OK)
        return print_error("generate", errstr);
    fprintf(stderr, "sluice generate: %lld page views produced to %s\n", o.count, o.topics[0]);
    return 0;
}

/* ---- demo ---- */

typedef struct demo_gen {
    const char *bootstrap;
    sl_gen_spec_t spec;
    volatile int stop;
    char errstr[512];
} demo_gen_t;

static void *demo_producer(void *arg)
{
    demo_gen_t *g = arg;
    uint64_t next = 0;
    while (!g->stop) {
        /* About 5,000 views a second, in slices of 500. */
        if (sl_gen_produce(g->bootstrap, NULL, "pageviews", 6, &g->spec, next, 500, g->errstr,
                           sizeof(g->errstr)) != SL_OK)
            break;
        next += 500;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *demo_timer(void *arg)
{
    int seconds = *(int *)arg;
    for (int i = 0; i < seconds * 10 && !g_stop; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    g_stop = 1;
    if (g_job)
        sl_job_stop(g_job);
    return NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int cmd_demo(int argc, char **argv)
{
    opts_t o = {.level = SL_LOG_WARN};
    int i = parse_opts(argc, argv, &o);
    if (i != argc) {
        fprintf(stderr, "usage: sluice demo [--seconds N]\n");
        return 2;
    }
    char errstr[ERRSTR_SIZE];
    int rc = 1;
    sl_mock_t *mock = NULL;
    sl_job_t *job = NULL;
    char dir[] = "/tmp/sluice-demo-XXXXXX";
    if (!mkdtemp(dir))
        return print_error("demo", strerror(errno));
    char schema_path[600];
    snprintf(schema_path, sizeof(schema_path), "%s/pageview.avsc", dir);
    FILE *f = fopen(schema_path, "w");
    if (!f || fputs(sl_gen_pageview_schema(), f) < 0 || fclose(f) != 0) {
        print_error("demo", "cannot write the schema to the temporary directory");
        goto out;
    }
    /* The embedded broker cannot create topics: the job's changelog is made here. */
    if (sl_mock_new(1, &mock, errstr, sizeof(errstr)) != SL_OK ||
        sl_mock_create_topic(mock, "pageviews", 6) != SL_OK ||
        sl_mock_create_topic(mock, "demo-page-counts-changelog", 1) != SL_OK) {
        print_error("demo", errstr);
        goto out;
    }
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"name\": \"demo-page-counts\","
             " \"kafka\": {\"bootstrap.servers\": \"%s\", \"fetch.wait.max.ms\": 10},"
             " \"source\": {\"topics\": [\"pageviews\"], \"format\": \"avro\","
             "              \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"where\": \"latency_ms >= 0\", \"group_by\": [\"page\"],"
             "             \"aggregates\": [{\"fn\": \"count\", \"as\": \"views\"},"
             "                              {\"fn\": \"sum\", \"field\": \"bytes\"},"
             "                              {\"fn\": \"avg\", \"field\": \"latency_ms\"},"
             "                              {\"fn\": \"max\", \"field\": \"latency_ms\"}]},"
             " \"trigger\": {\"interval\": \"2s\"},"
             " \"output\": {\"mode\": \"update\", \"sink\": \"console\","
             "             \"delivery\": \"at-least-once\"},"
             " \"state\": {\"dir\": \"state\"}}",
             sl_mock_bootstraps(mock));
    if (sl_job_new_from_json(json, dir, "demo job", &job, errstr, sizeof(errstr)) != SL_OK) {
        print_error("demo", errstr);
        goto out;
    }
    fprintf(stderr,
            "sluice demo: page views -> embedded Kafka broker (%s) -> count, sum(bytes), "
            "avg(latency_ms), max(latency_ms) by page -> console, every 2 s. %s\n",
            sl_mock_bootstraps(mock), o.seconds ? "" : "Ctrl-C stops it.");
    demo_gen_t gen = {.bootstrap = sl_mock_bootstraps(mock),
                      .spec = {.seed = 1, .pages = 50, .users = 1000, .start_ms = 0}};
    gen.spec.start_ms = 1764000000000LL;
    pthread_t producer, timer;
    pthread_create(&producer, NULL, demo_producer, &gen);
    g_job = job;
    if (g_stop)
        sl_job_stop(job);
    if (o.seconds)
        pthread_create(&timer, NULL, demo_timer, &o.seconds);
    sl_job_set_console(job, stdout);
    sl_err_t e = sl_job_run(job, errstr, sizeof(errstr));
    g_job = NULL;
    g_stop = 1;
    gen.stop = 1;
    pthread_join(producer, NULL);
    if (o.seconds)
        pthread_join(timer, NULL);
    if (e) {
        print_error("demo", errstr);
        goto out;
    }
    if (gen.errstr[0]) {
        print_error("demo: producer", gen.errstr);
        goto out;
    }
    sl_job_stats_t st;
    sl_job_stats(job, &st, sizeof(st));
    fprintf(stderr, "sluice demo: %llu batches, %llu records in, %llu rows out\n",
            (unsigned long long)st.batches, (unsigned long long)st.records_in,
            (unsigned long long)st.rows_out);
    rc = 0;
out:
    sl_job_destroy(job);
    sl_mock_destroy(mock);
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "sluice demo: could not remove %s\n", dir);
    return rc;
}

int main(int argc, char **argv)
{
    /* First thing: SIGTERM at any moment of a run's start-up stops it cleanly (exit 0). */
    install_signals();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    argv[1] = argv[0];
    argc--;
    argv++;
    if (!strcmp(cmd, "run"))
        return cmd_run(argc, argv);
    if (!strcmp(cmd, "validate"))
        return cmd_validate(argc, argv);
    if (!strcmp(cmd, "demo"))
        return cmd_demo(argc, argv);
    if (!strcmp(cmd, "dev-broker"))
        return cmd_dev_broker(argc, argv);
    if (!strcmp(cmd, "inspect"))
        return cmd_inspect(argc, argv);
    if (!strcmp(cmd, "generate"))
        return cmd_generate(argc, argv);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("sluice %s\n", sl_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sluice: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
