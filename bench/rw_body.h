/* The Prometheus remote write request the S11 benchmark sends (bench/run.py): n series of one
 * sample each, with the labels a scraped Prometheus series has (__name__, job, instance, and a
 * handler, method and code: six), snappy-compressed as remote write sends it, built with
 * protobuf-c and libsnappy. */
#ifndef SPILLWAY_BENCH_RW_BODY_H
#define SPILLWAY_BENCH_RW_BODY_H

#include "core/buf.h"

/* Replaces body's content with the request of n series. Returns 0, or 1 when out of memory. */
int rw_body(long n, struct buf *body);

#endif
