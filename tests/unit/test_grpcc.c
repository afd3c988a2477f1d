/* Unit tests of the gRPC client pieces (router/sinks/grpcc.h): what the otlp sink retries (the
 * OTLP specification's list, RESOURCE_EXHAUSTED only with a RetryInfo), the delay a
 * google.rpc.Status's RetryInfo asks for (and none from a Status without one, another detail, or
 * bytes that do not decode), the HTTP statuses of answers without a grpc-status, and the framing
 * of messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/sinks/grpcc.h"

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

static void test_retryable(void **state)
{
    static const int yes[] = {GRPC_CANCELLED,    GRPC_DEADLINE_EXCEEDED, GRPC_ABORTED,
                              GRPC_OUT_OF_RANGE, GRPC_UNAVAILABLE,       GRPC_DATA_LOSS};
    for (int code = 0; code <= 16; code++) {
        int want = 0;
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
            want |= yes[i] == code;
        assert_int_equal(grpcc_retryable(code, 0), want);
        assert_int_equal(grpcc_retryable(code, 1), want || code == GRPC_RESOURCE_EXHAUSTED);
    }
    assert_string_equal(grpcc_code_name(GRPC_INVALID_ARGUMENT), "INVALID_ARGUMENT");
    assert_string_equal(grpcc_code_name(16), "UNAUTHENTICATED");
    assert_string_equal(grpcc_code_name(99), "UNKNOWN");
}

static void test_from_http(void **state)
{
    assert_int_equal(grpcc_from_http(400), GRPC_INTERNAL);
    assert_int_equal(grpcc_from_http(401), GRPC_UNAUTHENTICATED);
    assert_int_equal(grpcc_from_http(403), GRPC_PERMISSION_DENIED);
    assert_int_equal(grpcc_from_http(404), GRPC_UNIMPLEMENTED);
    for (long s = 0; s < 600; s++) {
        if (s == 429 || s == 502 || s == 503 || s == 504)
            assert_int_equal(grpcc_from_http(s), GRPC_UNAVAILABLE);
        else if (s != 400 && s != 401 && s != 403 && s != 404)
            assert_int_equal(grpcc_from_http(s), GRPC_UNKNOWN);
    }
}

/* A google.rpc.Status with one detail of type url holding msg, packed into out. */
static size_t status_with(const char *url, const ProtobufCMessage *msg, uint8_t *out)
{
    uint8_t inner[256];
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = (char *)url;
    any.value.len = msg ? protobuf_c_message_pack(msg, inner) : 0;
    any.value.data = inner;
    Google__Protobuf__Any *details[] = {&any};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = GRPC_UNAVAILABLE;
    st.message = "busy";
    st.n_details = 1;
    st.details = details;
    return google__rpc__status__pack(&st, out);
}

static void test_retry_delay(void **state)
{
    uint8_t buf[512];
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    d.seconds = 2;
    d.nanos = 500000000;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    ri.retry_delay = &d;
    size_t n = status_with("type.googleapis.com/google.rpc.RetryInfo", &ri.base, buf);
    assert_true(grpcc_retry_delay(buf, n) == 2500000000LL);
    /* Another detail type: no RetryInfo. */
    n = status_with("type.googleapis.com/google.rpc.DebugInfo", &ri.base, buf);
    assert_true(grpcc_retry_delay(buf, n) == -1);
    /* A RetryInfo without a delay, or with a negative one: there, with no wait of its own (so
     * RESOURCE_EXHAUSTED with it is retried at the backoff's pace). */
    Google__Rpc__RetryInfo empty = GOOGLE__RPC__RETRY_INFO__INIT;
    n = status_with("type.googleapis.com/google.rpc.RetryInfo", &empty.base, buf);
    assert_true(grpcc_retry_delay(buf, n) == 0);
    d.seconds = -5;
    n = status_with("type.googleapis.com/google.rpc.RetryInfo", &ri.base, buf);
    assert_true(grpcc_retry_delay(buf, n) == 0);
    /* Not a Status at all, or nothing. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    assert_true(grpcc_retry_delay(junk, sizeof(junk)) == -1);
    assert_true(grpcc_retry_delay(NULL, 0) == -1);
}

static void test_framing(void **state)
{
    uint8_t p[5];
    grpcc_prefix(p, 1, 0x01020304);
    static const uint8_t want[] = {1, 1, 2, 3, 4};
    assert_memory_equal(p, want, 5);
    static const uint8_t body[] = {0, 0, 0, 0, 3, 'a', 'b', 'c', 'x'};
    const uint8_t *m;
    size_t n;
    assert_int_equal(grpcc_message(body, sizeof(body), &m, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(m, "abc", 3);
    assert_int_equal(grpcc_message(body, 7, &m, &n), -1); /* cut short */
    assert_int_equal(grpcc_message(body, 4, &m, &n), -1);
    static const uint8_t zipped[] = {1, 0, 0, 0, 0};
    assert_int_equal(grpcc_message(zipped, 5, &m, &n), -1); /* compressed: not asked for */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_from_http),
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
