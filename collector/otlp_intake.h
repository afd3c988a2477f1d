/* One OTLP export request handed to the collector, whatever carried it (the http input's
 * OTLP/HTTP, the otlp_grpc input): each event is staged, except one over max_event_size, which is
 * dead-lettered as too large (its first bytes kept), and a record that does not decode
 * (OTLP/JSON), dead-lettered with why. What was dead-lettered is the answer's partial success.
 * Used on the collector's thread, one request at a time per intake. */
#ifndef SPILLWAY_OTLP_INTAKE_H
#define SPILLWAY_OTLP_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "collector/otlp.h"

struct input;

struct otlp_intake {
    struct otlp_out out; /* what otlp_decode hands the request's records to */
    struct input *in;
    size_t max;     /* max_event_size */
    int invalid;    /* records that did not decode */
    char why[96];   /* the first one's reason */
    uint64_t dead0; /* the input's dead letters before the request */
};

/* Starts a request of input in, whose events may be max bytes long. */
void otlp_intake_begin(struct otlp_intake *t, struct input *in, size_t max);
/* After the decode: the records dead-lettered (the partial success's rejected count), with why
 * in msg (how many too large, how many invalid and the first reason). */
int64_t otlp_intake_rejected(const struct otlp_intake *t, char *msg, size_t size);

#endif
