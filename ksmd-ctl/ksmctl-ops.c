/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmctl's operations on a KSM directory: start, stop, unmerge and status; the caller prints messages. */
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>

#include "ksm-sysfs.h"
#include "ksmctl-ops.h"
#include "ksmd.h"
#include "util.h"

static int write_knob(int dirfd, const char *knob, uint64_t value, KsmctlReport *report) {
        report->knob = knob;
        report->write = true;
        report->value = value;
        return ksm_write_u64(dirfd, knob, value);
}

static int read_knob(int dirfd, const char *knob, uint64_t *ret, KsmctlReport *report) {
        report->knob = knob;
        report->write = false;
        return ksm_read_u64(dirfd, knob, ret);
}

/**
 * ksmctl_max_kernel_pages() - the limit "ksmctl start" writes to max_kernel_pages.
 * @env: KSM_MAX_KERNEL_PAGES, or NULL when unset
 * @phys_pages: physical memory in pages (sysconf(_SC_PHYS_PAGES))
 * @ret: the limit in pages, 0 meaning unlimited
 *
 * As the original ksmctl: @env is parsed like strtoll(env, &end, 0), so leading white space and a sign
 * are allowed and "0x10" is 16, "010" is 8. It is used when it is not empty, parsed to its end, not
 * negative and below LLONG_MAX (strtoll's answer to an overflow); otherwise the limit is half of
 * @phys_pages.
 *
 * Return: 1 when the limit came from @env, 0 when it is the default.
 */
int ksmctl_max_kernel_pages(const char *env, uint64_t phys_pages, uint64_t *ret) {
        if (env && *env) {
                char *end;
                long long v;

                errno = 0;
                v = strtoll(env, &end, 0);
                if (errno == 0 && end != env && *end == '\0' && v >= 0 && v != LLONG_MAX) {
                        *ret = (uint64_t) v;
                        return 1;
                }
        }
        *ret = phys_pages / 2;
        return 0;
}

/**
 * ksmctl_start() - set the kernel page limit where the kernel has one, then let ksmd run.
 * @dirfd: the KSM directory
 * @limit_env: KSM_MAX_KERNEL_PAGES, or NULL when unset; see ksmctl_max_kernel_pages()
 * @phys_pages: physical memory in pages, for the default limit
 * @report: filled as it goes; on failure it names the knob that failed
 *
 * max_kernel_pages exists only before Linux 2.6.33; later kernels have nothing to limit, and skip it.
 * When the limit cannot be written, KSM is not started: it would run without the limit asked for.
 */
int ksmctl_start(int dirfd, const char *limit_env, uint64_t phys_pages, KsmctlReport *report) {
        int r;

        if (ksm_has(dirfd, "max_kernel_pages")) {
                uint64_t limit;

                r = ksmctl_max_kernel_pages(limit_env, phys_pages, &limit);
                report->limit_from_env = r > 0;
                report->max_kernel_pages = limit;
                r = write_knob(dirfd, "max_kernel_pages", limit, report);
                if (r < 0)
                        return r;
                report->limited = true;
        }
        return write_knob(dirfd, "run", KSM_RUN_MERGE, report);
}

/**
 * ksmctl_stop() - stop ksmd; pages merged so far stay merged.
 */
int ksmctl_stop(int dirfd, KsmctlReport *report) {
        return write_knob(dirfd, "run", KSM_RUN_STOP, report);
}

