/* Small filesystem helpers. All return 0 or a negative errno. */
#ifndef SPILLWAY_FSUTIL_H
#define SPILLWAY_FSUTIL_H

#include <stddef.h>

int fs_mkdir_p(const char *dir);
/* Creates the directories above path. */
int fs_mkdir_parent(const char *path);
/* Removes path when it is a socket no process listens on (a leftover from a crash); refuses
 * (-EADDRINUSE) when one does, and leaves any other kind of file alone (-EEXIST). */
int fs_unlink_stale_socket(const char *path);
/* Reads a whole file into a new NUL-terminated buffer (*out, caller frees). */
int fs_read_file(const char *path, char **out, size_t *len);
/* Writes data to path atomically (temp file + rename). */
int fs_write_file(const char *path, const char *data, size_t len);

#endif
