/* Listening sockets of the stream inputs (tcp, unix, forward): a TCP address or a Unix stream
 * socket, opened on the collector's event base with libevent's listener. The caller owns the
 * listener (evconnlistener_free; a Unix socket's file is the caller's to unlink). */
#ifndef SPILLWAY_LISTEN_H
#define SPILLWAY_LISTEN_H

#include <event2/listener.h>
#include <stddef.h>

struct input;

/* Listens on addr (host:port, [::1]:port). Returns 0, or a negative errno with a message naming
 * the input in err. */
int listen_tcp(struct input *in, const char *addr, evconnlistener_cb cb, void *arg,
               struct evconnlistener **out, char *err, size_t errlen);
/* Listens on a Unix stream socket at path (its folder made, a stale socket file replaced) with
 * permissions mode (octal text, "0660"). */
int listen_unix(struct input *in, const char *path, const char *mode, evconnlistener_cb cb,
                void *arg, struct evconnlistener **out, char *err, size_t errlen);

#endif
