/*
 * embedded.h - schema files of schemas/ compiled into the library as strings by
 * schemas/embed.py, so the demo and the generator carry the very schema the tree holds.
 */
#ifndef SL_EMBEDDED_H
#define SL_EMBEDDED_H

extern const char sl__schema_pageview[];

#endif
