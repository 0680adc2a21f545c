/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Prometheus text-format metrics of each adjustment, for node_exporter's textfile collector. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "trigger.h"

typedef struct Metrics {
        Decision decision;
        unsigned guests;
        uint64_t page_size;
        uint64_t run; /* what KSM's run holds after the adjustment */
        bool has_counters;
        uint64_t pages_shared, pages_sharing, full_scans;
        bool has_general_profit;
        int64_t general_profit; /* bytes; may be negative */
        bool has_ksmd;
        double ksmd_cpu_seconds;
        bool has_ksmd_ratio;
        double ksmd_cpu_ratio;
        uint64_t adjustments[_TRIGGER_MAX]; /* by trigger */
        int libvirt_connected;              /* -1: libvirt not watched */
        double timestamp;                   /* seconds since the epoch */
        bool reload_failed;                 /* the last reload failed: the configuration before it is in force */
        uint64_t monitor_interval;          /* KSM_MONITOR_INTERVAL in force, seconds */
} Metrics;

int metrics_format(const Metrics *m, char **ret);
int metrics_write(const char *path, const char *text);
