#include "router/sinks/grpcc.h"

#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

const char *grpcc_code_name(int code)
{
    static const char *const names[] = {"OK",
                                        "CANCELLED",
                                        "UNKNOWN",
                                        "INVALID_ARGUMENT",
                                        "DEADLINE_EXCEEDED",
                                        "NOT_FOUND",
                                        "ALREADY_EXISTS",
                                        "PERMISSION_DENIED",
                                        "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION",
                                        "ABORTED",
                                        "OUT_OF_RANGE",
                                        "UNIMPLEMENTED",
                                        "INTERNAL",
                                        "UNAVAILABLE",
                                        "DATA_LOSS",
                                        "UNAUTHENTICATED"};
    return code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])) ? names[code] : "UNKNOWN";
}

void grpcc_prefix(uint8_t out[5], int compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

int grpcc_message(const void *body, size_t n, const uint8_t **msg, size_t *len)
{
    const uint8_t *p = body;
    if (n < 5 || p[0] != 0)
        return -1;
    size_t m = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    if (m > n - 5)
        return -1;
    *msg = p + 5;
    *len = m;
    return 0;
}

int grpcc_from_http(long status)
{
    switch (status) {
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

int64_t grpcc_retry_delay(const void *status, size_t n)
{
    if (!n)
        return -1;
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, n, status);
    if (!st)
        return -1;
    int64_t ns = -1;
    for (size_t i = 0; i < st->n_details && ns < 0; i++) {
        const Google__Protobuf__Any *a = st->details[i];
        /* Any names its type by a URL whose last segment is the message's full name. */
        const char *slash = a->type_url ? strrchr(a->type_url, '/') : NULL;
        if (!slash || strcmp(slash + 1, "google.rpc.RetryInfo"))
            continue;
        Google__Rpc__RetryInfo *ri =
            google__rpc__retry_info__unpack(NULL, a->value.len, a->value.data);
        ns = 0; /* a RetryInfo says "retry", whatever delay it gives */
        if (ri && ri->retry_delay && ri->retry_delay->seconds >= 0 &&
            ri->retry_delay->seconds < 86400 * 365)
            ns = ri->retry_delay->seconds * 1000000000LL + ri->retry_delay->nanos;
        if (ns < 0)
            ns = 0;
        google__rpc__retry_info__free_unpacked(ri, NULL);
    }
    google__rpc__status__free_unpacked(st, NULL);
    return ns;
}

int grpcc_retryable(int code, int has_retry_info)
{
    switch (code) {
    case GRPC_CANCELLED:
    case GRPC_DEADLINE_EXCEEDED:
    case GRPC_ABORTED:
    case GRPC_OUT_OF_RANGE:
    case GRPC_UNAVAILABLE:
    case GRPC_DATA_LOSS:
        return 1;
    case GRPC_RESOURCE_EXHAUSTED:
        return has_retry_info;
    default:
        return 0;
    }
}
