/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmtuned's settings: defaults, parsing of /etc/ksmtuned.conf and its drop-ins, validation. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Default guest match: Fedora/RHEL's process names, plus Proxmox's "kvm". */
#define DEFAULT_GUEST_COMM "^(qemu(-(kvm|system-.+)|:.{1,11})|kvm)$"
#define DEFAULT_LIBVIRT_URI "qemu:///system"

typedef struct Settings {
        int64_t monitor_interval; /* KSM_MONITOR_INTERVAL, seconds, >= 1 */
        int64_t sleep_msec;       /* KSM_SLEEP_MSEC, for a 16 GiB host */
        int64_t npages_boost;     /* KSM_NPAGES_BOOST */
        int64_t npages_decay;     /* KSM_NPAGES_DECAY */
        int64_t npages_min;       /* KSM_NPAGES_MIN */
        int64_t npages_max;       /* KSM_NPAGES_MAX */
        int64_t thres_coef;       /* KSM_THRES_COEF, percent */
        int64_t thres_const;      /* KSM_THRES_CONST, kB */
        bool debug;               /* DEBUG non-empty */
        char *logfile;            /* LOGFILE, NULL when unset or empty */
        char *guest_comm;         /* KSM_GUEST_COMM: ERE on the process name; NULL or "" = off */
        char *guest_cmdline;      /* KSM_GUEST_CMDLINE: ERE on the command line; NULL or "" = off */
        char *libvirt_uri;        /* KSM_LIBVIRT_URI: watch this libvirt's guests; NULL or "" = off */
        bool kvm_events;          /* KSM_KVM_EVENTS: retune on the kernel's KVM create/destroy uevents */
        int64_t event_settle_msec; /* KSM_EVENT_SETTLE_MSEC: delay from a guest event to the adjustment */
} Settings;

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
