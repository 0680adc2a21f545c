/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The life of a Settings struct: defaults, freeing, copying, comparing, each driven by the keys table. */
#include <stdlib.h>
#include <string.h>

#include "config-keys.h"
#include "util.h"

/* Which of Settings' field types holds @k's value. */
Field key_field(const KeyInfo *k) {
        switch (k->type) {
        case KEY_INT:
        case KEY_CHOICE:
        case KEY_OPTINT:
        case KEY_OPTBOOL:
                return FIELD_INT;
        case KEY_FLAG:
        case KEY_BOOL:
                return FIELD_BOOL;
        case KEY_PATH:
        case KEY_REGEX:
        case KEY_STRING:
                return FIELD_STRING;
        case KEY_IGNORED:
        default:
                return FIELD_NONE;
        }
}

/* Replace a string key's value with @value (NULL: unset), which is taken over; the old one is freed. */
void string_set(Settings *s, const KeyInfo *k, char *value) {
        char **f = string_field(s, k);

        if (*f != k->def_string)
                free(*f);
        *f = value;
}

/**
 * settings_init() - the defaults of the original script, plus the Fedora/RHEL/Proxmox guest match: each
 * key's default from the keys[] table.
 * @s: the settings to fill; whatever it held is overwritten, not freed.
 *
 * Cannot fail: nothing is allocated.
 */
void settings_init(Settings *s) {
        *s = (Settings) {};
        for (size_t i = 0; i < config_n_keys; i++)
                switch (key_field(&config_keys[i])) {
                case FIELD_INT:
                        *int_field(s, &config_keys[i]) = config_keys[i].def;
                        break;
                case FIELD_BOOL:
                        *bool_field(s, &config_keys[i]) = config_keys[i].def != 0;
                        break;
                case FIELD_STRING:
                        *string_field(s, &config_keys[i]) = config_keys[i].def_string;
                        break;
                case FIELD_NONE:
                        break;
                }
}

/**
 * settings_done() - free the strings and leave @s empty (all zero).
 * @s: settings from settings_init(), config_load(), settings_copy(), or all zero.
 *
 * Safe to call again on the same struct.
 */
void settings_done(Settings *s) {
        for (size_t i = 0; i < config_n_keys; i++)
                if (key_field(&config_keys[i]) == FIELD_STRING)
                        string_set(s, &config_keys[i], NULL);
        *s = (Settings) {};
}

/**
 * settings_copy() - a deep copy of @src.
 * @src: the settings to copy.
 * @ret: where to put the copy; overwritten (not freed) on success, untouched on failure.
 *
 * Return: 0, or -ENOMEM.
 */
int settings_copy(const Settings *src, Settings *ret) {
        Settings c = *src;

        for (size_t i = 0; i < config_n_keys; i++)
                if (key_field(&config_keys[i]) == FIELD_STRING)
                        *string_field(&c, &config_keys[i]) = NULL;
        for (size_t i = 0; i < config_n_keys; i++) {
                char *v = *string_field((Settings *) src, &config_keys[i]);

                if (key_field(&config_keys[i]) != FIELD_STRING || !v)
                        continue;
                if (v != config_keys[i].def_string && !(v = strdup(v))) {
                        settings_done(&c);
                        return -ENOMEM;
                }
                *string_field(&c, &config_keys[i]) = v;
        }
        *ret = c;
        return 0;
}

/**
 * settings_equal() - whether two sets of settings behave the same.
 * @a: settings.
 * @b: settings.
 *
 * A NULL string and an empty one are the same (both mean unset, or off).
 */
bool settings_equal(const Settings *a, const Settings *b) {
        Settings *x = (Settings *) a, *y = (Settings *) b;

        for (size_t i = 0; i < config_n_keys; i++) {
                const KeyInfo *k = &config_keys[i];
                const char *sa, *sb;

                switch (key_field(k)) {
                case FIELD_INT:
                        if (*int_field(x, k) != *int_field(y, k))
                                return false;
                        break;
                case FIELD_BOOL:
                        if (*bool_field(x, k) != *bool_field(y, k))
                                return false;
                        break;
                case FIELD_STRING:
                        sa = *string_field(x, k);
                        sb = *string_field(y, k);
                        if (string_empty(sa) || string_empty(sb) ? string_empty(sa) != string_empty(sb)
                                                                 : !streq(sa, sb))
                                return false;
                        break;
                case FIELD_NONE:
                        break;
                }
        }
        return true;
}
