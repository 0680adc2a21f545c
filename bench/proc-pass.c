/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The benchmark's floor: K bare passes over /proc that read every /proc/PID/comm, CPU time per pass.
 * With INTERVAL_MS, passes are spaced like a daemon's adjustments, so caches are as cold as they are
 * for it; sleeping costs no CPU. */

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* One pass: opendir, then openat/read/close of PID/comm for every process; returns how many were read. */
static int pass(const char *proc_dir) {
        char path[300], comm[64];
        struct dirent *de;
        int n = 0, fd;
        DIR *d;

        d = opendir(proc_dir);
        if (!d)
                return -1;
        while ((de = readdir(d))) {
                if (!is_pid_name(de->d_name))
                        continue;
                snprintf(path, sizeof(path), "%s/comm", de->d_name);
                fd = openat(dirfd(d), path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                if (read(fd, comm, sizeof(comm)) > 0)
                        n++;
                close(fd);
        }
        closedir(d);
        return n;
}

static double cpu_us(void) {
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

int main(int argc, char *argv[]) {
        long passes = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
        long interval_ms = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
        const char *proc_dir = argc > 3 ? argv[3] : "/proc";
        struct timespec gap = { interval_ms / 1000, interval_ms % 1000 * 1000000L };
        double start;
        int n = 0;

        if (argc > 4 || passes <= 0 || interval_ms < 0) {
                fprintf(stderr, "Usage: %s [PASSES [INTERVAL_MS [PROC_DIR]]]\n", argv[0]);
                return 2;
        }
        start = cpu_us();
        for (long i = 0; i < passes; i++) {
                if (interval_ms > 0)
                        nanosleep(&gap, NULL);
                n = pass(proc_dir);
                if (n < 0) {
                        perror(proc_dir);
                        return 1;
                }
        }
        printf("passes %ld processes %d cpu_us_per_pass %.1f\n", passes, n, (cpu_us() - start) / passes);
        return 0;
}