static uint64_t mul_sat(uint64_t a, uint64_t b) {
        uint64_t r;

        return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
        uint64_t r;

        return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/**
 * ksmctl_mem_available_bytes() - memory available without swapping, in bytes.
 *
 * MemAvailable where the kernel has it (3.14 and later), else MemFree + Buffers + Cached as the original
 * ksmtuned counted it.
 */
uint64_t ksmctl_mem_available_bytes(const MemInfo *mi) {
        uint64_t kb;

        if (mi->has_mem_available)
                kb = mi->mem_available;
        else
                kb = add_sat(add_sat(mi->mem_free, mi->buffers), mi->cached);
        return mul_sat(kb, 1024);
}

/**
 * ksmctl_unmerge() - write 2 to run: ksmd unmerges every merged page and stops.
 * @dirfd: the KSM directory
 * @mi: current meminfo, or NULL to unmerge without checking memory (--force)
 * @page_size: bytes per page
 * @report: filled as it goes; @report->needed_bytes and @report->available_bytes hold the figures
 *
 * Unmerging gives every sharer its own copy again, so it needs as much memory as merging saved
 * (pages_sharing, plus ksm_zero_pages where the kernel has it, times the page size). With @mi, it is
 * refused when less than that is available, since the kernel would reclaim, swap or meet the OOM killer
 * to find it.
 *
 * Return: 0 on success, -ENOMEM with @report->refused set when refused, other -errno on failure.
 */
int ksmctl_unmerge(int dirfd, const MemInfo *mi, uint64_t page_size, KsmctlReport *report) {
        uint64_t sharing, zero = 0;
        int r;

        r = read_knob(dirfd, "pages_sharing", &sharing, report);
        if (r < 0)
                return r;
        if (ksm_has(dirfd, "ksm_zero_pages")) {
                r = read_knob(dirfd, "ksm_zero_pages", &zero, report);
                if (r < 0)
                        return r;
        }
        report->needed_bytes = mul_sat(add_sat(sharing, zero), page_size);
        if (mi) {
                report->available_bytes = ksmctl_mem_available_bytes(mi);
                if (report->available_bytes < report->needed_bytes) {
                        report->refused = true;
                        return -ENOMEM;
                }
        }
        return write_knob(dirfd, "run", KSM_RUN_UNMERGE, report);
}

typedef enum KnobKind {
        KIND_U64,
        KIND_I64,
        KIND_CHOICE,
} KnobKind;

static const struct {
        const char *name;
        size_t offset;
        KnobKind kind;
} optional_knobs[_KSMCTL_KNOB_MAX] = {
        [KSMCTL_KNOB_MAX_KERNEL_PAGES] = { "max_kernel_pages", offsetof(KsmStatus, max_kernel_pages), KIND_U64 },
        [KSMCTL_KNOB_MAX_PAGE_SHARING] = { "max_page_sharing", offsetof(KsmStatus, max_page_sharing), KIND_U64 },
        [KSMCTL_KNOB_MERGE_ACROSS_NODES] = { "merge_across_nodes", offsetof(KsmStatus, merge_across_nodes), KIND_U64 },
        [KSMCTL_KNOB_USE_ZERO_PAGES] = { "use_zero_pages", offsetof(KsmStatus, use_zero_pages), KIND_U64 },
        [KSMCTL_KNOB_STABLE_NODE_CHAINS] = { "stable_node_chains", offsetof(KsmStatus, stable_node_chains), KIND_U64 },
        [KSMCTL_KNOB_STABLE_NODE_DUPS] = { "stable_node_dups", offsetof(KsmStatus, stable_node_dups), KIND_U64 },
        [KSMCTL_KNOB_PAGES_SCANNED] = { "pages_scanned", offsetof(KsmStatus, pages_scanned), KIND_U64 },
        [KSMCTL_KNOB_PAGES_SKIPPED] = { "pages_skipped", offsetof(KsmStatus, pages_skipped), KIND_U64 },
        [KSMCTL_KNOB_KSM_ZERO_PAGES] = { "ksm_zero_pages", offsetof(KsmStatus, ksm_zero_pages), KIND_U64 },
        [KSMCTL_KNOB_GENERAL_PROFIT] = { "general_profit", offsetof(KsmStatus, general_profit), KIND_I64 },
        [KSMCTL_KNOB_SMART_SCAN] = { "smart_scan", offsetof(KsmStatus, smart_scan), KIND_U64 },
        [KSMCTL_KNOB_ADVISOR_MODE] = { "advisor_mode", offsetof(KsmStatus, advisor_mode), KIND_CHOICE },
        [KSMCTL_KNOB_ADVISOR_MAX_CPU] = { "advisor_max_cpu", offsetof(KsmStatus, advisor_max_cpu), KIND_U64 },
        [KSMCTL_KNOB_ADVISOR_MIN_PAGES_TO_SCAN] = { "advisor_min_pages_to_scan",
                                                    offsetof(KsmStatus, advisor_min_pages_to_scan), KIND_U64 },
        [KSMCTL_KNOB_ADVISOR_MAX_PAGES_TO_SCAN] = { "advisor_max_pages_to_scan",
                                                    offsetof(KsmStatus, advisor_max_pages_to_scan), KIND_U64 },
        [KSMCTL_KNOB_ADVISOR_TARGET_SCAN_TIME] = { "advisor_target_scan_time",
                                                   offsetof(KsmStatus, advisor_target_scan_time), KIND_U64 },
};

static const struct {
        const char *name;
        size_t offset;
} required_knobs[] = {
        { "run", offsetof(KsmStatus, run) },
        { "pages_to_scan", offsetof(KsmStatus, pages_to_scan) },
        { "sleep_millisecs", offsetof(KsmStatus, sleep_millisecs) },
        { "pages_shared", offsetof(KsmStatus, pages_shared) },
        { "pages_sharing", offsetof(KsmStatus, pages_sharing) },
        { "pages_unshared", offsetof(KsmStatus, pages_unshared) },
        { "pages_volatile", offsetof(KsmStatus, pages_volatile) },
        { "full_scans", offsetof(KsmStatus, full_scans) },
};

static int read_optional(int dirfd, KsmctlKnob k, KsmStatus *s, KsmctlReport *report) {
        _cleanup_free_ char *text = NULL;
        void *p = (char *) s + optional_knobs[k].offset;
        int r;

        report->knob = optional_knobs[k].name;
        report->write = false;
        r = ksm_read_string(dirfd, optional_knobs[k].name, &text);
        if (r == -ENOENT)
                return 0; /* this kernel does not have it */
        if (r < 0)
                return r;

        switch (optional_knobs[k].kind) {
        case KIND_U64:
                if (safe_atou64(text, p) < 0)
                        return -EBADMSG;
                break;
        case KIND_I64:
                if (safe_atoi64(text, p) < 0)
                        return -EBADMSG;
                break;
        case KIND_CHOICE:
                r = ksm_parse_choice(text, p);
                if (r < 0)
                        return r;
                break;
        }
        s->present |= UINT32_C(1) << k;
        return 0;
}

/**
 * ksmctl_status_read() - read every knob "ksmctl status" shows.
 * @dirfd: the KSM directory
 * @ret: the snapshot, to be released with ksmctl_status_done(); untouched on failure
 * @report: on failure, names the knob that could not be read
 *
 * The eight knobs of the first KSM kernel (2.6.32) are required; the others are optional and a kernel
 * without them simply leaves them out. A knob that exists but cannot be read or parsed is an error.
 */
int ksmctl_status_read(int dirfd, KsmStatus *ret, KsmctlReport *report) {
        KsmStatus s = {};
        int r;

        for (size_t i = 0; i < ELEMENTSOF(required_knobs); i++) {
                r = read_knob(dirfd, required_knobs[i].name, (uint64_t *) ((char *) &s + required_knobs[i].offset),
                              report);
                if (r < 0)
                        return r;
        }
        for (KsmctlKnob k = 0; k < _KSMCTL_KNOB_MAX; k++) {
                r = read_optional(dirfd, k, &s, report);
                if (r < 0) {
                        ksmctl_status_done(&s);
                        return r;
                }
        }
        *ret = s;
        return 0;
}

/**
 * ksmctl_status_done() - release what ksmctl_status_read() allocated; safe to call twice.
 */
void ksmctl_status_done(KsmStatus *s) {
        free(s->advisor_mode);
        s->advisor_mode = NULL;
}

/**
 * ksmctl_status_has() - whether the kernel had the optional @knob.
 */
bool ksmctl_status_has(const KsmStatus *s, KsmctlKnob knob) {
        return knob < _KSMCTL_KNOB_MAX && (s->present & (UINT32_C(1) << knob));
}

/**
 * ksmctl_saved_bytes() - memory that merging saves: (pages_sharing + ksm_zero_pages) × @page_size.
 *
 * ksm_zero_pages (pages merged with the zero page, with use_zero_pages) counts where the kernel has it.
 * Saturates at UINT64_MAX.
 */
uint64_t ksmctl_saved_bytes(const KsmStatus *s, uint64_t page_size) {
        return mul_sat(add_sat(s->pages_sharing, s->ksm_zero_pages), page_size);
}

/**
 * ksmctl_scan_rate() - pages ksmd scans per second: pages_to_scan × 1000 / sleep_millisecs.
 *
 * This bounds the rate from above (the scanning itself takes time too). Return: false when
 * sleep_millisecs is 0, which leaves the rate unbounded by the sleep.
 */
bool ksmctl_scan_rate(const KsmStatus *s, uint64_t *ret_pages_per_sec) {
        if (s->sleep_millisecs == 0)
                return false;
        *ret_pages_per_sec = mul_sat(s->pages_to_scan, 1000) / s->sleep_millisecs;
        return true;
}

/**
 * ksmctl_ksmd_cpu_read() - find ksmd in @proc_dir and measure the CPU time it uses over a window.
 * @proc_dir: a directory laid out like /proc
 * @ticks_per_sec: clock ticks a second, sysconf(_SC_CLK_TCK)
 * @sample_ms: the window; 0 reads the total only and does not wait
 * @clock: the window's clock and sleep; may be NULL when @sample_ms is 0
 * @ret: filled on success, untouched on failure
 *
 * ksmd's utime + stime is read, @sample_ms waited, and read again; the window is measured with @clock
 * rather than taken as asked, since a sleep may last longer. A total that went down belongs to
 * another thread, and a window measured as 0 says nothing: either leaves the figure unsampled.
 *
 * Return: 0; -ESRCH when @proc_dir shows no ksmd (a kernel without KSM, or a PID namespace that hides
 * kernel threads, as in a container) or it went away during the window; -EINVAL for a @ticks_per_sec
 * of 0 or a missing @clock; another -errno when @proc_dir could not be read.
 */
int ksmctl_ksmd_cpu_read(const char *proc_dir, uint64_t ticks_per_sec, uint64_t sample_ms, const KsmctlClock *clock,
                         KsmdCpu *ret) {
        KsmdCpu c = { .ticks_per_sec = ticks_per_sec, .sample_ms = sample_ms };
        uint64_t first, t0, t1;
        pid_t pid;
        int r;

        if (ticks_per_sec == 0 || (sample_ms > 0 && (!clock || !clock->now_usec || !clock->sleep_ms)))
                return -EINVAL;
        r = ksmd_find(proc_dir, &pid);
        if (r < 0)
                return r;
        r = ksmd_cpu_ticks(proc_dir, pid, &first);
        if (r < 0)
                return r;
        c.found = true;
        c.pid = pid;
        c.ticks = first;
        if (sample_ms > 0) {
                t0 = clock->now_usec(clock->userdata);
                clock->sleep_ms(sample_ms, clock->userdata);
                t1 = clock->now_usec(clock->userdata);
                r = ksmd_cpu_ticks(proc_dir, pid, &c.ticks);
                if (r < 0)
                        return r;
                if (c.ticks >= first && t1 > t0) {
                        c.sampled = true;
                        c.window_usec = t1 - t0;
                        c.window_ticks = c.ticks - first;
                }
        }
        *ret = c;
        return 0;
}

/**
 * ksmctl_ksmd_cpu_seconds() - ksmd's CPU time in seconds, user and system, since it started.
 */
double ksmctl_ksmd_cpu_seconds(const KsmdCpu *c) {
        if (!c->found || c->ticks_per_sec == 0)
                return 0.0;
        return (double) c->ticks / (double) c->ticks_per_sec;
}

/**
 * ksmctl_ksmd_cpu_percent() - ksmd's CPU use during the window, in percent of one CPU.
 *
 * ksmd is one thread, so 100 is one CPU kept busy; the time is counted in whole clock ticks, so the
 * figure moves in steps of 100 / (ticks a second × the window in seconds) and can come out slightly
 * above 100. Return: false when there is no sampled window.
 */
bool ksmctl_ksmd_cpu_percent(const KsmdCpu *c, double *ret) {
        if (!c->found || !c->sampled || c->window_usec == 0 || c->ticks_per_sec == 0)
                return false;
        *ret = (double) c->window_ticks * 1e8 / ((double) c->ticks_per_sec * (double) c->window_usec);
        return true;
}

/* @ticks in seconds, as many decimals as a tick needs (2 for 100 a second; exact for a power of ten). */
static void format_ticks(char *buf, size_t size, uint64_t ticks, uint64_t ticks_per_sec) {
        uint64_t scale = 10;
        int digits = 1;

        if (ticks_per_sec == 0) {
                snprintf(buf, size, "0.0");
                return;
        }
        while (scale < ticks_per_sec && digits < 9) {
                scale *= 10;
                digits++;
        }
        snprintf(buf, size, "%" PRIu64 ".%0*" PRIu64, ticks / ticks_per_sec, digits,
                 (ticks % ticks_per_sec) * scale / ticks_per_sec);
}

static double mib(uint64_t bytes) {
        return (double) bytes / (1024.0 * 1024.0);
}

static const char *run_text(uint64_t run) {
        switch (run) {
        case KSM_RUN_STOP:
                return "stopped";
        case KSM_RUN_MERGE:
                return "running";
        case KSM_RUN_UNMERGE:
                return "stopped";
        default:
                return "unknown state";
        }
}

static const char *run_detail(uint64_t run) {
        switch (run) {
        case KSM_RUN_STOP:
                return ": merged pages stay merged";
        case KSM_RUN_MERGE:
                return ": scanning and merging pages";
        case KSM_RUN_UNMERGE:
                return ": all merged pages were unmerged";
        default:
                return "";
        }
}

static const char *on_off(uint64_t v) {
        return v == 0 ? " (off)" : v == 1 ? " (on)" : "";
}

static int finish_output(FILE *f) {
        if (fflush(f) != 0 || ferror(f))
                return errno > 0 ? -errno : -EIO;
        return 0;
}

#define LINE "%-20s "

/* "12.3% of one CPU over 500 ms, 1234.56 s in total (PID 37)", or why there is no such figure. */
static void print_ksmd_cpu(const KsmdCpu *c, FILE *f) {
        char total[64];
        double percent;

        fprintf(f, LINE, "ksmd CPU:");
        if (!c->found) {
                fputs("unknown: ksmd not found (no KSM in this kernel, or kernel threads are hidden, as in a "
                      "container)\n",
                      f);
                return;
        }
        format_ticks(total, sizeof(total), c->ticks, c->ticks_per_sec);
        if (ksmctl_ksmd_cpu_percent(c, &percent))
                fprintf(f, "%.1f%% of one CPU over %" PRIu64 " ms, ", percent, c->sample_ms);
        else if (c->sample_ms > 0)
                fprintf(f, "not sampled (the window could not be measured), ");
        fprintf(f, "%s s in total (PID %d)\n", total, (int) c->pid);
}

/*
 * The advisor's settings in one parenthesis, each where the kernel has it: "(target scan time 200 s,
 * max CPU 70%, pages_to_scan 500..30000)"; nothing when it has none of them.
 */
static void print_advisor_settings(const KsmStatus *s, const char *intro, FILE *f) {
        const char *sep = intro;
        bool min = ksmctl_status_has(s, KSMCTL_KNOB_ADVISOR_MIN_PAGES_TO_SCAN),
             max = ksmctl_status_has(s, KSMCTL_KNOB_ADVISOR_MAX_PAGES_TO_SCAN);

        if (ksmctl_status_has(s, KSMCTL_KNOB_ADVISOR_TARGET_SCAN_TIME)) {
                fprintf(f, "%starget scan time %" PRIu64 " s", sep, s->advisor_target_scan_time);
                sep = ", ";
        }
        if (ksmctl_status_has(s, KSMCTL_KNOB_ADVISOR_MAX_CPU)) {
                fprintf(f, "%smax CPU %" PRIu64 "%%", sep, s->advisor_max_cpu);
                sep = ", ";
        }
        if (min && max)
                fprintf(f, "%spages_to_scan %" PRIu64 "..%" PRIu64, sep, s->advisor_min_pages_to_scan,
                        s->advisor_max_pages_to_scan);
        else if (min)
                fprintf(f, "%spages_to_scan at least %" PRIu64, sep, s->advisor_min_pages_to_scan);
        else if (max)
                fprintf(f, "%spages_to_scan at most %" PRIu64, sep, s->advisor_max_pages_to_scan);
        if (min || max)
                sep = ", ";
        if (sep != intro)
                fputc(')', f);
}

/* Whether the scan-time advisor sets pages_to_scan: the kernel then refuses writes to it (EINVAL). */
static bool advisor_owns_pages_to_scan(const KsmStatus *s) {
        return ksmctl_status_has(s, KSMCTL_KNOB_ADVISOR_MODE) && s->advisor_mode && streq(s->advisor_mode, "scan-time");
}

/**
 * ksmctl_status_print() - the human summary of "ksmctl status", one "label: value" line each.
 * @s: the snapshot
 * @cpu: ksmd's CPU time, or NULL to leave that line out
 * @page_size: bytes per page
 * @f: where to print
 *
 * Return: 0, or -errno when @f could not be written.
 */
int ksmctl_status_print(const KsmStatus *s, const KsmdCpu *cpu, uint64_t page_size, FILE *f) {
        uint64_t rate;

        fprintf(f, LINE "%s (run = %" PRIu64 ")%s\n", "ksmd:", run_text(s->run), s->run, run_detail(s->run));
        if (cpu)
                print_ksmd_cpu(cpu, f);
        fprintf(f, LINE "%" PRIu64 "%s\n", "pages_to_scan:", s->pages_to_scan,
                advisor_owns_pages_to_scan(s) ? " (set by the scan-time advisor; the kernel refuses writes)" : "");
        fprintf(f, LINE "%" PRIu64 "\n", "sleep_millisecs:", s->sleep_millisecs);
        if (ksmctl_scan_rate(s, &rate))
                fprintf(f, LINE "up to %" PRIu64 " pages/s (%.1f MiB/s)\n", "scan rate:", rate,
                        mib(mul_sat(rate, page_size)));
        else
                fprintf(f, LINE "unbounded (sleep_millisecs is 0)\n", "scan rate:");
        if (ksmctl_status_has(s, KSMCTL_KNOB_ADVISOR_MODE)) {
                fprintf(f, LINE "%s", "advisor:", s->advisor_mode);
                if (advisor_owns_pages_to_scan(s)) {
                        print_advisor_settings(s, " (", f);
                        fputs(": the kernel sets pages_to_scan", f);
                } else if (streq(s->advisor_mode, "none"))
                        print_advisor_settings(s, " (scan-time would use: ", f);
                else
                        print_advisor_settings(s, " (", f);
                fputc('\n', f);
        }
        if (ksmctl_status_has(s, KSMCTL_KNOB_SMART_SCAN))
                fprintf(f, LINE "%" PRIu64 "%s\n", "smart_scan:", s->smart_scan, on_off(s->smart_scan));
        fprintf(f, LINE "%" PRIu64 "\n", "pages_shared:", s->pages_shared);
        fprintf(f, LINE "%" PRIu64 "\n", "pages_sharing:", s->pages_sharing);
        fprintf(f, LINE "%" PRIu64 "\n", "pages_unshared:", s->pages_unshared);
        fprintf(f, LINE "%" PRIu64 "\n", "pages_volatile:", s->pages_volatile);
        if (ksmctl_status_has(s, KSMCTL_KNOB_KSM_ZERO_PAGES))
                fprintf(f, LINE "%" PRIu64 "\n", "ksm_zero_pages:", s->ksm_zero_pages);
        fprintf(f, LINE "%" PRIu64 "\n", "full_scans:", s->full_scans);
        fprintf(f, LINE "%.1f MiB (%" PRIu64 " bytes: %s, %" PRIu64 "-byte pages)\n",
                "memory saved:", mib(ksmctl_saved_bytes(s, page_size)), ksmctl_saved_bytes(s, page_size),
                ksmctl_status_has(s, KSMCTL_KNOB_KSM_ZERO_PAGES) ? "pages_sharing + ksm_zero_pages" : "pages_sharing",
                page_size);
        if (ksmctl_status_has(s, KSMCTL_KNOB_GENERAL_PROFIT))
                fprintf(f, LINE "%.1f MiB (%" PRIi64 " bytes)\n",
                        "general_profit:", (double) s->general_profit / (1024.0 * 1024.0), s->general_profit);
        if (ksmctl_status_has(s, KSMCTL_KNOB_MAX_KERNEL_PAGES))
                fprintf(f, LINE "%" PRIu64 "%s\n", "max_kernel_pages:", s->max_kernel_pages,
                        s->max_kernel_pages == 0 ? " (unlimited)" : "");
        if (ksmctl_status_has(s, KSMCTL_KNOB_MAX_PAGE_SHARING))
                fprintf(f, LINE "%" PRIu64 "\n", "max_page_sharing:", s->max_page_sharing);
        if (ksmctl_status_has(s, KSMCTL_KNOB_MERGE_ACROSS_NODES))
                fprintf(f, LINE "%" PRIu64 "%s\n", "merge_across_nodes:", s->merge_across_nodes,
                        on_off(s->merge_across_nodes));
        if (ksmctl_status_has(s, KSMCTL_KNOB_USE_ZERO_PAGES))
                fprintf(f, LINE "%" PRIu64 "%s\n", "use_zero_pages:", s->use_zero_pages, on_off(s->use_zero_pages));
        return finish_output(f);
}

/* A JSON string: the kernel's choice words are plain, but nothing here trusts a file's content. */
void ksmctl_json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;

                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c < 0x20 || c == 0x7f)
                        fprintf(f, "\\u%04x", c);
                else
                        fputc(c, f);
        }
        fputc('"', f);
}

