#include "collector/body.h"

#include <errno.h>
#include <string.h>

int body_split_events(struct jsontok *tok, const char *b, size_t n, const struct body_items *items,
                      void *ud, const char **err)
{
    size_t i = 0;
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
        i++;
    if (i < n && (b[i] == '[' || b[i] == '{')) {
        int rc = jsontok_parse(tok, b, n);
        if (rc == 0 && tok->tok[0].type == JSMN_ARRAY) {
            for (int k = 1, m = 0; m < tok->tok[0].size; m++, k = tok->next[k])
                items->token(ud, k);
            return 0;
        }
        if (rc == 0 && tok->tok[0].type == JSMN_OBJECT) {
            items->token(ud, 0);
            return 0;
        }
        if (b[i] == '[') {
            *err = rc ? tok->err : "not a JSON array of objects";
            return -EINVAL;
        }
    }
    body_split_lines(b + i, n - i, items->line, ud); /* NDJSON */
    return 0;
}

void body_split_lines(const char *b, size_t n, void (*line)(void *ud, const char *l, size_t len),
                      void *ud)
{
    for (size_t p = 0; p < n;) {
        const char *nl = memchr(b + p, '\n', n - p);
        size_t e = nl ? (size_t)(nl - b) : n;
        size_t l = e - p;
        if (l && b[p + l - 1] == '\r')
            l--;
        if (l)
            line(ud, b + p, l);
        p = e + 1;
    }
}
