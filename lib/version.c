/*
 * version.c - the library's version.
 */
#include "sluice/sluice.h"

SL_API const char *sl_version(void)
{
    return SLUICE_VERSION;
}

SL_API int sl_version_number(void)
{
    return SLUICE_VERSION_NUMBER;
}
