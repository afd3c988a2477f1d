/* Corpus replay without libFuzzer: runs a fuzz target's LLVMFuzzerTestOneInput on every file
 * of a corpus directory (or on single files), in name order, so the normal test suite keeps
 * every crash once found fixed. Each file runs in its own child process (initialized there),
 * so one that aborts or leaks does not hide the others: every failing file is listed, and the
 * exit status is 1 when any failed. Usage: replay_<target> DIR|FILE...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* In the child: reads path and runs the target on an exact-size copy of it. */
static int run_input(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *data = malloc(cap);
    for (;;) {
        if (!data) {
            fclose(f);
            return -1;
        }
        n += fread(data + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *more = realloc(data, cap * 2);
        if (!more)
            free(data);
        data = more;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        perror(path);
        free(data);
        return -1;
    }
    /* An exact-size copy, so reading one byte past the input is caught by ASan. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(data);
        return -1;
    }
    memcpy(exact, data, n);
    free(data);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int failures;

/* Runs one file in a child; 0 when it passed, -1 (counted in failures) when not. */
static int run_file(const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        int argc = 1;
        char *args[] = {(char *)path, NULL}, **argv = args;
        if (LLVMFuzzerInitialize)
            LLVMFuzzerInitialize(&argc, &argv);
        exit(run_input(path) ? 2 : 0); /* exit, not _exit: LeakSanitizer checks at exit */
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        status = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    failures++;
    if (WIFSIGNALED(status))
        fprintf(stderr, "replay: FAILED %s (signal %d)\n", path, WTERMSIG(status));
    else
        fprintf(stderr, "replay: FAILED %s (exit %d)\n", path, WEXITSTATUS(status));
    return -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir; returns how many, or -1. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char **more = realloc(names, (n + 1) * sizeof(*names));
        if (!more)
            break;
        names = more;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), by_name);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        struct stat st;
        if (names[i] && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            run_file(path);
            count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR|FILE...\n", argv[0]);
        return 2;
    }
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        int n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : (run_file(argv[i]), 1);
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no input found in the corpus\n");
        return 1;
    }
    printf("replay: %d inputs, %d failed\n", total, failures);
    return failures ? 1 : 0;
}
