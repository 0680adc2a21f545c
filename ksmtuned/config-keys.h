/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The keys of ksmtuned.conf as a table (config.c), shared by the loader and the Settings functions. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The keys, as indexes into config_keys[]. */
typedef enum Key {
        K_MONITOR_INTERVAL,
        K_SLEEP_MSEC,
        K_NPAGES_BOOST,
        K_NPAGES_DECAY,
        K_NPAGES_MIN,
        K_NPAGES_MAX,
        K_THRES_COEF,
        K_THRES_CONST,
        K_DEBUG,
        K_LOGFILE,
        K_GUEST_COMM,
        K_GUEST_CMDLINE,
        K_LIBVIRT_URI,
        K_KVM_EVENTS,
        K_EVENT_SETTLE_MSEC,
        K_FREE_MEMORY,
        K_COMMITTED,
        K_CPU_BUDGET,
        K_STOP_MODE,
        K_METRICS_FILE,
        K_POLICY,
        K_ADAPTIVE_MAX_RATE,
        K_ADAPTIVE_MIN_RATE,
        K_ADAPTIVE_MAX_CPU,
        K_ADVISOR,
        K_ADVISOR_MAX_CPU,
        K_ADVISOR_MIN_PAGES,
        K_ADVISOR_MAX_PAGES,
        K_ADVISOR_TARGET_SCAN_TIME,
        K_SMART_SCAN,
        K_USE_ZERO_PAGES,
        K_MERGE_ACROSS_NODES,
        K_MAX_PAGE_SHARING,
        K_PIDFILE,
        K_DEFAULTS,
        K_PS_METRIC,
        N_KEYS,
} Key;

typedef enum KeyType {
        KEY_INT,
        KEY_FLAG,    /* DEBUG: on when non-empty, as the script's [ -n "$DEBUG" ] */
        KEY_PATH,    /* absolute, or empty for unset */
        KEY_REGEX,   /* POSIX ERE, or empty for off */
        KEY_STRING,  /* any text the shell would not have to expand, or empty for off */
        KEY_BOOL,    /* 1 or 0 (yes/no, true/false, on/off) */
        KEY_CHOICE,  /* one word of a list, stored as its index */
        KEY_OPTINT,  /* an integer, or empty for "leave the kernel's value" (-1) */
        KEY_OPTBOOL, /* a boolean, or empty for "leave the kernel's value" (-1) */
        KEY_IGNORED, /* the script read it, we have no use for it */
} KeyType;

typedef struct KeyInfo {
        const char *name;
        KeyType type;
        size_t offset;
        int64_t min, max;
        const char *unit;
        const char *const *choices; /* KEY_CHOICE: NULL-terminated */
        int64_t def;                /* the default of an integer or boolean key (what empty means, too) */
        char *def_string;           /* the default of a string key: NULL, or a static string */
} KeyInfo;

/* Every key, in config.c: its name, type, bounds and default, and where Settings keeps its value. */
extern const KeyInfo config_keys[];
extern const size_t config_n_keys;

/* A default that KSM_DEFAULTS=proxmox gives a key instead of its keys[] row's. */
typedef struct ProfileDefault {
        Key key;
        int64_t def;      /* an integer or boolean key's */
        char *def_string; /* a string key's: a static string */
} ProfileDefault;

/* The keys whose default KSM_DEFAULTS=proxmox changes, in config.c. */
extern const ProfileDefault config_proxmox_defaults[];
extern const size_t config_n_proxmox_defaults;

/* How a key's value is stored in Settings. */
typedef enum Field {
        FIELD_NONE,
        FIELD_INT,    /* int64_t: KEY_INT, KEY_CHOICE (index), KEY_OPTINT and KEY_OPTBOOL (-1: unset) */
        FIELD_BOOL,   /* bool: KEY_FLAG, KEY_BOOL */
        FIELD_STRING, /* char *: NULL, the key's static default, or the heap */
} Field;

Field key_field(const KeyInfo *k);

static inline int64_t *int_field(Settings *s, const KeyInfo *k) {
        return (int64_t *) ((char *) s + k->offset);
}

static inline bool *bool_field(Settings *s, const KeyInfo *k) {
        return (bool *) ((char *) s + k->offset);
}

static inline char **string_field(Settings *s, const KeyInfo *k) {
        return (char **) ((char *) s + k->offset);
}

static inline bool string_empty(const char *p) {
        return !p || !*p;
}

void string_set(Settings *s, const KeyInfo *k, char *value);
int64_t key_default(Key key, int64_t defaults);
int64_t ps_metric_committed(int64_t ps_metric);
void settings_apply_defaults(Settings *s, const bool *set);
