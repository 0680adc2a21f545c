/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Finding guest processes in a /proc tree and adding up their resident memory. */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>

#include "config.h"
#include "guests.h"
#include "util.h"

/* pgrep -f reads at most a page or two of the command line; guests' are long but not this long. */
#define CMDLINE_MAX (128 * 1024)

/**
 * guest_matcher_init() - compile the configured expressions; NULL or "" leaves that one off.
 *
 * On failure, -EINVAL with regerror()'s text in @errbuf.
 */
int guest_matcher_init(GuestMatcher *m, const char *comm_re, const char *cmdline_re, char *errbuf, size_t errlen) {
        int r;

        *m = (GuestMatcher) {};
        if (comm_re && *comm_re) {
                r = regcomp(&m->comm, comm_re, REG_EXTENDED | REG_NOSUB);
                if (r != 0) {
                        regerror(r, &m->comm, errbuf, errlen);
                        return -EINVAL;
                }
                m->have_comm = true;
        }
        if (cmdline_re && *cmdline_re) {
                r = regcomp(&m->cmdline, cmdline_re, REG_EXTENDED | REG_NOSUB);
                if (r != 0) {
                        regerror(r, &m->cmdline, errbuf, errlen);
                        guest_matcher_done(m);
                        return -EINVAL;
                }
                m->have_cmdline = true;
        }
        return 0;
}

void guest_matcher_done(GuestMatcher *m) {
        if (m->have_comm)
                regfree(&m->comm);
        if (m->have_cmdline)
                regfree(&m->cmdline);
        *m = (GuestMatcher) {};
}

/**
 * statm_parse_rss_kb() - the resident set size, in kB, from /proc/PID/statm text ("size resident ...").
 */
int statm_parse_rss_kb(const char *text, long page_size, uint64_t *ret) {
        const char *p = text;
        uint64_t pages = 0;

        while (*p == ' ')
                p++;
        if (parse_digits(&p, &pages) <= 0 || *p != ' ')
                return -EBADMSG;
        p++;
        if (parse_digits(&p, &pages) <= 0 || (*p != ' ' && *p != '\n' && *p != '\0'))
                return -EBADMSG;
        if (page_size <= 0 || pages > UINT64_MAX / (uint64_t) page_size)
                return -EBADMSG;
        *ret = pages * (uint64_t) page_size / 1024;
        return 0;
}

/* The value of the first line "NAME: N ..." of @text as a number; -EBADMSG when there is none. */
static int field_value(const char *text, const char *name, uint64_t *ret) {
        size_t n = strlen(name);

        for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                const char *p;
                uint64_t v = 0;

                if (strncmp(line, name, n) != 0)
                        continue;
                p = line + n;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (parse_digits(&p, &v) <= 0 || (*p != ' ' && *p != '\n' && *p != '\0'))
                        return -EBADMSG;
                *ret = v;
                return 0;
        }
        return -EBADMSG;
}

/**
 * smaps_rollup_parse_pss() - the proportional set size, in kB, from /proc/PID/smaps_rollup text.
 *
 * PSS divides each shared page among the processes mapping it, so a page KSM merged across ten guests
 * counts a tenth in each, where RSS counts it whole in all ten.
 */
int smaps_rollup_parse_pss(const char *text, uint64_t *ret) {
        return field_value(text, "Pss:", ret);
}

/**
 * ksm_stat_parse_merging() - the process's pages merged by KSM, from /proc/PID/ksm_stat text
 * ("ksm_merging_pages N") or /proc/PID/ksm_merging_pages text ("N").
 */
