/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmtuned's settings: defaults, parsing of /etc/ksmtuned.conf and its drop-ins, validation. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Default guest match: Fedora/RHEL's process names, plus Proxmox's "kvm". */
#define DEFAULT_GUEST_COMM  "^(qemu(-(kvm|system-.+)|:.{1,11})|kvm)$"
#define DEFAULT_LIBVIRT_URI "qemu:///system"

typedef struct Settings {
        int64_t monitor_interval;  /* KSM_MONITOR_INTERVAL, seconds, >= 1 */
        int64_t sleep_msec;        /* KSM_SLEEP_MSEC, for a 16 GiB host */
        int64_t npages_boost;      /* KSM_NPAGES_BOOST */
        int64_t npages_decay;      /* KSM_NPAGES_DECAY */
        int64_t npages_min;        /* KSM_NPAGES_MIN */
        int64_t npages_max;        /* KSM_NPAGES_MAX */
        int64_t thres_coef;        /* KSM_THRES_COEF, percent */
        int64_t thres_const;       /* KSM_THRES_CONST, kB */
        bool debug;                /* DEBUG non-empty */
        char *logfile;             /* LOGFILE, NULL when unset or empty */
        char *guest_comm;          /* KSM_GUEST_COMM: ERE on the process name; NULL or "" = off */
        char *guest_cmdline;       /* KSM_GUEST_CMDLINE: ERE on the command line; NULL or "" = off */
        char *libvirt_uri;         /* KSM_LIBVIRT_URI: watch this libvirt's guests; NULL or "" = off */
        bool kvm_events;           /* KSM_KVM_EVENTS: retune on the kernel's KVM create/destroy uevents */
        int64_t event_settle_msec; /* KSM_EVENT_SETTLE_MSEC: delay from a guest event to the adjustment */

        /* Opt-in behaviour for today's kernels; the defaults make the original's decisions. */
        int64_t free_source;       /* KSM_FREE_MEMORY: FREE_* */
        int64_t committed_source;  /* KSM_COMMITTED: COMMITTED_* */
        int64_t cpu_budget;        /* KSM_CPU_BUDGET: percent of one CPU for ksmd; 0 = no budget */
        int64_t stop_mode;         /* KSM_STOP_MODE: STOP_* */
        char *metrics_file;        /* KSM_METRICS_FILE: Prometheus text file; NULL = none */
        int64_t policy;            /* KSM_POLICY: POLICY_* */
        int64_t adaptive_max_rate; /* KSM_ADAPTIVE_MAX_RATE, pages/s */
        int64_t adaptive_min_rate; /* KSM_ADAPTIVE_MIN_RATE, pages/s */
        int64_t adaptive_max_cpu;  /* KSM_ADAPTIVE_MAX_CPU, percent of one CPU; 0 = none */

        /* Kernel knobs set at start and reload; -1 leaves the kernel's value alone. */
        int64_t advisor_mode;             /* KSM_ADVISOR: -1, ADVISOR_NONE, ADVISOR_SCAN_TIME */
        int64_t advisor_max_cpu;          /* KSM_ADVISOR_MAX_CPU */
        int64_t advisor_min_pages;        /* KSM_ADVISOR_MIN_PAGES_TO_SCAN */
        int64_t advisor_max_pages;        /* KSM_ADVISOR_MAX_PAGES_TO_SCAN */
        int64_t advisor_target_scan_time; /* KSM_ADVISOR_TARGET_SCAN_TIME */
        int64_t smart_scan;               /* KSM_SMART_SCAN: -1, 0, 1 */
        int64_t use_zero_pages;           /* KSM_USE_ZERO_PAGES: -1, 0, 1 */
        int64_t merge_across_nodes;       /* KSM_MERGE_ACROSS_NODES: -1, 0, 1 */
        int64_t max_page_sharing;         /* KSM_MAX_PAGE_SHARING */
} Settings;

enum { FREE_CLASSIC, FREE_AVAILABLE };
enum { COMMITTED_RSS, COMMITTED_PSS, COMMITTED_RSS_MINUS_MERGED };
enum { STOP_STOP, STOP_UNMERGE };
enum { POLICY_CLASSIC, POLICY_ADAPTIVE };
enum { ADVISOR_NONE, ADVISOR_SCAN_TIME };

extern const char *const free_source_names[];
extern const char *const committed_source_names[];
extern const char *const stop_mode_names[];
extern const char *const advisor_mode_names[];
extern const char *const policy_names[];

/* A file (the main one or a drop-in) larger than this is an error, not something to allocate for. */
#define CONFIG_FILE_SIZE_MAX (1024 * 1024)

/*
 * One problem found while loading; the caller logs them, e.g. as "FILE:LINE: MESSAGE". @line is 0 when
 * the problem is with the file as a whole (unreadable, a directory, too large). An invalid value's
 * message is "KEY=VALUE: reason", VALUE as written in the file.
 */
typedef enum ConfigSeverity {
        CONFIG_WARNING, /* e.g. unknown key: loading goes on */
        CONFIG_ERROR,   /* invalid value or unreadable file: the load fails */
} ConfigSeverity;

typedef void (*ConfigReport)(void *userdata, ConfigSeverity severity, const char *file, unsigned line,
                             const char *message);

void settings_init(Settings *s);
void settings_done(Settings *s);
int settings_copy(const Settings *src, Settings *ret);
bool settings_equal(const Settings *a, const Settings *b);

int config_load(const char *path, const char *dropin_dir, Settings *ret, ConfigReport report, void *userdata);
int config_load_string(const char *text, const char *name, Settings *ret, ConfigReport report, void *userdata);
