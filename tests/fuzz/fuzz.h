/*
 * fuzz.h - what the fuzz targets share.
 */
#ifndef SL_FUZZ_H
#define SL_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The fuzzer's bytes as a NUL-terminated string (the parsers take text); free() it.
 * NULL when out of memory. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = 0;
    }
    return text;
}

#endif
