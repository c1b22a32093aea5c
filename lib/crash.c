/*
 * crash.c - crash points (see crash.h).
 */
#include "crash.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define MAX_POINTS 8

static struct {
    int loaded;
    int n;
    struct {
        char name[64];
        long at;
        long passes;
        long stall_ms; /* SLUICE_STALL_AT: sleep this long instead of dying */
        int fence;     /* SLUICE_FENCE_AT: tell the caller instead of dying */
    } p[MAX_POINTS];
} g_crash;

static void load_var(const char *var, int stall, int fence)
{
    const char *env = getenv(var);
    if (!env)
        return;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", env);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && g_crash.n < MAX_POINTS;
         tok = strtok_r(NULL, ",", &save)) {
        /* NAME[:N] to die, NAME:N:MS to stall */
        long ms = 0;
        if (stall) {
            char *c = strrchr(tok, ':');
            if (!c)
                continue;
            ms = strtol(c + 1, NULL, 10);
            *c = 0;
        }
        char *colon = strrchr(tok, ':');
        long at = colon ? strtol(colon + 1, NULL, 10) : 1;
        if (colon)
            *colon = 0;
        snprintf(g_crash.p[g_crash.n].name, sizeof(g_crash.p[0].name), "%s", tok);
        g_crash.p[g_crash.n].at = at > 0 ? at : 1;
        g_crash.p[g_crash.n].stall_ms = ms;
        g_crash.p[g_crash.n].fence = fence;
        g_crash.n++;
    }
}

static void load(void)
{
    g_crash.loaded = 1;
    load_var("SLUICE_CRASH_AT", 0, 0);
    load_var("SLUICE_STALL_AT", 1, 0);
    load_var("SLUICE_FENCE_AT", 0, 1);
}

int sl__crash_point(const char *name)
{
    int fence = 0;
    if (!g_crash.loaded)
        load();
    for (int i = 0; i < g_crash.n; i++) {
        if (strcmp(g_crash.p[i].name, name) != 0)
            continue;
        if (++g_crash.p[i].passes != g_crash.p[i].at)
            continue;
        if (g_crash.p[i].fence) {
            sl_log(SL_LOG_WARN, "crash", "SLUICE_FENCE_AT: fencing the producer at %s, pass %ld",
                   name, g_crash.p[i].at);
            fence = 1;
        } else if (g_crash.p[i].stall_ms) {
            sl_log(SL_LOG_WARN, "crash", "SLUICE_STALL_AT: stalling %ld ms at %s, pass %ld",
                   g_crash.p[i].stall_ms, name, g_crash.p[i].at);
            struct timespec ts = {g_crash.p[i].stall_ms / 1000,
                                  (g_crash.p[i].stall_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        } else {
            sl_log(SL_LOG_WARN, "crash", "SLUICE_CRASH_AT: dying at %s, pass %ld", name,
                   g_crash.p[i].at);
            raise(SIGKILL);
        }
    }
    return fence;
}
