/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fake /proc and /sys/kernel/mm/ksm trees for C unit tests: one temporary directory per test holding
 * proc/ and ksm/, filled with what the code under test reads. Removed with everything in it afterwards.
 */
#pragma once

#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "ksm-sysfs.h"
#include "unit.h"

typedef struct FakeTree {
        char root[64];
        char proc[96]; /* ROOT/proc */
        char ksm[96];  /* ROOT/ksm */
} FakeTree;

/* Write @rel (under the tree's root, parent directories made as needed) with printf-formatted text. */
__attribute__((format(printf, 3, 4))) static inline void fake_put(const FakeTree *t, const char *rel,
                                                                  const char *format, ...) {
        char path[PATH_MAX], *text = NULL;
        _cleanup_close_ int fd = -1;
        va_list ap;
        int n;

        va_start(ap, format);
        n = vasprintf(&text, format, ap);
        va_end(ap);
        ck_assert_int_ge(n, 0);
        snprintf(path, sizeof(path), "%s/%s", t->root, rel);
        for (char *p = strchr(path + strlen(t->root) + 1, '/'); p; p = strchr(p + 1, '/')) {
                *p = '\0';
                (void) mkdir(path, 0755);
                *p = '/';
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_msg(fd >= 0, "%s: %m", path);
        ck_assert_int_eq(write(fd, text, (size_t) n), n);
        free(text);
}

/* A number file's value, as the kernel's knobs hold it; the test fails when it does not read. */
static inline uint64_t fake_get_u64(const FakeTree *t, const char *rel) {
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX];
        uint64_t v;

        snprintf(path, sizeof(path), "%s/%s", t->root, rel);
        ck_assert_int_eq(read_full_file_at(AT_FDCWD, path, 4096, &text, NULL), 0);
        text[strcspn(text, "\n")] = '\0';
        ck_assert_msg(safe_atou64(text, &v) == 0, "%s: '%s'", path, text);
        return v;
}

/* KSM's directory as today's kernels have it, stopped and with nothing merged. */
static inline void fake_ksm(const FakeTree *t) {
        static const char *const knobs[][2] = {
                { "run", "0" },
                { "pages_to_scan", "100" },
                { "sleep_millisecs", "20" },
                { "full_scans", "0" },
                { "pages_shared", "0" },
                { "pages_sharing", "0" },
                { "pages_unshared", "0" },
                { "pages_volatile", "0" },
                { "ksm_zero_pages", "0" },
                { "general_profit", "0" },
                { "smart_scan", "1" },
                { "use_zero_pages", "0" },
                { "max_page_sharing", "256" },
                { "merge_across_nodes", "1" },
                { "advisor_mode", "[none] scan-time" },
        };
        char rel[64];

        for (size_t i = 0; i < ELEMENTSOF(knobs); i++) {
                snprintf(rel, sizeof(rel), "ksm/%s", knobs[i][0]);
                fake_put(t, rel, "%s\n", knobs[i][1]);
        }
}

/* PROC/meminfo in kB; @available < 0 leaves MemAvailable out (kernels before 3.14). */
static inline void fake_meminfo(const FakeTree *t, uint64_t total, uint64_t free_kb, uint64_t buffers, uint64_t cached,
                                int64_t available) {
        char avail[64] = "";

        if (available >= 0)
                snprintf(avail, sizeof(avail), "MemAvailable:   %" PRIi64 " kB\n", available);
        fake_put(t, "proc/meminfo",
                 "MemTotal:       %" PRIu64 " kB\nMemFree:        %" PRIu64 " kB\n%sBuffers:        %" PRIu64
                 " kB\nCached:         %" PRIu64 " kB\nSwapCached:     0 kB\n",
                 total, free_kb, avail, buffers, cached);
}

/* A process PROC/PID with its comm, cmdline and statm (@rss_pages resident). */
static inline void fake_process(const FakeTree *t, int pid, const char *comm, uint64_t rss_pages) {
        char rel[64];

        snprintf(rel, sizeof(rel), "proc/%d/comm", pid);
        fake_put(t, rel, "%s\n", comm);
        snprintf(rel, sizeof(rel), "proc/%d/cmdline", pid);
        fake_put(t, rel, "%s", comm);
        snprintf(rel, sizeof(rel), "proc/%d/statm", pid);
        fake_put(t, rel, "%" PRIu64 " %" PRIu64 " 300 40 0 900 0\n", rss_pages * 4, rss_pages);
}

/* PROC/PID/stat as Linux 6.18 writes it: a kernel thread (PF_KTHREAD) when @ppid is kthreadd's 2. */
static inline void fake_stat(const FakeTree *t, int pid, const char *comm, int ppid, uint64_t utime, uint64_t stime) {
        char rel[64];

        snprintf(rel, sizeof(rel), "proc/%d/stat", pid);
        fake_put(t, rel,
                 "%d (%s) S %d 0 0 0 -1 %s 0 0 0 0 %" PRIu64 " %" PRIu64
                 " 0 0 25 5 1 0 9 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 17 0 0 0 0 0 0 0 0 0 0"
                 " 0 0 0 0\n",
                 pid, comm, ppid, ppid == 2 ? "2129984" : "4194560", utime, stime);
}

/* ksmd, a kernel thread, with its CPU ticks. */
static inline void fake_ksmd(const FakeTree *t, int pid, uint64_t utime, uint64_t stime) {
        fake_stat(t, pid, "ksmd", 2, utime, stime);
}

/* The KSM knob @name holds @text, as written. */
static inline void fake_knob(const FakeTree *t, const char *name, const char *text) {
        char rel[128];

        snprintf(rel, sizeof(rel), "ksm/%s", name);
        fake_put(t, rel, "%s", text);
}

/* A new tree /tmp/ksmtuned-NAME-XXXXXX with empty proc/ and ksm/. */
static inline void fake_tree_new(FakeTree *t, const char *name) {
        snprintf(t->root, sizeof(t->root), "/tmp/ksmtuned-%s-XXXXXX", name);
        ck_assert_ptr_nonnull(mkdtemp(t->root));
        snprintf(t->proc, sizeof(t->proc), "%s/proc", t->root);
        snprintf(t->ksm, sizeof(t->ksm), "%s/ksm", t->root);
        ck_assert_int_eq(mkdir(t->proc, 0755), 0);
        ck_assert_int_eq(mkdir(t->ksm, 0755), 0);
}

/* Remove the tree and everything in it. */
static inline void fake_tree_free(FakeTree *t) {
        nftw(t->root, unit_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new tree, and its KSM directory opened in *@ret_dfd: for tests that read and write knobs. */
static inline void fake_tree_new_ksm(FakeTree *t, const char *name, int *ret_dfd) {
        fake_tree_new(t, name);
        ck_assert_int_eq(ksm_open_dir(t->ksm, ret_dfd), 0);
}

/* Close *@dfd and remove the tree. */
static inline void fake_tree_free_ksm(FakeTree *t, int *dfd) {
        closep(dfd);
        *dfd = -1;
        fake_tree_free(t);
}
