/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Runs a fuzz target without libFuzzer: every file under the given directories, once, in name order. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static int read_all(const char *path, uint8_t **ret, size_t *ret_size) {
        size_t size = 0, alloc = 4096;
        uint8_t *buf = malloc(alloc);
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0 || !buf) {
                free(buf);
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        for (;;) {
                ssize_t n;

                if (size == alloc) {
                        uint8_t *b = realloc(buf, alloc *= 2);

                        if (!b) {
                                free(buf);
                                close(fd);
                                return -1;
                        }
                        buf = b;
                }
                n = read(fd, buf + size, alloc - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        free(buf);
                        close(fd);
                        return -1;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        close(fd);
        *ret = buf;
        *ret_size = size;
        return 0;
}

static int replay_file(const char *path) {
        uint8_t *data;
        size_t size;

        if (read_all(path, &data, &size) < 0) {
                fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
                return -1;
        }
        /* Named before it runs: when it crashes, the last line names the input. */
        fprintf(stderr, "%s (%zu bytes)\n", path, size);
        /* A copy of exactly @size bytes, as libFuzzer passes it, so ASan sees an overread. */
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_dots(const struct dirent *d) {
        return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

int main(int argc, char *argv[]) {
        unsigned n = 0, failed = 0;

        if (argc < 2) {
                fprintf(stderr,
                        "Usage: %s DIR|FILE...\nRuns the fuzz target once on every file given or "
                        "found in a directory; a missing directory is skipped.\n",
                        argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct dirent **names;
                struct stat st;
                int k;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s, skipped\n", argv[i], strerror(errno));
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        failed += replay_file(argv[i]) < 0;
                        n++;
                        continue;
                }
                k = scandir(argv[i], &names, skip_dots, by_name);
                if (k < 0) {
                        fprintf(stderr, "cannot list %s: %s\n", argv[i], strerror(errno));
                        failed++;
                        continue;
                }
                for (int j = 0; j < k; j++) {
                        char *path;

                        if (asprintf(&path, "%s/%s", argv[i], names[j]->d_name) < 0)
                                abort();
                        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                                failed += replay_file(path) < 0;
                                n++;
                        }
                        free(path);
                        free(names[j]);
                }
                free(names);
        }
        printf("%u inputs replayed, %u unreadable\n", n, failed);
        /* No input at all means the paths are wrong, not that all is well. */
        return n == 0 || failed > 0 ? 1 : 0;
}
