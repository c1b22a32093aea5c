/*
 * dtoa.h - doubles as text (dtoa.cc, in C++); included by util.h.
 */
#ifndef SL_DTOA_H
#define SL_DTOA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most bytes sl__dtoa() writes, its terminating NUL included. */
#define SL_DTOA_MAX 32

/**
 * Writes @p d to @p buf (SL_DTOA_MAX bytes, NUL-terminated) as the shortest decimal that
 * reads back to the same double, with a decimal point or an exponent ("2.0", "0.1",
 * "1e+20", "1.5e-5"); its length. Infinities and NaN are written as "Infinity", "NaN".
 */
size_t sl__dtoa(double d, char *buf);
/**
 * The same as Java's Double.toString() writes it, which is how Spark's console shows a
 * double: "2.0", "0.001", "1.0E7", "1.5E-5", "Infinity", "NaN"; its length.
 */
size_t sl__dtoa_java(double d, char *buf);

#ifdef __cplusplus
}
#endif

#endif