int ksm_stat_parse_merging(const char *text, uint64_t *ret) {
        uint64_t v;

        if (field_value(text, "ksm_merging_pages", ret) >= 0)
                return 0;
        if (safe_atou64(text, &v) < 0)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* Read a small per-process file into @buf; -errno when the process is gone or the file unreadable. */
static ssize_t read_pid_file(int procfd, const char *pid, const char *name, char *buf, size_t size) {
        char path[NAME_MAX + 16];
        _cleanup_close_ int fd = -1;
        ssize_t n;

        snprintf(path, sizeof(path), "%s/%s", pid, name);
        fd = openat(procfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, size - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        return n;
}

/**
 * guest_read_comm() - the process name of PID under @procfd (a /proc directory fd), without its newline.
 * @ret: at least GUEST_COMM_MAX bytes.
 *
 * Return: the bytes read (0 for an empty file), or -errno when the process is gone or its comm unreadable.
 */
int guest_read_comm(int procfd, const char *pid, char *ret) {
        ssize_t n;

        n = read_pid_file(procfd, pid, "comm", ret, GUEST_COMM_MAX);
        if (n > 0 && ret[n - 1] == '\n')
                ret[n - 1] = '\0';
        return (int) n;
}

static bool match_comm(const GuestMatcher *m, int procfd, const char *pid) {
        char comm[GUEST_COMM_MAX];

        return guest_read_comm(procfd, pid, comm) > 0 && regexec(&m->comm, comm, 0, NULL, 0) == 0;
}

static bool match_cmdline(const GuestMatcher *m, int procfd, const char *pid) {
        _cleanup_free_ char *buf = NULL;
        char path[NAME_MAX + 16];
        size_t n;

        snprintf(path, sizeof(path), "%s/cmdline", pid);
        if (read_full_file_at(procfd, path, CMDLINE_MAX, &buf, &n) < 0 || n == 0)
                return false;
        /* Arguments are NUL-separated; pgrep -f matches them joined by spaces. */
        while (n > 0 && buf[n - 1] == '\0')
                n--;
        for (size_t i = 0; i < n; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        buf[n] = '\0';
        return regexec(&m->cmdline, buf, 0, NULL, 0) == 0;
}

/*
 * A guest's committed memory other than plain RSS: its PSS, or its RSS less its merged pages. -errno
 * when the file is unreadable (smaps_rollup needs ptrace access, ksm_* files are the owner's only) or
 * the kernel lacks it; the caller then counts RSS.
 */
static int guest_memory(int procfd, const char *pid, int source, uint64_t rss, long page_size, uint64_t *ret,
                        uint64_t *ret_merged) {
        char buf[2048];
        uint64_t v;

        if (source == COMMITTED_PSS) {
                if (read_pid_file(procfd, pid, "smaps_rollup", buf, sizeof(buf)) <= 0 ||
                    smaps_rollup_parse_pss(buf, &v) < 0)
                        return -ENODATA;
                *ret = v;
                return 0;
        }
        if (read_pid_file(procfd, pid, "ksm_merging_pages", buf, sizeof(buf)) <= 0 &&
            read_pid_file(procfd, pid, "ksm_stat", buf, sizeof(buf)) <= 0)
                return -ENODATA;
        if (ksm_stat_parse_merging(buf, &v) < 0)
                return -ENODATA;
        v = v * (uint64_t) page_size / 1024;
        *ret_merged = v;
        *ret = v < rss ? rss - v : 0;
        return 0;
}

/**
 * guests_foreach() - call @visit for each guest process in @proc_dir, as guests_scan() counts them.
 * @visit: gets @proc_dir's descriptor, the PID's directory name, the resident set size in kB and
 *         @userdata; a negative return stops the pass and is returned.
 *
 * A process may exit at any point of the pass; it then simply isn't visited. Only the failure to open
 * @proc_dir itself is an error. Per process, only comm is read (plus cmdline when that match is on),
 * and for the guests statm.
 */
int guests_foreach(const char *proc_dir, const GuestMatcher *m, GuestVisit visit, void *userdata) {
        _cleanup_closedir_ DIR *d = NULL;
        long page_size = sysconf(_SC_PAGESIZE);
        struct dirent *de;
        int procfd, r;

        d = opendir(proc_dir);
        if (!d)
                return negative_errno();
        procfd = dirfd(d);

        if (!m->have_comm && !m->have_cmdline)
                return 0;

        while ((de = readdir(d))) {
                char statm[128];
                uint64_t rss;

                if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                        continue;
                if (!is_pid_name(de->d_name))
                        continue;
                if (!(m->have_comm && match_comm(m, procfd, de->d_name)) &&
                    !(m->have_cmdline && match_cmdline(m, procfd, de->d_name)))
                        continue;
                if (read_pid_file(procfd, de->d_name, "statm", statm, sizeof(statm)) <= 0)
                        continue; /* exited since */
                if (statm_parse_rss_kb(statm, page_size, &rss) < 0)
                        continue;
                r = visit(procfd, de->d_name, rss, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

/**
 * guests_count() - add one guest process to @t: its memory in kB as @source counts it (@rss_kb, its
 * resident set size, for COMMITTED_RSS; else from smaps_rollup or ksm_merging_pages, falling back to
 * @rss_kb and counting the fallback when those cannot be read).
 */
void guests_count(int procfd, const char *pid, uint64_t rss_kb, int source, GuestTotals *t) {
        t->resident_kb += rss_kb;
        if (source != COMMITTED_RSS) {
                uint64_t mem, merged = 0;

                if (guest_memory(procfd, pid, source, rss_kb, sysconf(_SC_PAGESIZE), &mem, &merged) >= 0) {
                        rss_kb = mem;
                        t->merged_kb += merged;
                } else
                        t->fallbacks++;
        }
        t->rss_kb += rss_kb;
        t->count++;
}

typedef struct ScanState {
        int source;
        GuestTotals t;
} ScanState;

static int scan_one(int procfd, const char *pid, uint64_t rss_kb, void *userdata) {
        ScanState *s = userdata;

        guests_count(procfd, pid, rss_kb, s->source, &s->t);
        return 0;
}

/**
 * guests_scan() - one pass over @proc_dir: count the guest processes and add up their memory in kB.
 * @source: COMMITTED_RSS (the original's), COMMITTED_PSS or COMMITTED_RSS_MINUS_MERGED.
 *
 * As guests_foreach(); for the guests also smaps_rollup or ksm_merging_pages, as @source needs.
 */
int guests_scan(const char *proc_dir, const GuestMatcher *m, int source, GuestTotals *ret) {
        ScanState s = { .source = source };
        int r;

        r = guests_foreach(proc_dir, m, scan_one, &s);
        if (r < 0)
                return r;
        *ret = s.t;
        return 0;
}
