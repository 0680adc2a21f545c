/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The manager owns the event loop: timer, signals, adjustments, reloads and what it tells systemd. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "events.h"
#include "guests.h"
#include "policy.h"
#include "schedule.h"

typedef struct ManagerOptions {
        const char *config_path;
        const char *dropin_dir; /* NULL: none */
        const char *ksm_dir;
        const char *proc_dir;
        bool dry_run;
        bool once;
        bool debug; /* --debug: debug level whatever the configuration says */
} ManagerOptions;

/* The knobs an adjustment writes, in the original's order. */
enum {
        KNOB_PAGES_TO_SCAN,
        KNOB_SLEEP_MILLISECS,
        KNOB_RUN,
        _KNOB_MAX,
};

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

        /* What has been reported, so that a persisting failure is logged once, not every interval. */
        int knob_error[_KNOB_MAX];
        int meminfo_error;
        int proc_error;
} Manager;

int manager_new(const ManagerOptions *opts, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
int manager_adjust(Manager *m, const char *reason);
int manager_run(Manager *m);
