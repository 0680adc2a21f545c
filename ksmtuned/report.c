/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What an adjustment tells the log, systemd and the metrics: text from structs, nothing read or written. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "util.h"

/**
 * format_kb() - a kB figure for people: "512 kB", "1.5 MiB", "2.0 GiB" (binary units, one decimal).
 */
const char *format_kb(char *buf, size_t size, uint64_t kb) {
        if (kb >= 1024 * 1024)
                snprintf(buf, size, "%.1f GiB", (double) kb / (1024.0 * 1024.0));
        else if (kb >= 1024)
                snprintf(buf, size, "%.1f MiB", (double) kb / 1024.0);
        else
                snprintf(buf, size, "%" PRIu64 " kB", kb);
        return buf;
}

/**
 * report_line() - adjustment #@n's line for the debug log and LOGFILE: its inputs and decision, in kB.
 * @reason: what caused it, as text.
 */
void report_line(char *buf, size_t size, unsigned n, const char *reason, const Decision *d, const Snapshot *snap) {
        char extra[32] = "", adaptive[160] = "";

        if (snap->has_ksmd_cpu)
                snprintf(extra, sizeof(extra), " ksmd %.1f%%", snap->ksmd_cpu_permille / 10.0);
        if (d->run && d->adaptive)
                snprintf(adaptive, sizeof(adaptive), "adaptive: %" PRIu64 " pages/s, %s; ", d->adaptive_rate,
                         adaptive_why_string(d->adaptive_why));
        if (d->run)
                snprintf(buf, size,
                         "adjustment #%u (%s): total %" PRIu64 " free %" PRIu64 " thres %" PRIu64 " committed %" PRIu64
                         " (%u guests)%s -> start pages_to_scan %" PRIi64 " sleep_millisecs %" PRIu64 " (%s%s)",
                         n, reason, d->total, d->free, d->thres, d->committed, snap->guests, extra, d->npages,
                         d->sleep_ms, adaptive,
                         d->boost        ? "boost"
                         : d->cpu_capped ? "decay: ksmd over its CPU budget"
                                         : "decay");
        else
                snprintf(buf, size,
                         "adjustment #%u (%s): total %" PRIu64 " free %" PRIu64 " thres %" PRIu64 " committed %" PRIu64
                         " (%u guests)%s -> stop%s",
                         n, reason, d->total, d->free, d->thres, d->committed, snap->guests, extra,
                         d->unmerge           ? " and unmerge"
                         : d->unmerge_refused ? " (unmerge refused: memory too short)"
                                              : "");
}

/* Append to the string in @buf, whatever fits. */
static void append(char *buf, size_t size, const char *s) {
        size_t len = strlen(buf);

        snprintf(buf + len, size - len, "%s", s);
}

/**
 * report_relation() - how @a compares to @b, as the operator a person would write: "<", "=" or ">".
 */
const char *report_relation(uint64_t a, uint64_t b) {
        return a < b ? "<" : a > b ? ">" : "=";
}

/**
 * report_compare() - "A_NAME A OP B_NAME B" for two kB figures, the operator from the figures themselves.
 * In human units, or in kB when those would print the same figure for two different numbers.
 */
void report_compare(char *buf, size_t size, const char *a_name, uint64_t a, const char *b_name, uint64_t b) {
        char x[32], y[32];

        format_kb(x, sizeof(x), a);
        format_kb(y, sizeof(y), b);
        if (a != b && streq(x, y)) {
                snprintf(x, sizeof(x), "%" PRIu64 " kB", a);
                snprintf(y, sizeof(y), "%" PRIu64 " kB", b);
        }
        snprintf(buf, size, "%s %s %s %s %s", a_name, x, report_relation(a, b), b_name, y);
}

/* MemTotal less the threshold: the guests' limit below which KSM may stop. */
static uint64_t room(const Decision *d) {
        return d->total > d->thres ? d->total - d->thres : 0;
}

/* free memory, less the threshold: what unmerging may take back without KSM starting again. */
static uint64_t spare(const Decision *d) {
        return d->free > d->thres ? d->free - d->thres : 0;
}

/**
 * report_reason() - why a decision is what it is, each comparison from the figures it names: free memory
 * against the threshold, the guests against MemTotal less the threshold, and, with KSM on, how
 * pages_to_scan moved (boost, decay, decay for ksmd's CPU budget, the adaptive controller, the advisor).
 * @advisor: say that the kernel's advisor sets pages_to_scan (else the step is named).
 */
