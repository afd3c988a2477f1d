#include "collector/format_syslog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/collector.h"
#include "collector/format.h"
#include "core/buf.h"
#include "core/jsonw.h"
#include "core/timeutil.h"
#include "core/utf8.h"

/* Members written as they are: their values never need escaping. */
#define MEMBER(key, s)                                                                             \
    {                                                                                              \
        ",\"" key "\":\"" s "\"", sizeof(",\"" key "\":\"" s "\"") - 1                             \
    }
#define LEVEL_NAME(s)   s,
#define LEVEL_MEMBER(s) MEMBER("level", s),
#define SYSLOG_LEVELS(X)                                                                           \
    X("EMERGENCY") X("ALERT") X("CRITICAL") X("ERROR") X("WARN") X("NOTICE") X("INFO") X("DEBUG")

const char *const syslog_levels[8] = {SYSLOG_LEVELS(LEVEL_NAME)};

/* level and facility, one member per value: every message has both (written through
 * jsonw_string, they cost a tenth of the micro-benchmark S4's time). */
static const struct member {
    const char *text;
    size_t len;
} level_members[8] = {SYSLOG_LEVELS(LEVEL_MEMBER)},
  facility_members[24] = {
      MEMBER("facility", "kern"),   MEMBER("facility", "user"),     MEMBER("facility", "mail"),
      MEMBER("facility", "daemon"), MEMBER("facility", "auth"),     MEMBER("facility", "syslog"),
      MEMBER("facility", "lpr"),    MEMBER("facility", "news"),     MEMBER("facility", "uucp"),
      MEMBER("facility", "cron"),   MEMBER("facility", "authpriv"), MEMBER("facility", "ftp"),
      MEMBER("facility", "ntp"),    MEMBER("facility", "audit"),    MEMBER("facility", "alert"),
      MEMBER("facility", "clock"),  MEMBER("facility", "local0"),   MEMBER("facility", "local1"),
      MEMBER("facility", "local2"), MEMBER("facility", "local3"),   MEMBER("facility", "local4"),
      MEMBER("facility", "local5"), MEMBER("facility", "local6"),   MEMBER("facility", "local7")};

static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* A cursor over the message. */
struct cur {
    const char *s;
    size_t len, i;
};

static int at_end(const struct cur *c)
{
    return c->i >= c->len;
}

static int peek(const struct cur *c)
{
    return c->i < c->len ? (unsigned char)c->s[c->i] : -1;
}

static int digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

/* The event under construction: fields are added as they are parsed. */
struct ev {
    struct buf *out;
    size_t start;
};

/* ,"key":"value" (key: a string literal, needing no escape). */
#define field_str(e, key, v, n) field_raw(e, ",\"" key "\":", sizeof(key) + 3, v, n)

static void field_raw(struct ev *e, const char *member, size_t mlen, const char *v, size_t n)
{
    buf_append(e->out, member, mlen);
    jsonw_string(e->out, v, n);
}

/* "<PRI>": 1-3 digits, 0..191. Returns the value or -1. */
static int parse_pri(struct cur *c)
{
    if (peek(c) != '<')
        return -1;
    size_t i = c->i + 1;
    int v = 0, n = 0;
    while (i < c->len && digit(c->s[i]) && n < 3) {
        v = v * 10 + (c->s[i++] - '0');
        n++;
    }
    if (n == 0 || i >= c->len || c->s[i] != '>' || v > 191 || (n > 1 && c->s[c->i + 1] == '0'))
        return -1;
    c->i = i + 1;
    return v;
}

/* A space-delimited token of printable ASCII; "-" is NILVALUE (*n = 0). */
static int token(struct cur *c, const char **t, size_t *n, size_t max)
{
    size_t st = c->i;
    while (c->i < c->len && c->s[c->i] > 32 && c->s[c->i] < 127)
        c->i++;
    size_t len = c->i - st;
    if (len == 0 || len > max)
        return -1;
    *t = c->s + st;
    *n = (len == 1 && c->s[st] == '-') ? 0 : len;
    return 0;
}

static int space(struct cur *c)
{
    if (peek(c) != ' ')
        return -1;
    c->i++;
    return 0;
}

