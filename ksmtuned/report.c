/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What an adjustment tells the log, systemd and the metrics: text from structs, nothing read or written. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

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
 * report_status() - the STATUS= text for the last decision (without "STATUS=").
 */
void report_status(char *buf, size_t size, const Decision *d, const Snapshot *snap, const StatusExtra *x) {
        char a[32], b[32], c[32], t[32], extra[256] = "";

        if (snap->has_ksmd_cpu) {
                snprintf(a, sizeof(a), "; ksmd %.1f%% CPU", snap->ksmd_cpu_permille / 10.0);
                append(extra, sizeof(extra), a);
        }
        if (x->advisor_owns)
                append(extra, sizeof(extra), "; advisor owns pages_to_scan");
        if (x->libvirt) {
                append(extra, sizeof(extra), "; ");
                append(extra, sizeof(extra), x->libvirt);
        }
        if (x->reload_failed)
                append(extra, sizeof(extra), "; configuration reload failed, previous one in force");
        if (d->run)
                snprintf(buf, size,
                         "KSM on: pages_to_scan %" PRIi64 ", sleep %" PRIu64 " ms; free %s %s threshold %s; "
                         "guests commit %s%s",
                         d->npages, d->sleep_ms, format_kb(a, sizeof(a), d->free),
                         d->boost ? "<" : ">=", format_kb(b, sizeof(b), d->thres),
                         format_kb(c, sizeof(c), d->committed), extra);
        else
                snprintf(buf, size, "KSM off: free %s > threshold %s, guests commit %s of %s%s",
                         format_kb(a, sizeof(a), d->free), format_kb(b, sizeof(b), d->thres),
                         format_kb(c, sizeof(c), d->committed), format_kb(t, sizeof(t), d->total), extra);
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
}
