/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The keys of ksmtuned.conf as a table (config.c), shared by the loader and the Settings functions. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

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
