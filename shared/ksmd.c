/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Locating ksmd in a /proc tree and reading its CPU time from /proc/PID/schedstat or /proc/PID/stat. */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>

#include "ksmd.h"
#include "util.h"

/* Kernel threads are children of kthreadd, PID 2 in the initial PID namespace, and carry PF_KTHREAD. In
 * another PID namespace PID 2 is an ordinary process, so the flag is what proves a kernel thread. */
#define KTHREADD_PID 2
#define PF_KTHREAD   UINT64_C(0x00200000)

/**
 * proc_stat_parse() - comm, state, ppid, utime and stime out of /proc/PID/stat text.
 *
 * The name sits in parentheses and may itself hold spaces and ')', so the fields start after the
 * last ')'. Returns -EBADMSG for anything that is not such a line.
 */
int proc_stat_parse(const char *text, ProcStat *ret) {
        const char *open = strchr(text, '('), *close = strrchr(text, ')'), *p;
        ProcStat s = {};
        size_t n;

        if (!open || !close || close < open)
                return -EBADMSG;
        n = (size_t) (close - open - 1);
        if (n >= sizeof(s.comm))
                n = sizeof(s.comm) - 1;
        memcpy(s.comm, open + 1, n);
        s.comm[n] = '\0';

        p = close + 1;
        /* Field 3 is the state; then ppid (4) ... utime (14), stime (15). */
        for (int field = 3; field <= 15; field++) {
                char *end;

                while (*p == ' ')
                        p++;
                if (*p == '\0' || *p == '\n')
                        return -EBADMSG;
                if (field == 3) {
                        s.state = *p;
                        p++;
                        if (*p != ' ')
                                return -EBADMSG;
                        continue;
                }
                errno = 0;
                if (field == 4) {
                        long long v = strtoll(p, &end, 10);

                        if (errno || end == p)
                                return -EBADMSG;
                        s.ppid = v;
                } else {
                        unsigned long long v;

                        /* Fields 5..8 (pgrp, session, tty, tpgid) may be negative; flags and times may not. */
                        if (!isdigit((unsigned char) *p) && !(*p == '-' && field < 9))
                                return -EBADMSG;
                        v = strtoull(p, &end, 10);
                        if (errno || end == p)
                                return -EBADMSG;
                        if (field == 9)
                                s.flags = v;
                        else if (field == 14)
                                s.utime = v;
                        else if (field == 15)
                                s.stime = v;
                }
                if (*end != ' ' && *end != '\n' && *end != '\0')
                        return -EBADMSG;
                p = end;
        }
        *ret = s;
        return 0;
}

static int read_stat(int procfd, const char *pid, ProcStat *ret) {
        char path[NAME_MAX + 16];
        _cleanup_free_ char *text = NULL;
        int r;

        snprintf(path, sizeof(path), "%s/stat", pid);
        r = read_full_file_at(procfd, path, 4096, &text, NULL);
        if (r < 0)
                return r;
        return proc_stat_parse(text, ret);
}

/**
 * ksmd_find() - the PID of the kernel thread ksmd in @proc_dir; -ESRCH when there is none (no KSM, or
 * a PID namespace that does not show kernel threads).
 */
int ksmd_find(const char *proc_dir, pid_t *ret) {
        _cleanup_closedir_ DIR *d = opendir(proc_dir);
        struct dirent *de;

        if (!d)
                return negative_errno();
        while ((de = readdir(d))) {
                ProcStat s;
                char *end;
                long pid;

                if (!isdigit((unsigned char) de->d_name[0]))
                        continue;
                errno = 0;
                pid = strtol(de->d_name, &end, 10);
                if (*end || errno || pid <= 0 || pid > INT_MAX)
                        continue;
                if (read_stat(dirfd(d), de->d_name, &s) < 0)
                        continue;
                if (s.ppid == KTHREADD_PID && (s.flags & PF_KTHREAD) && streq(s.comm, "ksmd")) {
                        *ret = (pid_t) pid;
                        return 0;
                }
        }
        return -ESRCH;
}

/* The first field of /proc/PID/schedstat: the time @pid has spent on a CPU, ns. -EBADMSG when it is not a number
 * followed by a space. */
static int read_schedstat(int procfd, const char *pid, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        char path[NAME_MAX + 16];
        const char *p;
        int r;

        snprintf(path, sizeof(path), "%s/schedstat", pid);
        r = read_full_file_at(procfd, path, 4096, &text, NULL);
        if (r < 0)
                return r;
        p = text;
        if (parse_digits(&p, ret) <= 0 || *p != ' ')
                return -EBADMSG;
        return 0;
}

/* @pid's stat, if @pid is ksmd, and with @ret_ns (may be NULL) its schedstat's time on a CPU, when there is one
 * (@ret_precise). -ESRCH when @pid is no longer ksmd (gone, or reused by another process). */
static int ksmd_read(const char *proc_dir, pid_t pid, ProcStat *ret, uint64_t *ret_ns, bool *ret_precise) {
        _cleanup_close_ int dfd = -1;
        char name[32];
        int r;

        dfd = open(proc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        snprintf(name, sizeof(name), "%d", (int) pid);
        r = read_stat(dfd, name, ret);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;
        if (!streq(ret->comm, "ksmd") || ret->ppid != KTHREADD_PID || !(ret->flags & PF_KTHREAD))
                return -ESRCH;
        if (ret_ns)
                *ret_precise = read_schedstat(dfd, name, ret_ns) >= 0;
        return 0;
}

/**
 * ksmd_cpu_ticks() - user plus system CPU time of @pid, in clock ticks (sysconf(_SC_CLK_TCK) a second).
 *
 * -ESRCH when @pid is no longer ksmd (gone, or reused by another process).
 */
int ksmd_cpu_ticks(const char *proc_dir, pid_t pid, uint64_t *ret) {
        ProcStat s;
        int r;

        r = ksmd_read(proc_dir, pid, &s, NULL, NULL);
        if (r < 0)
                return r;
        *ret = s.utime + s.stime;
        return 0;
}

/**
 * ksmd_cpu_ns() - the CPU time @pid has used since it started, in ns.
 * @ret_precise: set to whether it came from /proc/PID/schedstat (kept in ns; Linux with CONFIG_SCHED_INFO, as
 *               distributions build it); else it is utime + stime from /proc/PID/stat, counted in clock ticks
 *               (sysconf(_SC_CLK_TCK) a second: 10 ms steps at the usual 100), converted.
 *
 * Return: 0; -ESRCH when @pid is no longer ksmd (gone, or reused by another process); another negative errno
 * when its stat does not read or parse.
 */
int ksmd_cpu_ns(const char *proc_dir, pid_t pid, uint64_t *ret, bool *ret_precise) {
        bool precise = false;
        uint64_t ns = 0;
        ProcStat s;
        int r;

        r = ksmd_read(proc_dir, pid, &s, &ns, &precise);
        if (r < 0)
                return r;
        *ret = precise ? ns : (s.utime + s.stime) * (UINT64_C(1000000000) / (uint64_t) sysconf(_SC_CLK_TCK));
        *ret_precise = precise;
        return 0;
}
