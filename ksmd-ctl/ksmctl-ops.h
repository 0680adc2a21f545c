/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmctl's operations on a KSM directory (start, stop, unmerge, status), apart from its command line. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "meminfo.h"

/*
 * What an operation did or tried. The operations fill it as they go, so after a failure @knob and
 * @write say which file the error is about; the caller turns that into a message.
 */
typedef struct KsmctlReport {
        const char *knob;          /* knob last read or written, or being read or written */
        bool write;                /* @knob was being written (else read) */
        uint64_t value;            /* the value written or being written to @knob */
        bool limited;              /* start: max_kernel_pages exists and was written */
        bool limit_from_env;       /* start: the limit came from KSM_MAX_KERNEL_PAGES */
        uint64_t max_kernel_pages; /* start: the limit written (0 = unlimited) */
        bool refused;              /* unmerge: refused for lack of memory */
        uint64_t needed_bytes;     /* unmerge: memory the copies of the merged pages take */
        uint64_t available_bytes;  /* unmerge: memory available, from meminfo */
} KsmctlReport;

/* The knobs "ksmctl status" shows besides the eight every KSM kernel has. */
typedef enum KsmctlKnob {
        KSMCTL_KNOB_MAX_KERNEL_PAGES,
        KSMCTL_KNOB_MAX_PAGE_SHARING,
        KSMCTL_KNOB_MERGE_ACROSS_NODES,
        KSMCTL_KNOB_USE_ZERO_PAGES,
        KSMCTL_KNOB_STABLE_NODE_CHAINS,
        KSMCTL_KNOB_STABLE_NODE_DUPS,
        KSMCTL_KNOB_PAGES_SCANNED,
        KSMCTL_KNOB_PAGES_SKIPPED,
        KSMCTL_KNOB_KSM_ZERO_PAGES,
        KSMCTL_KNOB_GENERAL_PROFIT,
        KSMCTL_KNOB_SMART_SCAN,
        KSMCTL_KNOB_ADVISOR_MODE,
        KSMCTL_KNOB_ADVISOR_MAX_CPU,
        KSMCTL_KNOB_ADVISOR_MIN_PAGES_TO_SCAN,
        KSMCTL_KNOB_ADVISOR_MAX_PAGES_TO_SCAN,
        KSMCTL_KNOB_ADVISOR_TARGET_SCAN_TIME,
        _KSMCTL_KNOB_MAX,
} KsmctlKnob;

/* A snapshot of the KSM directory. Optional knobs hold 0 (or NULL) unless their bit is in @present. */
typedef struct KsmStatus {
        uint64_t run;
        uint64_t pages_to_scan;
        uint64_t sleep_millisecs;
        uint64_t pages_shared;
        uint64_t pages_sharing;
        uint64_t pages_unshared;
        uint64_t pages_volatile;
        uint64_t full_scans;

        uint64_t max_kernel_pages;
        uint64_t max_page_sharing;
        uint64_t merge_across_nodes;
        uint64_t use_zero_pages;
        uint64_t stable_node_chains;
        uint64_t stable_node_dups;
        uint64_t pages_scanned;
        uint64_t pages_skipped;
        uint64_t ksm_zero_pages;
        int64_t general_profit; /* bytes; negative when the rmap items cost more than merging saves */
        uint64_t smart_scan;
        char *advisor_mode; /* the selected word of the choice, e.g. "none" */
        uint64_t advisor_max_cpu;
        uint64_t advisor_min_pages_to_scan;
        uint64_t advisor_max_pages_to_scan;
        uint64_t advisor_target_scan_time;

        uint32_t present; /* 1 << KsmctlKnob for each optional knob this kernel has */
} KsmStatus;

/*
 * ksmd's CPU time as "ksmctl status" shows it: the total, and what it used during a short window. Filled
 * by ksmctl_ksmd_cpu_read(); a caller that has none (ksmd not found) passes one with @found false.
 */
typedef struct KsmdCpu {
        bool found;             /* ksmd was found; the fields below but @sample_ms are 0 otherwise */
        pid_t pid;              /* ksmd's PID */
        uint64_t ticks_per_sec; /* clock ticks a second, sysconf(_SC_CLK_TCK) */
        uint64_t ticks;         /* utime + stime at the end of the window, in clock ticks */
        uint64_t sample_ms;     /* the window asked for, in milliseconds; 0: not sampled */
        bool sampled;           /* @ticks was read twice, @window_usec apart */
        uint64_t window_usec;   /* the window as measured */
        uint64_t window_ticks;  /* clock ticks ksmd used during the window */
} KsmdCpu;

/* The clock of the sampling window, a parameter so that tests neither sleep nor depend on timing. */
typedef struct KsmctlClock {
        uint64_t (*now_usec)(void *userdata);            /* a monotonic clock, in microseconds */
        void (*sleep_ms)(uint64_t msec, void *userdata); /* wait that long (tests change /proc here) */
        void *userdata;
} KsmctlClock;

/* The most --sample=MS accepts: 10 seconds. */
#define KSMCTL_SAMPLE_MS_MAX 10000

int ksmctl_max_kernel_pages(const char *env, uint64_t phys_pages, uint64_t *ret);
int ksmctl_start(int dirfd, const char *limit_env, uint64_t phys_pages, KsmctlReport *report);
int ksmctl_stop(int dirfd, KsmctlReport *report);

uint64_t ksmctl_mem_available_bytes(const MemInfo *mi);
int ksmctl_unmerge(int dirfd, const MemInfo *mi, uint64_t page_size, KsmctlReport *report);

int ksmctl_status_read(int dirfd, KsmStatus *ret, KsmctlReport *report);
void ksmctl_status_done(KsmStatus *s);
bool ksmctl_status_has(const KsmStatus *s, KsmctlKnob knob);
uint64_t ksmctl_saved_bytes(const KsmStatus *s, uint64_t page_size);
bool ksmctl_scan_rate(const KsmStatus *s, uint64_t *ret_pages_per_sec);

int ksmctl_ksmd_cpu_read(const char *proc_dir, uint64_t ticks_per_sec, uint64_t sample_ms, const KsmctlClock *clock,
                         KsmdCpu *ret);
double ksmctl_ksmd_cpu_seconds(const KsmdCpu *c);
bool ksmctl_ksmd_cpu_percent(const KsmdCpu *c, double *ret);

int ksmctl_status_print(const KsmStatus *s, const KsmdCpu *cpu, uint64_t page_size, FILE *f);
int ksmctl_status_print_json(const KsmStatus *s, const KsmdCpu *cpu, uint64_t page_size, FILE *f);
void ksmctl_json_string(FILE *f, const char *s);
