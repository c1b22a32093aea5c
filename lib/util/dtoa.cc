/*
 * dtoa.cc - doubles as the shortest text that reads back to the same value, through
 * Google's double-conversion library (C++; the engine calls it through sl__dtoa). printf
 * has no such format: trying %.15g, %.16g and %.17g with strtod after each took about
 * 460 ns a value, four fifths of encoding a result row as JSON.
 */
#include <double-conversion/double-conversion.h>

#include <string.h>

#include "dtoa.h"

size_t sl__dtoa(double d, char *buf)
{
    using double_conversion::DoubleToStringConverter;
    /* As %g does: plain digits from 1e-4 up to below 1e17, an exponent beyond; and always
     * a decimal point (1.0, not 1) so that consumers keep the column's type. */
    static const DoubleToStringConverter conv(
        DoubleToStringConverter::EMIT_POSITIVE_EXPONENT_SIGN |
            DoubleToStringConverter::EMIT_TRAILING_DECIMAL_POINT |
            DoubleToStringConverter::EMIT_TRAILING_ZERO_AFTER_POINT,
        "Infinity", "NaN", 'e', -4, 17, 0, 0);
    double_conversion::StringBuilder sb(buf, SL_DTOA_MAX);
    conv.ToShortest(d, &sb);
    size_t n = (size_t)sb.position();
    sb.Finalize();
    return n;
}

size_t sl__dtoa_java(double d, char *buf)
{
    using double_conversion::DoubleToStringConverter;
    /* Java's Double.toString(): plain digits from 1e-3 up to below 1e7, else "d.dddE<n>";
     * always a digit after the point. */
    static const DoubleToStringConverter conv(
        DoubleToStringConverter::EMIT_TRAILING_DECIMAL_POINT |
            DoubleToStringConverter::EMIT_TRAILING_ZERO_AFTER_POINT,
        "Infinity", "NaN", 'E', -3, 7, 0, 0);
    double_conversion::StringBuilder sb(buf, SL_DTOA_MAX);
    conv.ToShortest(d, &sb);
    size_t n = (size_t)sb.position();
    sb.Finalize();
    char *e = (char *)memchr(buf, 'E', n);
    if (e && !memchr(buf, '.', (size_t)(e - buf)) && n + 2 < SL_DTOA_MAX) {
        memmove(e + 2, e, n - (size_t)(e - buf) + 1);
        e[0] = '.';
        e[1] = '0';
        n += 2;
    }
    return n;
}
