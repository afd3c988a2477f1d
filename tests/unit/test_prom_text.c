/* Unit tests of the text exposition parser (collector/prom_text.h). What must hold: samples with
 * and without labels and timestamps, label values unescaped, types from the page's TYPE lines
 * (counters and gauges as such; the series of histograms and summaries, and families without a
 * TYPE, unknown), NaN and the infinities read as such, OpenMetrics' timestamps in seconds,
 * exemplars and # EOF; and the bad pages of issue 17: a 1 MB line, a series twice, a missing TYPE,
 * lines that are not samples: each line that does not read is handed over with its reason, and
 * every other line of the page is still read. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/prom_text.h"

struct got {
    struct buf text; /* "name{labels} type value ts\n" per sample, "! why: line\n" per error */
    int samples, errors;
};

static void on_sample(void *ud, const struct prom_sample *s)
{
    static const char *const types[] = {"unknown", "counter", "gauge"};
    struct got *g = ud;
    buf_append(&g->text, s->name, s->nlen);
    buf_putc(&g->text, '{');
    for (size_t i = 0; i < s->nlabels; i++)
        buf_printf(&g->text, "%s%.*s=%.*s", i ? "," : "", (int)s->labels[i].nlen, s->labels[i].name,
                   (int)s->labels[i].vlen, s->labels[i].value);
    buf_printf(&g->text, "} %s %g", types[s->type], s->value);
    if (s->ts_ms != INT64_MIN)
        buf_printf(&g->text, " @%lld", (long long)s->ts_ms);
    buf_putc(&g->text, '\n');
    g->samples++;
}

static void on_error(void *ud, const char *why, const char *line, size_t len)
{
    struct got *g = ud;
    buf_printf(&g->text, "! %s: %.*s\n", why, (int)(len > 40 ? 40 : len), line);
    g->errors++;
}

static int parse(struct prom_text *p, const char *page, size_t len, int om, struct got *g)
{
    const struct prom_text_out out = {on_sample, on_error, g};
    memset(g, 0, sizeof(*g));
    int n = prom_text_parse(p, page, len, om, 65536, &out);
    buf_putc(&g->text, '\0');
    return n;
}

static void test_page(void **state)
{
    static const char page[] =
        "# HELP http_requests_total Requests.\n"
        "# TYPE http_requests_total counter\n"
        "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
        "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
        "\n"
        "# TYPE temp gauge\n"
        "temp 21.5\n"
        "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
        "file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
        "# TYPE rpc_duration_seconds summary\n"
        "rpc_duration_seconds{quantile=\"0.5\"} NaN\n"
        "rpc_duration_seconds_sum 1.7560473e+07\n"
        "rpc_duration_seconds_count 2693\n"
        "# TYPE lat histogram\n"
        "lat_bucket{le=\"0.1\",} 3\n"
        "lat_bucket{le=\"+Inf\"} 5\n"
        "  edge{a=\"1\" , b = \"2\"}\t-Inf\r\n"
        "big +Inf\n"
        "no_newline_at_the_end 1";
    struct prom_text p;
    prom_text_init(&p);
    struct got g;
    assert_int_equal(parse(&p, page, sizeof(page) - 1, 0, &g), 12);
    assert_string_equal(
        g.text.data,
        "http_requests_total{method=post,code=200} counter 1027 @1395066363000\n"
        "http_requests_total{method=post,code=400} counter 3 @1395066363000\n"
        "temp{} gauge 21.5\n"
        "msdos_file_access_time_seconds{path=C:\\DIR\\FILE.TXT,error=Cannot find file:\n"
        "\"FILE.TXT\"} unknown 1.45826e+09\n"
        "rpc_duration_seconds{quantile=0.5} unknown nan\n"
        "rpc_duration_seconds_sum{} unknown 1.75605e+07\n"
        "rpc_duration_seconds_count{} unknown 2693\n"
        "lat_bucket{le=0.1} unknown 3\n"
        "lat_bucket{le=+Inf} unknown 5\n"
        "edge{a=1,b=2} unknown -inf\n"
        "big{} unknown inf\n"
        "no_newline_at_the_end{} unknown 1\n");
    buf_free(&g.text);
    prom_text_free(&p);
}

