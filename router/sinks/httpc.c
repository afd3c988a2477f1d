#include "router/sinks/httpc.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "core/base64.h"
#include "core/hex.h"
#include "core/utf8.h"

#define BODY_KEPT (64 * 1024) /* only the start of an answer is ever read or shown */

struct httpc {
    CURL *curl;
    struct curl_slist *headers; /* the configured ones and "Expect:" */
    int h2c_no_reuse;           /* see httpc_new */
    struct httpc_answer ans;
    char why[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void httpc_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct httpc_answer *a = ud;
    size_t len = sz * n;
    if (a->body.len < BODY_KEPT)
        buf_append(&a->body, p, len < BODY_KEPT - a->body.len ? len : BODY_KEPT - a->body.len);
    return len;
}

/* grpc-message is percent-encoded (the gRPC over HTTP/2 specification). */
static void percent_decode(const char *s, size_t n, struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hex_digit(s[i + 1])) >= 0 &&
            (lo = hex_digit(s[i + 2])) >= 0) {
            buf_putc(out, (char)(hi << 4 | lo));
            i += 2;
        } else {
            buf_putc(out, s[i]);
        }
    }
}

/* Binary gRPC metadata (-bin) is base64, padded or not; none kept if it is not. */
static void base64_text(const char *s, size_t n, struct buf *out)
{
    buf_reset(out);
    ssize_t len;
    if (buf_reserve(out, base64_decoded_max(n)) == 0 && (len = base64_decode(s, n, out->data)) > 0)
        out->len = (size_t)len;
}

/* Retry-After: delta-seconds or an HTTP date (RFC 9110), as ns from now. */
static int64_t retry_after(const char *v, size_t n)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return 0;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end;
    long long secs = strtoll(tmp, &end, 10);
    if (end != tmp && *end == '\0')
        return secs > 0 ? (int64_t)(secs > 86400 ? 86400 : secs) * 1000000000LL : 0;
    time_t at = curl_getdate(tmp, NULL);
    time_t now = time(NULL);
    return at > now ? (int64_t)(at - now) * 1000000000LL : 0;
}

/* Every header line of the answer, and its trailers (libcurl hands HTTP/2 trailers here too). A
 * status line starts a new answer (after a 100 Continue, say): what came before is forgotten. */
static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct httpc_answer *a = ud;
    size_t len = sz * n;
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    if (len >= 5 && !memcmp(p, "HTTP/", 5)) {
        a->ctype[0] = '\0';
        a->retry_after = 0;
        a->grpc_status = -1;
        buf_reset(&a->grpc_message);
        buf_reset(&a->grpc_details);
        return sz * n;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return sz * n;
    size_t klen = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vlen = len - klen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
#define IS(name) (klen == sizeof(name) - 1 && !strncasecmp(p, name, klen))
    if (IS("content-type")) {
        snprintf(a->ctype, sizeof(a->ctype), "%.*s", (int)vlen, v);
    } else if (IS("retry-after")) {
        a->retry_after = retry_after(v, vlen);
    } else if (IS("grpc-status")) {
        a->grpc_status = 0;
        for (size_t i = 0; i < vlen && a->grpc_status < 1000; i++)
            a->grpc_status = v[i] >= '0' && v[i] <= '9' ? a->grpc_status * 10 + v[i] - '0' : 1000;
        if (a->grpc_status >= 1000 || vlen == 0)
            a->grpc_status = 2; /* UNKNOWN: not a status gRPC defines */
    } else if (IS("grpc-message")) {
        percent_decode(v, vlen, &a->grpc_message);
    } else if (IS("grpc-status-details-bin")) {
        base64_text(v, vlen, &a->grpc_details);
    }
#undef IS
    return sz * n;
}