void report_reason(char *buf, size_t size, const Decision *d, const Snapshot *snap, bool advisor) {
        char cmp[128], step[160];

        report_compare(buf, size, d->free_is_available ? "available" : "free", d->free, "threshold", d->thres);
        report_compare(cmp, sizeof(cmp), ", guests commit", d->committed, "MemTotal less the threshold", room(d));
        append(buf, size, cmp);
        if (!d->run)
                return;
        if (advisor)
                snprintf(step, sizeof(step), "; the kernel's advisor sets pages_to_scan");
        else if (d->adaptive)
                snprintf(step, sizeof(step), "; adaptive: %" PRIu64 " pages/s, %s", d->adaptive_rate,
                         adaptive_why_string(d->adaptive_why));
        else if (d->cpu_capped && snap->has_ksmd_cpu)
                snprintf(step, sizeof(step), "; ksmd %.1f%% of a CPU %s KSM_CPU_BUDGET %" PRIu64 "%%: decay, not boost",
                         snap->ksmd_cpu_permille / 10.0, report_relation(snap->ksmd_cpu_permille, d->cpu_budget * 10),
                         d->cpu_budget);
        else if (d->cpu_capped)
                snprintf(step, sizeof(step), "; ksmd over KSM_CPU_BUDGET %" PRIu64 "%%: decay, not boost",
                         d->cpu_budget);
        else
                snprintf(step, sizeof(step), "; %s", d->boost ? "boost" : "decay");
        append(buf, size, step);
}

/**
 * report_change() - the line for KSM started, tuned or stopped by a decision (apply logs it; which level is
 * its choice). @was_on: KSM was merging before; it decides "Started" or "Tuned".
 */
void report_change(char *buf, size_t size, const Decision *d, const Snapshot *snap, bool was_on) {
        char why[384], m[32], cmp[128];

        report_reason(why, sizeof(why), d, snap, d->run && snap->advisor_owns);
        if (!d->run && d->unmerge) {
                report_compare(cmp, sizeof(cmp), "free less the threshold", spare(d), "merged", snap->merged);
                snprintf(buf, size, "Stopped KSM and unmerged %s: %s; %s", format_kb(m, sizeof(m), snap->merged), why,
                         cmp);
        } else if (!d->run)
                snprintf(buf, size, "Stopped KSM: %s", why);
        else if (snap->advisor_owns)
                snprintf(buf, size,
                         "%s KSM: pages_to_scan set by the kernel's advisor, sleep_millisecs %" PRIu64 " (%s)",
                         was_on ? "Tuned" : "Started", d->sleep_ms, why);
        else
                snprintf(buf, size, "%s KSM: pages_to_scan %" PRIi64 ", sleep_millisecs %" PRIu64 " (%s)",
                         was_on ? "Tuned" : "Started", d->npages, d->sleep_ms, why);
}

/**
 * report_unmerge_refused() - why KSM_STOP_MODE=unmerge did not unmerge: MemAvailable (MemFree on kernels
 * without it) below the merged pages, or free memory less the threshold not above them.
 */
void report_unmerge_refused(char *buf, size_t size, const Decision *d, const Snapshot *snap) {
        uint64_t avail = snap->has_mem_available ? snap->mem_available : snap->mem_free;
        char m[32], cmp[128];

        if (avail < snap->merged)
                report_compare(cmp, sizeof(cmp), snap->has_mem_available ? "MemAvailable" : "MemFree", avail, "merged",
                               snap->merged);
        else
                report_compare(cmp, sizeof(cmp), "free less the threshold", spare(d), "merged", snap->merged);
        snprintf(buf, size, "Not unmerging %s of merged pages: %s; keeping them merged",
                 format_kb(m, sizeof(m), snap->merged), cmp);
}

/**
 * report_knob_keys() - the configuration keys that decide what an adjustment writes to @knob: those to set
 * for a value to last. NULL for a knob no adjustment writes.
 */
const char *report_knob_keys(Knob knob, bool adaptive) {
        switch (knob) {
        case KNOB_PAGES_TO_SCAN:
                return adaptive ? "KSM_ADAPTIVE_MIN_RATE and KSM_ADAPTIVE_MAX_RATE"
                                : "KSM_NPAGES_MIN and KSM_NPAGES_MAX (or KSM_ADVISOR=scan-time)";
        case KNOB_SLEEP_MILLISECS:
                return adaptive ? "KSM_ADAPTIVE_MIN_RATE and KSM_ADAPTIVE_MAX_RATE" : "KSM_SLEEP_MSEC";
        case KNOB_RUN:
                return "KSM_THRES_COEF and KSM_THRES_CONST (or stop ksmtuned)";
        default:
                return NULL;
        }
}