/* OpenMetrics: timestamps in seconds, exemplars, a counter family's _total series, # EOF. */
static void test_openmetrics(void **state)
{
    static const char page[] = "# TYPE foo counter\n"
                               "# UNIT foo seconds\n"
                               "foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n"
                               "foo_created 1520872607.123\n"
                               "# EOF\n"
                               "after_eof 1\n";
    struct prom_text p;
    prom_text_init(&p);
    struct got g;
    assert_int_equal(parse(&p, page, sizeof(page) - 1, 1, &g), 2);
    assert_string_equal(g.text.data, "foo_total{} counter 17 @1520879607789\n"
                                     "foo_created{} unknown 1.52087e+09\n");
    buf_free(&g.text);
    prom_text_free(&p);
}

/* Issue 17's bad pages: each bad line is an error with its reason, the other lines are read. */
static void test_bad_lines(void **state)
{
    struct buf page = {0};
    buf_puts(&page, "ok_before 1\n");
    buf_puts(&page, "huge{v=\"");
    for (int i = 0; i < 1000000; i++)
        buf_putc(&page, 'x');
    buf_puts(&page, "\"} 1\n");
    buf_puts(&page, "dup{a=\"1\",b=\"2\"} 1\n"
                    "dup{b=\"2\",a=\"1\"} 2\n"
                    "no_type_family 3\n"
                    "<html><body>not metrics</body></html>\n"
                    "bad_value 12abc\n"
                    "bad_labels{a=1} 1\n"
                    "twice{a=\"1\",a=\"2\"} 1\n"
                    "bad_ts 1 soon\n"
                    "# TYPE t counter\n"
                    "# TYPE t gauge\n"
                    "# TYPE u fancy\n"
                    "nan_is_a_value NaN\n"
                    "ok_after 2\n");
    struct prom_text p;
    prom_text_init(&p);
    struct got g;
    assert_int_equal(parse(&p, page.data, page.len, 0, &g), 5);
    assert_int_equal(g.errors, 9);
    assert_string_equal(
        g.text.data,
        "ok_before{} unknown 1\n"
        "! a line longer than max_line: huge{v=\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
        "dup{a=1,b=2} unknown 1\n"
        "! a series already on the page (the first one is kept): dup{b=\"2\",a=\"1\"} 2\n"
        "no_type_family{} unknown 3\n"
        "! not a sample (a metric name first), a comment or a blank line: <html><body>not "
        "metrics</body></html>\n"
        "! the value is not a number: bad_value 12abc\n"
        "! a label value is not a quoted string with \\\\, \\\" or \\n escapes: bad_labels{a=1} 1\n"
        "! a label name given twice: twice{a=\"1\",a=\"2\"} 1\n"
        "! what follows the value is not a timestamp: bad_ts 1 soon\n"
        "! a second # TYPE line for a family: # TYPE t gauge\n"
        "! a # TYPE line names no type the format has: # TYPE u fancy\n"
        "nan_is_a_value{} unknown nan\n"
        "ok_after{} unknown 2\n");
    /* The parser starts each page afresh: the same page gives the same answer again. */
    struct got again;
    assert_int_equal(parse(&p, page.data, page.len, 0, &again), 5);
    assert_string_equal(again.text.data, g.text.data);
    buf_free(&g.text);
    buf_free(&again.text);
    buf_free(&page);
    prom_text_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page),
        cmocka_unit_test(test_openmetrics),
        cmocka_unit_test(test_bad_lines),
    };
    return cmocka_run_group_tests_name("prom_text", tests, NULL, NULL);
}
