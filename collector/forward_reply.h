/* What spillway writes back on a forward connection, as msgpack: the HELO that opens the
 * shared-key handshake (a fresh nonce), the PONG that answers a PING (its digest checked with
 * libcrypto's SHA-512, as the forward protocol v1 specifies), and the {"ack": chunk} of a message
 * whose records are in the pipeline. Appends to the caller's buffer. */
#ifndef SPILLWAY_FORWARD_REPLY_H
#define SPILLWAY_FORWARD_REPLY_H

#include <stddef.h>

#include "collector/forward.h"
#include "core/buf.h"

#define FORWARD_NONCE 16

/* ["HELO", {"nonce": <16 random bytes>, "auth": "", "keepalive": true}]; the nonce is kept in
 * nonce for the PING. Returns 0 or a negative errno. */
int forward_reply_helo(struct buf *out, unsigned char nonce[FORWARD_NONCE]);

/* Checks a PING (digest = hex SHA-512 of salt, hostname, nonce, shared_key) and appends the
 * PONG: ["PONG", ok, reason, self_hostname, hex SHA-512 of salt, self_hostname, nonce,
 * shared_key]. Returns 0 when the PING passed, -EACCES when it did not (the PONG says why). */
int forward_reply_pong(struct buf *out, const struct forward_ping *p,
                       const unsigned char nonce[FORWARD_NONCE], const char *shared_key,
                       const char *self_hostname);

/* {"ack": chunk}. */
int forward_reply_ack(struct buf *out, const char *chunk, size_t len);

#endif
