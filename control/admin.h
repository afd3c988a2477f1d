/* The admin socket: a Unix stream socket (mode 0600, peer uid checked with SO_PEERCRED)
 * speaking JSON lines: one request {"cmd": "...", ...} gets one response {"ok": true, ...} or
 * {"ok": false, "error": "..."}. It runs on the control thread's loop. A malformed or oversized
 * request gets an error; a client that stops reading is disconnected once its unread output
 * passes a bound, so it can never block the process. Owned by the control module. */
#ifndef SPILLWAY_ADMIN_H
#define SPILLWAY_ADMIN_H

#include <stddef.h>

#include "core/cfg.h"

struct admin;
struct control;

/* The `admin:` section. */
struct admin_config {
    char *socket;
    char *socket_mode;
    struct cfg_strlist allow_uids;
    char *http;
    char *http_token;
};

extern const struct cfg_section admin_config_section;

/* Opens the socket named by admin.socket. NULL with a message in err. */
struct admin *admin_new(struct control *c, char *err, size_t errlen);
void admin_free(struct admin *a);

#endif
