/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Pure formatters of what an adjustment decided: its log line, STATUS=, its journal fields, its metrics. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "policy.h"
#include "trigger.h"

/* What STATUS= says besides the decision. */
typedef struct StatusExtra {
        bool advisor_owns;
        const char *libvirt; /* the libvirt watch's state, or NULL when not watching */
        bool reload_failed;
} StatusExtra;

#define REPORT_FIELDS 9

/* An adjustment's journal fields, KSM_REASON=... to KSMD_CPU_PERMILLE=..., for log_internal(). */
typedef struct JournalFields {
        char text[REPORT_FIELDS][48];
        const char *fields[REPORT_FIELDS + 1]; /* NULL-terminated, pointing into text */
} JournalFields;

/* What the metrics say besides the decision and the snapshot. */
typedef struct MetricsExtra {
        uint64_t run;  /* KSM's run knob after the adjustment */
        bool has_ksmd; /* ksmd's CPU time was sampled */
        double ksmd_cpu_seconds;
        int libvirt_connected;     /* -1: libvirt not watched */
        double timestamp;          /* seconds since the epoch */
        bool reload_failed;        /* the last reload failed: the configuration before it is in force */
        uint64_t monitor_interval; /* KSM_MONITOR_INTERVAL in force, seconds */
} MetricsExtra;

const char *format_kb(char *buf, size_t size, uint64_t kb);
void report_line(char *buf, size_t size, unsigned n, const char *reason, const Decision *d, const Snapshot *snap);
const char *report_relation(uint64_t a, uint64_t b);
void report_compare(char *buf, size_t size, const char *a_name, uint64_t a, const char *b_name, uint64_t b);
void report_reason(char *buf, size_t size, const Decision *d, const Snapshot *snap, bool advisor);
void report_change(char *buf, size_t size, const Decision *d, const Snapshot *snap, bool was_on);
void report_unmerge_refused(char *buf, size_t size, const Decision *d, const Snapshot *snap);
const char *report_knob_keys(Knob knob, bool adaptive);
void report_status(char *buf, size_t size, const Decision *d, const Snapshot *snap, const StatusExtra *x);
void report_fields(JournalFields *ret, const char *reason, const Decision *d, const Snapshot *snap);
void report_metrics(Metrics *m, const Decision *d, const Snapshot *snap, const MetricsExtra *x);
