/* SPDX-License-Identifier: GPL-2.0-or-later */
/* N idle processes for the benchmark: forks N-1 children that pause, and stops them by PID on SIGTERM. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) {
        stop = 1;
}

int main(int argc, char *argv[]) {
        long n = argc == 2 ? strtol(argv[1], NULL, 10) : 0;
        sigset_t mask, old;
        pid_t *pids;

        if (n <= 0) {
                fprintf(stderr, "Usage: %s N\n", argv[0]);
                return 2;
        }
        pids = calloc(n, sizeof(pid_t));
        if (!pids) {
                perror("calloc");
                return 1;
        }

        /* Blocked until sigsuspend(), so a SIGTERM right after "ready" is not lost. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, &old);
        signal(SIGTERM, on_stop);
        signal(SIGINT, on_stop);

        for (long i = 1; i < n; i++) {
                pids[i] = fork();
                if (pids[i] < 0) {
                        perror("fork");
                        for (long j = 1; j < i; j++)
                                kill(pids[j], SIGTERM);
                        return 1;
                }
                if (pids[i] == 0) {
                        signal(SIGTERM, SIG_DFL);
                        sigprocmask(SIG_SETMASK, &old, NULL);
                        for (;;)
                                pause();
                }
        }
        printf("ready\n");
        fflush(stdout);

        while (!stop)
                sigsuspend(&old);

        for (long i = 1; i < n; i++)
                kill(pids[i], SIGTERM);
        for (long i = 1; i < n; i++)
                waitpid(pids[i], NULL, 0);
        free(pids);
        return 0;
}
