/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What caused an adjustment: a typed value that travels with it; the free text is for the log only. */
#pragma once

typedef enum Trigger {
        TRIGGER_START_UP,    /* the first adjustment, or --once */
        TRIGGER_INTERVAL,    /* KSM_MONITOR_INTERVAL elapsed */
        TRIGGER_SIGNAL,      /* SIGUSR1 */
        TRIGGER_RELOAD,      /* SIGHUP */
        TRIGGER_GUEST_EVENT, /* a guest started or stopped (libvirt, KVM uevents), or uevents were lost */
        TRIGGER_RECONNECT,   /* the connection to libvirt came back: guests may have changed meanwhile */
        TRIGGER_OTHER,
        _TRIGGER_MAX,
        TRIGGER_NONE = -1, /* an event source's own state changed; no guest did, no adjustment */
} Trigger;

/* The metrics' label value of @t ("start-up", "guest-event", ...); "other" for anything unknown. */
const char *trigger_label(Trigger t);