/**
 * ksmctl_status_print_json() - "ksmctl status --json": one JSON object on one line.
 * @s: the snapshot
 * @cpu: ksmd's CPU time, or NULL to leave its keys out
 * @page_size: bytes per page
 * @f: where to print
 *
 * The keys are documented in ksmctl(8) and stay stable: the knobs under their sysfs names with their
 * raw values, then "running", "scan_pages_per_sec" (null when sleep_millisecs is 0), "page_size" and
 * "saved_bytes". An optional knob the kernel lacks is left out. With @cpu: "sample_ms", and where
 * ksmd was found "ksmd_pid" and "ksmd_cpu_seconds", and "ksmd_cpu_percent" where it was sampled.
 *
 * Return: 0, or -errno when @f could not be written.
 */
int ksmctl_status_print_json(const KsmStatus *s, const KsmdCpu *cpu, uint64_t page_size, FILE *f) {
        uint64_t rate;
        double percent;

        fprintf(f, "{\"run\":%" PRIu64 ",\"running\":%s", s->run, s->run == KSM_RUN_MERGE ? "true" : "false");
        fprintf(f, ",\"pages_to_scan\":%" PRIu64 ",\"sleep_millisecs\":%" PRIu64, s->pages_to_scan, s->sleep_millisecs);
        if (ksmctl_scan_rate(s, &rate))
                fprintf(f, ",\"scan_pages_per_sec\":%" PRIu64, rate);
        else
                fputs(",\"scan_pages_per_sec\":null", f);
        fprintf(f,
                ",\"pages_shared\":%" PRIu64 ",\"pages_sharing\":%" PRIu64 ",\"pages_unshared\":%" PRIu64
                ",\"pages_volatile\":%" PRIu64 ",\"full_scans\":%" PRIu64,
                s->pages_shared, s->pages_sharing, s->pages_unshared, s->pages_volatile, s->full_scans);
        fprintf(f, ",\"page_size\":%" PRIu64 ",\"saved_bytes\":%" PRIu64, page_size, ksmctl_saved_bytes(s, page_size));

        for (KsmctlKnob k = 0; k < _KSMCTL_KNOB_MAX; k++) {
                const void *p = (const char *) s + optional_knobs[k].offset;

                if (!ksmctl_status_has(s, k))
                        continue;
                fprintf(f, ",\"%s\":", optional_knobs[k].name);
                switch (optional_knobs[k].kind) {
                case KIND_U64:
                        fprintf(f, "%" PRIu64, *(const uint64_t *) p);
                        break;
                case KIND_I64:
                        fprintf(f, "%" PRIi64, *(const int64_t *) p);
                        break;
                case KIND_CHOICE:
                        ksmctl_json_string(f, *(char *const *) p);
                        break;
                }
        }
        if (cpu) {
                fprintf(f, ",\"sample_ms\":%" PRIu64, cpu->sample_ms);
                if (cpu->found) {
                        char total[64];

                        format_ticks(total, sizeof(total), cpu->ticks, cpu->ticks_per_sec);
                        fprintf(f, ",\"ksmd_pid\":%d,\"ksmd_cpu_seconds\":%s", (int) cpu->pid, total);
                        if (ksmctl_ksmd_cpu_percent(cpu, &percent))
                                fprintf(f, ",\"ksmd_cpu_percent\":%.2f", percent);
                }
        }
        fputs("}\n", f);
        return finish_output(f);
}
