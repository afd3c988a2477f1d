#include "collector/listen.h"

#include <errno.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "collector/input.h"
#include "core/fsutil.h"

int listen_tcp(struct input *in, const char *addr, evconnlistener_cb cb, void *arg,
               struct evconnlistener **out, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(err, errlen, "input %s: listen \"%s\" is not host:port", in->name, addr);
        return -EINVAL;
    }
    *out = evconnlistener_new_bind(
        in->base, cb, arg, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024,
        (struct sockaddr *)&ss, sslen);
    if (!*out) {
        int e = errno;
        snprintf(err, errlen, "input %s: cannot listen on %s: %s", in->name, addr, strerror(e));
        return -e;
    }
    return 0;
}

int listen_unix(struct input *in, const char *path, const char *mode, evconnlistener_cb cb,
                void *arg, struct evconnlistener **out, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char *end;
    long perm = strtol(mode, &end, 8);
    if (*end || perm < 0 || perm > 0777) {
        snprintf(err, errlen, "input %s: mode \"%s\" is not an octal permission like 0660",
                 in->name, mode);
        return -EINVAL;
    }
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "input %s: socket path too long: %s", in->name, path);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    int rc = fs_mkdir_parent(path);
    if (rc == 0)
        rc = fs_unlink_stale_socket(path);
    if (rc) {
        snprintf(err, errlen, "input %s: cannot prepare %s: %s", in->name, path, strerror(-rc));
        return rc;
    }
    *out = evconnlistener_new_bind(in->base, cb, arg, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                   1024, (struct sockaddr *)&sun, sizeof(sun));
    if (!*out) {
        int e = errno;
        snprintf(err, errlen, "input %s: cannot listen on %s: %s", in->name, path, strerror(e));
        return -e;
    }
    if (chmod(path, (mode_t)perm) < 0) {
        int e = errno;
        snprintf(err, errlen, "input %s: chmod %s: %s", in->name, path, strerror(e));
        return -e;
    }
    return 0;
}