struct httpc *httpc_new(const struct httpc_opts *o)
{
    struct httpc *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->curl = curl_easy_init();
    if (!c->curl)
        goto fail;
    struct buf line = {0};
    for (int i = 0; o->headers && i < o->headers->n; i++) {
        buf_reset(&line);
        if (buf_printf(&line, "%s: %s", o->headers->key[i], o->headers->val[i])) {
            buf_free(&line);
            goto fail;
        }
        struct curl_slist *l = curl_slist_append(c->headers, line.data);
        if (!l) {
            buf_free(&line);
            goto fail;
        }
        c->headers = l;
    }
    buf_free(&line);
    struct curl_slist *l = curl_slist_append(c->headers, "Expect:"); /* no 100-continue trip */
    if (!l)
        goto fail;
    c->headers = l;
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(o->timeout / 1000000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout / 1000000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->ans);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &c->ans);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->why);
    if (o->version == HTTPC_HTTP2) {
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        /* libcurl before 8.0.0 (Debian 12 has 7.88.1) fails the second request on a reused
         * HTTP/2 prior-knowledge connection with "Error in the HTTP2 framing layer" (curl issue
         * 10634, fixed by pull request 10643): in clear (h2c) each request then takes a
         * connection of its own. HTTP/2 over TLS negotiates by ALPN and is not affected. */
        c->h2c_no_reuse = curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
    }
    const struct httpc_tls *t = o->tls;
    if (t) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, t->verify ? 1L : 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, t->verify ? 2L : 0L);
        if (t->ca_file && *t->ca_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
        if (t->cert_file && *t->cert_file)
            curl_easy_setopt(h, CURLOPT_SSLCERT, t->cert_file);
        if (t->key_file && *t->key_file)
            curl_easy_setopt(h, CURLOPT_SSLKEY, t->key_file);
    }
    curl_easy_setopt(h, CURLOPT_USERAGENT, "spillway/" SPILLWAY_VERSION);
    c->ans.grpc_status = -1;
    return c;
fail:
    httpc_free(c);
    return NULL;
}

void httpc_free(struct httpc *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    buf_free(&c->ans.body);
    buf_free(&c->ans.grpc_message);
    buf_free(&c->ans.grpc_details);
    free(c);
}

int httpc_post(struct httpc *c, const char *url, const char *const *extra, size_t n,
               const void *body, size_t len, const char **why)
{
    struct httpc_answer *a = &c->ans;
    a->status = 0;
    a->ctype[0] = '\0';
    a->retry_after = 0;
    a->grpc_status = -1;
    buf_reset(&a->body);
    buf_reset(&a->grpc_message);
    buf_reset(&a->grpc_details);
    c->why[0] = '\0';
    /* The request's own headers, then the configured ones (a sink refuses configured names that
     * would collide with what its protocol sends: libcurl would send both). */
    struct curl_slist *hdrs = NULL;
    for (size_t i = 0; i < n; i++) {
        struct curl_slist *l = curl_slist_append(hdrs, extra[i]);
        if (!l)
            goto nomem;
        hdrs = l;
    }
    for (struct curl_slist *h = c->headers; h; h = h->next) {
        struct curl_slist *l = curl_slist_append(hdrs, h->data);
        if (!l)
            goto nomem;
        hdrs = l;
    }
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_FORBID_REUSE,
                     c->h2c_no_reuse && !strncmp(url, "http://", 7) ? 1L : 0L);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode rc = curl_easy_perform(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        if (!c->why[0])
            snprintf(c->why, sizeof(c->why), "%s", curl_easy_strerror(rc));
        *why = c->why;
        return -EIO;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &a->status);
    return 0;
nomem:
    curl_slist_free_all(hdrs);
    snprintf(c->why, sizeof(c->why), "out of memory building the request's headers");
    *why = c->why;
    return -EIO;
}

const struct httpc_answer *httpc_answer(const struct httpc *c)
{
    return &c->ans;
}

int httpc_gzip(const void *in, size_t len, struct buf *out)
{
    z_stream zs = {0};
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY))
        return -ENOMEM;
    buf_reset(out);
    if (buf_reserve(out, deflateBound(&zs, len))) {
        deflateEnd(&zs);
        return -ENOMEM;
    }
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (unsigned char *)out->data;
    zs.avail_out = (uInt)out->cap;
    int rc = deflate(&zs, Z_FINISH);
    out->len = zs.total_out;
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -EIO;
}

int httpc_shown(const struct buf *body, size_t max)
{
    return (int)utf8_check(body->data, body->len < max ? body->len : max);
}
