/* The YAML configuration loader: cfg_load(&config_section, ...) (core/cfg.h) on the input as a
 * whole spillway config, then the same text through config_load() (app/config.h) from a file,
 * which adds the checks that span sections, then config_free / cfg_free.
 *
 * What must hold: no crash and no leak (libFuzzer's leak check, or LeakSanitizer in the
 * replay), whatever the YAML; a refused config has at least one "FILE:LINE: " message and an
 * accepted one none; an accepted config dumps to JSON with the admin token redacted and
 * frees cleanly, twice. ${ENV} substitution sees a few variables set here. */
#include <sys/mman.h>
#include <unistd.h>

#include "app/config.h"
#include "fuzz.h"

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("SPW_FUZZ_PORT", "5170", 1);
    setenv("SPW_FUZZ_DIR", "/tmp/spillway-fuzz", 1);
    setenv("SPW_FUZZ_TOKEN", "s3cret", 1);
    unsetenv("SPW_FUZZ_UNSET");
    memfd = memfd_create("fuzz_config", 0);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
    return 0;
}

/* A refused config says why, on lines starting "file:LINE: ". */
static void check_errors(int rc, const struct cfg_errors *e, const char *file)
{
    if (rc == 0) {
        FUZZ_CHECK(e->count == 0, "accepted with %d errors: %s", e->count,
                   e->text.data ? e->text.data : "");
        return;
    }
    FUZZ_CHECK(rc == -EINVAL, "returned %d", rc);
    FUZZ_CHECK(e->count > 0 && e->text.len > 0, "refused without an error message");
    size_t fl = strlen(file);
    const char *t = e->text.data;
    FUZZ_CHECK(e->text.len > fl + 2 && !memcmp(t, file, fl) && t[fl] == ':' && t[fl + 1] >= '0' &&
                   t[fl + 1] <= '9',
               "error not as FILE:LINE: key: message: %.*s", (int)e->text.len, t);
    FUZZ_CHECK(t[e->text.len - 1] == '\n', "error text does not end a line");
}

static void check_dump(const struct config *c)
{
    json_t *d = cfg_dump(&config_section, c);
    FUZZ_CHECK(json_is_object(d), "cfg_dump gave no object");
    char *text = json_dumps(d, JSON_COMPACT);
    FUZZ_CHECK(text, "the dump does not serialize");
    if (c->admin.http_token && c->admin.http_token[0]) {
        const char *tok =
            json_string_value(json_object_get(json_object_get(d, "admin"), "http_token"));
        FUZZ_CHECK(tok && !strcmp(tok, "<redacted>"), "admin.http_token dumped as %s",
                   tok ? tok : "(missing)");
    }
    free(text);
    json_decref(d);
    char line[256];
    config_summary(c, line, sizeof(line));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *yaml = (const char *)data;
    struct config c = {0};
    struct cfg_errors e = {0};
    int rc = cfg_load(&config_section, &c, yaml, size, "fuzz.yaml", &e, &c.lines);
    check_errors(rc, &e, "fuzz.yaml");
    if (rc == 0)
        check_dump(&c);
    config_free(&c);
    config_free(&c);
    cfg_errors_free(&e);

    /* The whole loader, cross-section checks included, reads a file. */
    if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
        abort();
    struct config f = {0};
    struct cfg_errors fe = {0};
    rc = config_load(memfd_path, &f, &fe);
    check_errors(rc, &fe, memfd_path);
    if (rc == 0)
        check_dump(&f);
    config_free(&f);
    cfg_errors_free(&fe);
    return 0;
}