/* A printable SD-NAME (SD-ID or PARAM-NAME): 1..32 chars, none of = ] " or space. */
static size_t sd_name(struct cur *c)
{
    size_t st = c->i;
    while (c->i < c->len && c->s[c->i] > 32 && c->s[c->i] < 127 && c->s[c->i] != '=' &&
           c->s[c->i] != ']' && c->s[c->i] != '"')
        c->i++;
    size_t n = c->i - st;
    return n <= 32 ? n : 0;
}

/* One SD-PARAM as it appears in the message (an element without any is one entry with no
 * name, so that its SD-ID is still written), and where it goes in the output: the positions of
 * the first entry of its SD-ID and of the first entry of its SD-ID and PARAM-NAME. */
struct sd_param {
    const char *id, *name, *val; /* val: between the quotes, escapes still in */
    uint8_t idn, namen;
    uint32_t valn, pos, id_first, name_first;
};

#define SD_STACK 32 /* params without a malloc: any message a sender really writes */

/* By SD-ID, PARAM-NAME, then position: equal names next to each other, first one first. */
static int by_name(const void *x, const void *y)
{
    const struct sd_param *a = x, *b = y;
    int c = bytes_cmp(a->id, a->idn, b->id, b->idn);
    if (!c)
        c = bytes_cmp(a->name, a->namen, b->name, b->namen);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

/* The output's order: SD-IDs as they first appear, within one its PARAM-NAMEs as they first
 * appear, the values of a name in their order. */
static int by_output(const void *x, const void *y)
{
    const struct sd_param *a = x, *b = y;
    if (a->id_first != b->id_first)
        return a->id_first < b->id_first ? -1 : 1;
    if (a->name_first != b->name_first)
        return a->name_first < b->name_first ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

/* A PARAM-VALUE as a JSON string: the escapes RFC 5424 defines (\" \\ \]) read, any other
 * backslash kept. */
static void sd_value(struct buf *out, const char *v, size_t n)
{
    buf_putc(out, '"');
    size_t st = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] == '\\' && (v[i + 1] == '"' || v[i + 1] == '\\' || v[i + 1] == ']')) {
            jsonw_string_body(out, v + st, i - st);
            st = ++i; /* the escaped byte starts the next piece */
        }
    }
    jsonw_string_body(out, v + st, n - st);
    buf_putc(out, '"');
}

/* Writes {"SD-ID": {"PARAM": "value", ...}, ...}: an SD-ID seen twice merges (RFC 5424 forbids
 * it, senders do it), a PARAM-NAME seen twice in one SD-ID holds an array of its values (RFC 5424
 * 7.2.5: [origin ip="192.0.2.1" ip="192.0.2.129"]). Grouping sorts the params, so a message of
 * thousands of them costs n log n, not n squared. */
static void sd_write(struct buf *out, struct sd_param *p, size_t n)
{
    qsort(p, n, sizeof(*p), by_name);
    for (size_t i = 0, id = 0, name = 0; i < n; i++) {
        if (i && bytes_cmp(p[i].id, p[i].idn, p[id].id, p[id].idn)) {
            id = name = i;
        } else if (i && bytes_cmp(p[i].name, p[i].namen, p[name].name, p[name].namen)) {
            name = i;
        }
        p[i].name_first = p[name].pos;
    }
    /* An SD-ID's first position: the least of its names' first ones. */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        uint32_t first = p[i].pos;
        while (j < n && !bytes_cmp(p[j].id, p[j].idn, p[i].id, p[i].idn))
            first = p[j].name_first < first ? p[j].name_first : first, j++;
        for (; i < j; i++)
            p[i].id_first = first;
    }
    qsort(p, n, sizeof(*p), by_output);
    buf_puts(out, ",\"structured_data\":{");
    for (size_t i = 0; i < n; i++) {
        int new_id = !i || p[i].id_first != p[i - 1].id_first;
        if (new_id) {
            if (i)
                buf_puts(out, "},");
            jsonw_string(out, p[i].id, p[i].idn);
            buf_puts(out, ":{");
        }
        if (!p[i].namen)
            continue; /* the entry of an element without params */
        size_t k = i;
        while (k + 1 < n && p[k + 1].name_first == p[i].name_first &&
               p[k + 1].id_first == p[i].id_first)
            k++;
        if (!new_id && p[i - 1].namen)
            buf_putc(out, ',');
        jsonw_string(out, p[i].name, p[i].namen);
        buf_putc(out, ':');
        if (k > i)
            buf_putc(out, '[');
        for (size_t v = i; v <= k; v++) {
            if (v > i)
                buf_putc(out, ',');
            sd_value(out, p[v].val, p[v].valn);
        }
        if (k > i)
            buf_putc(out, ']');
        i = k;
    }
    buf_puts(out, n ? "}}" : "}");
}

