/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The manager owns the event loop: timer, signals, adjustments, reloads and what it tells systemd. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "apply.h"
#include "config.h"
#include "events.h"
#include "guests.h"
#include "latch.h"
#include "meminfo.h"
#include "metrics.h"
#include "policy.h"
#include "schedule.h"
#include "snapshot.h"
#include "trigger.h"

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

typedef struct Manager {
        ManagerOptions opts;
        sd_event *event;
        sd_event_source *timer;
        sd_event_source *retune;
        sd_event_source *settle;         /* the adjustment that guest events are waiting for */
        sd_event_source *adaptive_timer; /* KSM_POLICY=adaptive's own checks between adjustments */
        sd_event_source *signals[4];
        Pending pending;
        KvmWatch *kvm;
        LibvirtWatch *libvirt;

        Settings settings;
        GuestMatcher matcher;
        PolicyParams params;
        PolicyState policy;
        Applier apply;
        KsmdSampler ksmd;

        unsigned adjustments;
        Trigger retune_trigger; /* TRIGGER_NONE: no retune requested */
        const char *retune_reason;
        bool reload_failed;
        bool have_decision;
        Decision last;
        Snapshot last_snapshot;
        Metrics metrics;

        /* What has been reported, so that a persisting failure is logged once, not every interval. */
        Latch read_error[_SNAPSHOT_PART_MAX];    /* by SnapshotPart */
        Latch meminfo_field[_MEMINFO_FIELD_MAX]; /* by MEMINFO_*: a field counted as 0, -ENODATA or -EBADMSG */
        Latch metrics_error;
        bool fallback_reported;
        bool ksmd_error_reported; /* the warning about ksmd's unreadable stat is out */
        bool logfile_in_dir_said; /* LOGFILE named a directory: said so at info */
} Manager;

int manager_new(const ManagerOptions *opts, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
int manager_adjust(Manager *m, Trigger trigger, const char *reason);
int manager_run(Manager *m);

/* Between the manager's two files (manager-adjust.c: one adjustment). */
void manager_publish_status(Manager *m);
void manager_apply_config(Manager *m);
int manager_on_adaptive_check(sd_event_source *s, uint64_t usec, void *userdata);
