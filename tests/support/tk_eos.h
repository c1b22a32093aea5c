/*
 * tk_eos.h - checks an output topic the way Kafka Streams' EOS test does.
 *
 * The job counts (column "count") and sums bytes ("sum_bytes") by page over page views
 * generated with by_page set, so each page's input has one order. The verifier reads the
 * output read_committed and asserts that every row equals its page's aggregate over a
 * prefix of that page's input, that per page the counts strictly increase and end at the
 * page's total, that no row id (task, batch, row: the sluice-id header) appears twice,
 * and that no transaction is left open.
 * It logs what it compared.
 */
#ifndef SL_TK_EOS_H
#define SL_TK_EOS_H

#include <stdint.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"

/** Pages of the generated input: spec->pages must be at most this. */
#define TK_EOS_PAGES 300

void tk_eos_verify(const char *bootstrap, const char *topic, const sl_gen_spec_t *spec, uint64_t n,
                   const char *what);

#endif