/* Adds one entry to the params, growing them past the stack's share. -ENOMEM or 0. */
static int sd_add(struct sd_param **p, size_t *n, size_t *cap, struct sd_param *stack,
                  struct sd_param e)
{
    if (*n == *cap) {
        size_t ncap = *cap * 2;
        struct sd_param *q = malloc(ncap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        memcpy(q, *p, *n * sizeof(*q));
        if (*p != stack)
            free(*p);
        *p = q;
        *cap = ncap;
    }
    e.pos = (uint32_t)*n;
    (*p)[(*n)++] = e;
    return 0;
}

/* SD-ELEMENTs: [SD-ID *(SP PARAM-NAME="PARAM-VALUE")]..., or "-". */
static int parse_sd(struct cur *c, struct ev *e)
{
    if (peek(c) == '-') {
        c->i++;
        return 0;
    }
    if (peek(c) != '[')
        return -1;
    struct sd_param stack[SD_STACK], *p = stack;
    size_t n = 0, cap = SD_STACK;
    int rc = 0;
    while (peek(c) == '[' && rc == 0) {
        c->i++;
        const char *id = c->s + c->i;
        size_t idn = sd_name(c);
        if (!idn) {
            rc = -1;
            break;
        }
        struct sd_param el = {.id = id, .idn = (uint8_t)idn, .name = "", .val = ""};
        rc = sd_add(&p, &n, &cap, stack, el);
        while (rc == 0 && peek(c) == ' ') {
            c->i++;
            struct sd_param pa = el;
            pa.name = c->s + c->i;
            pa.namen = (uint8_t)sd_name(c);
            if (!pa.namen || peek(c) != '=' || (c->i++, peek(c) != '"')) {
                rc = -1;
                break;
            }
            pa.val = c->s + ++c->i;
            while (!at_end(c) && peek(c) != '"')
                c->i += c->s[c->i] == '\\' && c->i + 1 < c->len ? 2 : 1;
            if (peek(c) != '"') {
                rc = -1;
                break;
            }
            pa.valn = (uint32_t)(c->s + c->i - pa.val);
            c->i++;
            rc = sd_add(&p, &n, &cap, stack, pa);
        }
        if (rc || peek(c) != ']') {
            rc = -1;
            break;
        }
        c->i++;
    }
    if (rc == 0)
        sd_write(e->out, p, n);
    if (p != stack)
        free(p);
    return rc;
}

/* The message part: a UTF-8 BOM is dropped; trailing newlines too. */
static void message(struct cur *c, struct ev *e)
{
    const char *m = c->s + c->i;
    size_t n = c->len - c->i;
    if (n >= 3 && (unsigned char)m[0] == 0xEF && (unsigned char)m[1] == 0xBB &&
        (unsigned char)m[2] == 0xBF) {
        m += 3;
        n -= 3;
    }
    while (n && (m[n - 1] == '\n' || m[n - 1] == '\r'))
        n--;
    field_str(e, "message", m, n);
}

static void severity_fields(struct ev *e, int pri)
{
    int fac = pri >> 3, sev = pri & 7;
    char severity[] = ",\"severity\":0";
    severity[sizeof(severity) - 2] = (char)('0' + sev); /* 0 to 7 */
    buf_append(e->out, level_members[sev].text, level_members[sev].len);
    buf_append(e->out, facility_members[fac].text, facility_members[fac].len);
    buf_append(e->out, severity, sizeof(severity) - 1);
}

/* The part every event starts with; the timestamp is filled in by the caller. */
static void begin(struct ev *e, const char *ts, const char *source)
{
    buf_puts(e->out, "{\"timestamp\":\"");
    buf_append(e->out, ts, TIME_RFC3339_LEN);
    buf_puts(e->out, "\",\"kind\":\"log\",\"source\":");
    jsonw_string(e->out, source, strlen(source));
}

static void end(struct ev *e, const struct recv_time *rt)
{
    buf_puts(e->out, ",\"received_at\":\"");
    buf_append(e->out, rt->text, TIME_RFC3339_LEN);
    buf_puts(e->out, "\"}");
}

/* RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG] */
static int parse_5424(struct cur *c, int pri, const char *source, const struct recv_time *rt,
                      struct ev *e)
{
    if (!digit(peek(c)) || peek(c) == '0')
        return -1;
    while (digit(peek(c)))
        c->i++;
    const char *f[5];
    size_t fn[5];
    static const size_t max[5] = {64, 255, 48, 128, 32};
    if (space(c))
        return -1;
    for (int k = 0; k < 5; k++) {
        if ((k && space(c)) || token(c, &f[k], &fn[k], max[k]))
            return -1;
    }
    char ts[TIME_RFC3339_LEN + 1];
    int64_t ns = rt->ns;
    if (fn[0] == TIME_RFC3339_LEN && f[0][17] != '6' && time_is_canonical(f[0], fn[0])) {
        memcpy(ts, f[0], TIME_RFC3339_LEN); /* already as the event has it (not a leap second) */
    } else {
        if (fn[0] && time_parse_rfc3339(f[0], fn[0], &ns))
            return -1;
        time_format_rfc3339(ns, ts);
    }
    if (space(c))
        return -1;
    begin(e, ts, source);
    if (fn[1])
        field_str(e, "host", f[1], fn[1]);
    if (fn[2])
        field_str(e, "service", f[2], fn[2]);
    severity_fields(e, pri);
    if (fn[3])
        field_str(e, "procid", f[3], fn[3]);
    if (fn[4])
        field_str(e, "msgid", f[4], fn[4]);
    if (parse_sd(c, e))
        return -1;
    if (peek(c) == ' ')
        c->i++;
    else if (!at_end(c))
        return -1;
    if (!at_end(c))
        message(c, e);
    end(e, rt);
    return 0;
}

/* "Mmm dd hh:mm:ss" (day space-padded); the year is the current one, unless that puts the
 * time more than a day in the future (a December message read in January). Local time. */
static int parse_3164_time(struct cur *c, const struct recv_time *rt, int64_t *ns)
{
    const char *s = c->s + c->i;
    size_t n = c->len - c->i;
    if (n < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':')
        return -1;
    int mon = -1;
    for (int m = 0; m < 12; m++) {
        if (!memcmp(s, months[m], 3))
            mon = m;
    }
    int day = (s[4] == ' ' ? 0 : s[4] - '0') * 10 + (s[5] - '0');
    if (mon < 0 || (s[4] != ' ' && !digit(s[4])) || !digit(s[5]) || day < 1 || day > 31)
        return -1;
    for (int k = 7; k < 15; k++) {
        if (k != 9 && k != 12 && !digit(s[k]))
            return -1;
    }
    int hh = (s[7] - '0') * 10 + (s[8] - '0'), mm = (s[10] - '0') * 10 + (s[11] - '0'),
        ss = (s[13] - '0') * 10 + (s[14] - '0');
    if (hh > 23 || mm > 59 || ss > 60)
        return -1; /* mktime would quietly move an impossible time to another one */
    time_t now = (time_t)(rt->ns / 1000000000);
    struct tm tm;
    localtime_r(&now, &tm);
    int year = tm.tm_year;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct tm t = {.tm_year = year,
                       .tm_mon = mon,
                       .tm_mday = day,
                       .tm_hour = (s[7] - '0') * 10 + (s[8] - '0'),
                       .tm_min = (s[10] - '0') * 10 + (s[11] - '0'),
                       .tm_sec = (s[13] - '0') * 10 + (s[14] - '0'),
                       .tm_isdst = -1};
        time_t when = mktime(&t);
        if (when == (time_t)-1 || t.tm_mday != day || t.tm_mon != mon)
            return -1; /* Feb 30 and Apr 31 do not exist (mktime moved them) */
        if (when > now + 86400 && attempt == 0) {
            year--;
            continue;
        }
        *ns = (int64_t)when * 1000000000;
        break;
    }
    c->i += 15;
    return 0;
}

