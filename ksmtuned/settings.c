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

/* The KSM_DEFAULTS=proxmox default of @key, or NULL when it has its keys[] row's. */
static const ProfileDefault *proxmox_default(size_t key) {
        for (size_t i = 0; i < config_n_proxmox_defaults; i++)
                if (config_proxmox_defaults[i].key == key)
                        return &config_proxmox_defaults[i];
        return NULL;
}

/* Whether @p is one of @k's static default strings, which are never freed or copied. */
static bool string_is_default(const KeyInfo *k, const char *p) {
        const ProfileDefault *d = proxmox_default((size_t) (k - config_keys));

        return p == k->def_string || (d && p == d->def_string);
}

/* Replace a string key's value with @value (NULL: unset), which is taken over; the old one is freed. */
void string_set(Settings *s, const KeyInfo *k, char *value) {
        char **f = string_field(s, k);

        if (!string_is_default(k, *f))
                free(*f);
        *f = value;
}

/**
 * key_default() - an integer or boolean key's default under KSM_DEFAULTS=@defaults.
 * @key: the key.
 * @defaults: DEFAULTS_CLASSIC or DEFAULTS_PROXMOX.
 *
 * Return: the proxmox default for the keys config_proxmox_defaults[] lists, else the keys[] row's.
 */
int64_t key_default(Key key, int64_t defaults) {
        const ProfileDefault *d = defaults == DEFAULTS_PROXMOX ? proxmox_default(key) : NULL;

        return d ? d->def : config_keys[key].def;
}

/**
 * ps_metric_committed() - the KSM_COMMITTED that Proxmox's KSM_PS_METRIC=@ps_metric means.
 * @ps_metric: PS_METRIC_PSS, PS_METRIC_RSZ or PS_METRIC_RSS (ps's two names for the resident set size).
 *
 * Return: COMMITTED_PSS or COMMITTED_RSS.
 */
int64_t ps_metric_committed(int64_t ps_metric) {
        return ps_metric == PS_METRIC_PSS ? COMMITTED_PSS : COMMITTED_RSS;
}

/**
 * settings_apply_defaults() - give the keys whose default KSM_DEFAULTS or KSM_PS_METRIC chooses that default.
 * @s: settings whose defaults and ps_metric are final.
 * @set: indexed by Key, true for the keys a file set, which are left alone; NULL when none was.
 *
 * KSM_DEFAULTS=classic: the keys[] rows' defaults; proxmox: config_proxmox_defaults[]. KSM_PS_METRIC, when
 * set, is KSM_COMMITTED's default with either. Cannot fail: the string defaults are static.
 */
void settings_apply_defaults(Settings *s, const bool *set) {
        for (size_t i = 0; i < config_n_proxmox_defaults; i++) {
                const ProfileDefault *d = &config_proxmox_defaults[i];
                const KeyInfo *k = &config_keys[d->key];
                bool proxmox = s->defaults == DEFAULTS_PROXMOX;

                if (set && set[d->key])
                        continue;
                switch (key_field(k)) {
                case FIELD_INT:
                        *int_field(s, k) = proxmox ? d->def : k->def;
                        break;
                case FIELD_BOOL:
                        *bool_field(s, k) = (proxmox ? d->def : k->def) != 0;
                        break;
                case FIELD_STRING:
                        string_set(s, k, proxmox ? d->def_string : k->def_string);
                        break;
                case FIELD_NONE:
                        break;
                }
        }
        if (s->ps_metric >= 0 && !(set && set[K_COMMITTED]))
                s->committed_source = ps_metric_committed(s->ps_metric);
}

/**
 * settings_init() - the defaults of the original script, plus the Fedora/RHEL/Proxmox guest match: each
 * key's default from the keys[] table; or, built with -Ddefaults=proxmox, those of Proxmox VE's script
 * (see settings_apply_defaults()).
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
        settings_apply_defaults(s, NULL);
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
                if (!string_is_default(&config_keys[i], v) && !(v = strdup(v))) {
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
 * A NULL string and an empty one are the same (both mean unset, or off). KSM_DEFAULTS and KSM_PS_METRIC
 * act only through the keys whose defaults they give, which are compared.
 */
bool settings_equal(const Settings *a, const Settings *b) {
        Settings *x = (Settings *) a, *y = (Settings *) b;

        for (size_t i = 0; i < config_n_keys; i++) {
                const KeyInfo *k = &config_keys[i];
                const char *sa, *sb;

                if (i == K_DEFAULTS || i == K_PS_METRIC)
                        continue;
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