/**
 * report_status() - the STATUS= text for the last decision (without "STATUS=").
 */
void report_status(char *buf, size_t size, const Decision *d, const Snapshot *snap, const StatusExtra *x) {
        char a[32], why[384], extra[256] = "";

        if (snap->has_ksmd_cpu) {
                snprintf(a, sizeof(a), "; ksmd %.1f%% CPU", snap->ksmd_cpu_permille / 10.0);
                append(extra, sizeof(extra), a);
        }
        if (x->advisor_owns)
                append(extra, sizeof(extra), "; advisor owns pages_to_scan");
        if (!d->run && d->unmerge_refused)
                append(extra, sizeof(extra), "; unmerge refused");
        if (x->libvirt) {
                append(extra, sizeof(extra), "; ");
                append(extra, sizeof(extra), x->libvirt);
        }
        if (x->reload_failed)
                append(extra, sizeof(extra), "; configuration reload failed, previous one in force");
        report_reason(why, sizeof(why), d, snap, false);
        if (d->run)
                snprintf(buf, size, "KSM on: pages_to_scan %" PRIi64 ", sleep %" PRIu64 " ms; %s%s", d->npages,
                         d->sleep_ms, why, extra);
        else
                snprintf(buf, size, "KSM off: %s%s", why, extra);
}

/**
 * report_fields() - an adjustment's structured journal fields. KSMD_CPU_PERMILLE is -1 when not sampled.
 */
void report_fields(JournalFields *ret, const char *reason, const Decision *d, const Snapshot *snap) {
        char(*f)[48] = ret->text;

        snprintf(f[0], sizeof(f[0]), "KSM_REASON=%s", reason);
        snprintf(f[1], sizeof(f[1]), "KSM_RUN=%d", d->run ? 1 : 0);
        snprintf(f[2], sizeof(f[2]), "KSM_PAGES_TO_SCAN=%" PRIi64, d->npages);
        snprintf(f[3], sizeof(f[3]), "KSM_SLEEP_MILLISECS=%" PRIu64, d->sleep_ms);
        snprintf(f[4], sizeof(f[4]), "KSM_FREE_KB=%" PRIu64, d->free);
        snprintf(f[5], sizeof(f[5]), "KSM_THRES_KB=%" PRIu64, d->thres);
        snprintf(f[6], sizeof(f[6]), "KSM_COMMITTED_KB=%" PRIu64, d->committed);
        snprintf(f[7], sizeof(f[7]), "KSM_GUESTS=%u", snap->guests);
        snprintf(f[8], sizeof(f[8]), "KSMD_CPU_PERMILLE=%d", snap->has_ksmd_cpu ? (int) snap->ksmd_cpu_permille : -1);
        for (int i = 0; i < REPORT_FIELDS; i++)
                ret->fields[i] = f[i];
        ret->fields[REPORT_FIELDS] = NULL;
}

/**
 * report_metrics() - fill @m for metrics_format() from a decision and the snapshot it was made on.
 * @m's adjustments[] counts are the caller's and left alone.
 */
void report_metrics(Metrics *m, const Decision *d, const Snapshot *snap, const MetricsExtra *x) {
        m->decision = *d;
        m->guests = snap->guests;
        m->page_size = (uint64_t) sysconf(_SC_PAGESIZE);
        m->timestamp = x->timestamp;
        m->run = x->run;
        m->has_counters = snap->has_counters;
        m->pages_shared = snap->counters.pages_shared;
        m->pages_sharing = snap->counters.pages_sharing;
        m->full_scans = snap->counters.full_scans;
        m->has_general_profit = snap->has_general_profit;
        m->general_profit = snap->general_profit;
        m->has_ksmd = x->has_ksmd;
        m->ksmd_cpu_seconds = x->ksmd_cpu_seconds;
        m->has_ksmd_ratio = snap->has_ksmd_cpu;
        m->ksmd_cpu_ratio = snap->ksmd_cpu_permille / 1000.0;
        m->libvirt_connected = x->libvirt_connected;
        m->reload_failed = x->reload_failed;
        m->monitor_interval = x->monitor_interval;
}
