/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The manager owns the event loop: timer, signals, adjustments, reloads and what it tells systemd. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "adaptive.h"
#include "config.h"
#include "events.h"
#include "guests.h"
#include "metrics.h"
#include "policy.h"
#include "schedule.h"

typedef struct ManagerOptions {
        const char *config_path;
        const char *dropin_dir; /* NULL: none */
        const char *ksm_dir;
        const char *proc_dir;
        const char *runtime_dir; /* where reloads are recorded for ksmtuned --reload; NULL: nowhere */
        bool dry_run;
        bool once;
        bool debug; /* --debug: debug level whatever the configuration says */
} ManagerOptions;

/* The knobs an adjustment writes, in the original's order, then those set at start and reload. */
enum {
        KNOB_PAGES_TO_SCAN,
        KNOB_SLEEP_MILLISECS,
        KNOB_RUN,
        KNOB_ADVISOR_MODE,
        KNOB_ADVISOR_MAX_CPU,
        KNOB_ADVISOR_MIN_PAGES,
        KNOB_ADVISOR_MAX_PAGES,
        KNOB_ADVISOR_TARGET_SCAN_TIME,
        KNOB_SMART_SCAN,
        KNOB_USE_ZERO_PAGES,
        KNOB_MAX_PAGE_SHARING,
        KNOB_MERGE_ACROSS_NODES,
        _KNOB_MAX,
};

extern const char *const knob_names[_KNOB_MAX];

typedef struct Manager {
        ManagerOptions opts;
        sd_event *event;
        sd_event_source *timer;
        sd_event_source *retune;
        sd_event_source *settle; /* the adjustment that guest events are waiting for */
        sd_event_source *signals[4];
        Pending pending;
        KvmWatch *kvm;
        LibvirtWatch *libvirt;

        int ksm_fd;
        Settings settings;
        GuestMatcher matcher;
        PolicyParams params;

        int64_t npages;
        unsigned adjustments;
        const char *retune_reason;
        bool reload_failed;
        bool have_decision;
        Decision last;

        /* ksmd's CPU time at the previous adjustment. */
        pid_t ksmd_pid; /* 0: not looked for yet; -1: not found */
        bool have_ksmd_sample;
        uint64_t ksmd_ticks, ksmd_usec;
        Snapshot last_snapshot;
        Metrics metrics;
        bool advisor_owns; /* advisor_mode is scan-time: the kernel owns pages_to_scan */

        /* KSM_POLICY=adaptive: the controller's state and its own checks between adjustments. */
        AdaptiveState adaptive;
        AdaptiveStep adaptive_step;
        sd_event_source *adaptive_timer;

        /* What has been reported, so that a persisting failure is logged once, not every interval. */
        int knob_error[_KNOB_MAX];
        int meminfo_error;
        unsigned meminfo_fields_reported; /* 1u << MEMINFO_*: fields warned about as counted as 0 */
        int proc_error;
        int metrics_error;
        bool fallback_reported;
        bool unmerge_refusal_reported;
} Manager;

void manager_apply_knobs(Manager *m);
bool manager_read_counters(Manager *m, KsmCounters *c);
void manager_write_knob(Manager *m, int knob, bool known, uint64_t cur, uint64_t value);

int manager_new(const ManagerOptions *opts, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
int manager_adjust(Manager *m, const char *reason);
int manager_run(Manager *m);
