/* A fault injector for integration tests, preloaded into the real binary (LD_PRELOAD): every
 * allocation of at least FAILALLOC_MIN bytes made by a thread whose name starts with
 * FAILALLOC_THREAD fails, as it would when memory runs out. With it a test reaches the paths
 * that only out of memory takes (and checks they are counted, logged and lose nothing else),
 * without touching spillway's code. Not for sanitizer builds (their runtime must come first). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

static size_t min_size = (size_t)-1;
static char prefix[16];

__attribute__((constructor)) static void failalloc_init(void)
{
    const char *m = getenv("FAILALLOC_MIN"), *t = getenv("FAILALLOC_THREAD");
    if (m && *m)
        min_size = strtoull(m, NULL, 10);
    if (t)
        strncpy(prefix, t, sizeof(prefix) - 1);
}

static int fails(size_t n)
{
    if (n < min_size)
        return 0;
    char name[17] = "";
    prctl(PR_GET_NAME, name);
    if (strncmp(name, prefix, strlen(prefix)) != 0)
        return 0;
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t n)
{
    return fails(n) ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    return n && size <= (size_t)-1 / n && fails(n * size) ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    return fails(n) ? NULL : __libc_realloc(p, n);
}