/* TAG: "app[pid]:" or "app:"; returns 1 when found at the cursor. */
static int parse_tag(struct cur *c, struct ev *e)
{
    size_t st = c->i, i = c->i;
    while (i < c->len && i - st < 48 && c->s[i] != '[' && c->s[i] != ':' && c->s[i] != ' ' &&
           (unsigned char)c->s[i] > 32)
        i++;
    if (i == st || i >= c->len)
        return 0;
    size_t tn = i - st;
    const char *pid = NULL;
    size_t pn = 0;
    if (c->s[i] == '[') {
        size_t ps = ++i;
        while (i < c->len && c->s[i] != ']' && i - ps < 128)
            i++;
        if (i >= c->len || c->s[i] != ']')
            return 0;
        pid = c->s + ps;
        pn = i - ps;
        i++;
    }
    if (i >= c->len || c->s[i] != ':')
        return 0;
    i++;
    field_str(e, "service", c->s + st, tn);
    if (pid && pn)
        field_str(e, "procid", pid, pn);
    if (i < c->len && c->s[i] == ' ')
        i++;
    c->i = i;
    return 1;
}

/* RFC 3164: <PRI>TIMESTAMP SP HOSTNAME SP TAG: MSG, where senders often leave out HOSTNAME. */
static int parse_3164(struct cur *c, int pri, const char *source, const struct recv_time *rt,
                      struct ev *e)
{
    int64_t ns;
    if (parse_3164_time(c, rt, &ns))
        return -1;
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ns, ts);
    begin(e, ts, source);
    severity_fields(e, pri);
    if (space(c) == 0) {
        /* A hostname is a token not ending in ':' and not holding '[' (that would be a tag). */
        if (!parse_tag(c, e)) {
            const char *h;
            size_t hn;
            size_t save = c->i;
            if (token(c, &h, &hn, 255) == 0 && peek(c) == ' ') {
                field_str(e, "host", h, hn);
                c->i++;
                parse_tag(c, e);
            } else {
                c->i = save;
            }
        }
    }
    message(c, e);
    end(e, rt);
    return 0;
}

