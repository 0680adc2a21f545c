/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A stand-in for a guest process: holds RSS_MIB MiB of touched memory until SIGTERM or SIGINT. */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) {
        stop = 1;
}

static int usage(const char *argv0) {
        fprintf(stderr, "Usage: %s RSS_MIB [--mergeable] [--fill random|same] [ignored args...]\n", argv0);
        return 2;
}

/* Every page gets a different first word with 'random', so KSM finds nothing to merge. */
static void fill(uint8_t *mem, size_t size, size_t page, bool same) {
        uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t) getpid();

        for (size_t off = 0; off < size; off += page) {
                if (same) {
                        memset(mem + off, 0x5a, page);
                        continue;
                }
                for (size_t i = 0; i < page; i += sizeof(x)) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        memcpy(mem + off + i, &x, sizeof(x));
                }
        }
}

int main(int argc, char *argv[]) {
        bool mergeable = false, same = false;
        const char *comm;
        char *end;
        sigset_t mask, old;
        unsigned long mib;
        size_t page, size;
        void *mem = NULL;

        if (argc < 2)
                return usage(argv[0]);
        mib = strtoul(argv[1], &end, 10);
        if (*argv[1] == '\0' || *end != '\0')
                return usage(argv[0]);

        /* Anything we do not know is a decoy argument such as -enable-kvm. */
        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--mergeable") == 0)
                        mergeable = true;
                else if (strcmp(argv[i], "--fill") == 0 && i + 1 < argc) {
                        i++;
                        if (strcmp(argv[i], "same") == 0)
                                same = true;
                        else if (strcmp(argv[i], "random") != 0)
                                return usage(argv[0]);
                }
        }

        comm = getenv("FAKE_GUEST_COMM");
        if (comm && prctl(PR_SET_NAME, comm, 0, 0, 0) < 0) {
                perror("prctl(PR_SET_NAME)");
                return 1;
        }

        /* Block the stop signals until pause() so that one sent right after "ready" is not lost. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, &old);
        signal(SIGTERM, on_stop);
        signal(SIGINT, on_stop);

        page = (size_t) sysconf(_SC_PAGESIZE);
        size = (size_t) mib << 20;
        if (size > 0) {
                mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (mem == MAP_FAILED) {
                        perror("mmap");
                        return 1;
                }
                if (mergeable && madvise(mem, size, MADV_MERGEABLE) < 0) {
                        perror("madvise(MADV_MERGEABLE)");
                        return 1;
                }
                fill(mem, size, page, same);
        }

        printf("ready\n");
        fflush(stdout);

        while (!stop)
                sigsuspend(&old);

        if (mem)
                munmap(mem, size);
        return 0;
}