enum syslog_result syslog_to_event(const char *msg, size_t len, const char *source,
                                   const struct recv_time *rt, struct buf *out, const char **err)
{
    size_t bad = utf8_check_text(msg, len);
    if (bad != len) {
        /* Old senders write Latin-1 after the header; refuse rather than guess an encoding. */
        *err = msg[bad] ? "invalid UTF-8 in syslog message" : "NUL byte in syslog message";
        return SYSLOG_REJECT;
    }
    /* A frame may carry its newline (octet counting keeps it): it is not part of any field. */
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        len--;
    struct ev e = {out, out->len};
    struct cur c = {msg, len, 0};
    int pri = parse_pri(&c);
    if (pri >= 0) {
        size_t after_pri = c.i;
        if (parse_5424(&c, pri, source, rt, &e) == 0)
            return SYSLOG_OK;
        out->len = e.start;
        c.i = after_pri;
        if (parse_3164(&c, pri, source, rt, &e) == 0)
            return SYSLOG_OK;
        out->len = e.start;
    }
    /* Not strict syslog: keep the text as the message of a user.notice log. */
    begin(&e, rt->text, source);
    severity_fields(&e, pri >= 0 ? pri : 13);
    struct cur all = {msg, len, pri >= 0 ? c.i : 0};
    if (pri >= 0) {
        all.i = 0;
        while (all.i < len && msg[all.i] != '>')
            all.i++;
        all.i++;
    }
    message(&all, &e);
    const char *why = pri < 0 ? "no <PRI> header" : "header is neither RFC 5424 nor RFC 3164";
    field_str(&e, "syslog_error", why, strlen(why));
    end(&e, rt);
    return SYSLOG_LOOSE;
}

/* Every top-level member syslog_to_event writes (the structured data is one object). */
const char *const syslog_members[] = {
    "timestamp",       "kind",     "source",       "host",        "service",
    "level",           "facility", "severity",     "procid",      "msgid",
    "structured_data", "message",  "syslog_error", "received_at", NULL};

/* One message: parsed, or kept loosely (counted as syslog_loose), or dead-lettered. */
static void syslog_decode(struct input *in, const char *msg, size_t len)
{
    const char *err = NULL;
    size_t at;
    struct buf *out = collector_buffer(in->col, &at);
    enum syslog_result r = syslog_to_event(msg, len, in->name, collector_now(in->col), out, &err);
    if (r == SYSLOG_REJECT) {
        collector_dead(in, err, msg, len);
        return;
    }
    if (r == SYSLOG_LOOSE)
        counter_add(&in->stats.syslog_loose, 1);
    collector_event_among(in, out->data + at, out->len - at, syslog_members);
}

const struct format format_syslog = {
    .id =
        {"syslog", NULL,
         "RFC 5424 or RFC 3164 messages; on a stream newline framed or octet-counted (RFC 6587)."},
    .framing = FRAMING_SYSLOG,
    .decode = syslog_decode,
};
