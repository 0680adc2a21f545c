/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading /etc/ksmtuned.conf and its drop-ins: the shell's KEY=VALUE lines, read and never executed. */
#include <ctype.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config.h"
#include "util.h"

/* A year: long enough for anyone who wants ksmtuned to act only on SIGUSR1. */
#define MONITOR_INTERVAL_MAX INT64_C(31536000)
#define NPAGES_LIMIT INT64_C(1000000000)
/* 1 PiB in kB. */
#define THRES_CONST_MAX (INT64_C(1) << 40)

#define NOT_EXECUTED " (this file is read, not executed)"
#define BACKSLASH_EOL "a backslash at the end of a line would continue it; a value cannot span lines"

/*
 * The default for KSM_GUEST_COMM lives here, not on the heap, so that settings_init() cannot fail;
 * settings_done() and settings_copy() know not to free or duplicate it.
 */
static char default_guest_comm[] = DEFAULT_GUEST_COMM;
static char proxmox_guest_comm[] = PROXMOX_GUEST_COMM;
static char default_libvirt_uri[] = DEFAULT_LIBVIRT_URI;

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
} KeyInfo;

const char *const free_source_names[] = { "classic", "available", NULL };
const char *const committed_source_names[] = { "rss", "pss", "rss-minus-merged", NULL };
const char *const stop_mode_names[] = { "stop", "unmerge", NULL };
const char *const advisor_mode_names[] = { "none", "scan-time", NULL };
const char *const policy_names[] = { "classic", "adaptive", NULL };
const char *const defaults_names[] = { "classic", "proxmox", NULL };
/* Proxmox's script hands KSM_PS_METRIC to ps -o: pss, or rsz (rss is ps's other name for it). */
const char *const ps_metric_names[] = { "pss", "rsz", "rss", NULL };

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

static const KeyInfo keys[N_KEYS] = {
        [K_MONITOR_INTERVAL] = { "KSM_MONITOR_INTERVAL", KEY_INT, offsetof(Settings, monitor_interval),
                                 1, MONITOR_INTERVAL_MAX, "seconds" },
        [K_SLEEP_MSEC] = { "KSM_SLEEP_MSEC", KEY_INT, offsetof(Settings, sleep_msec), 0, 1000000, "ms" },
        [K_NPAGES_BOOST] = { "KSM_NPAGES_BOOST", KEY_INT, offsetof(Settings, npages_boost),
                             -NPAGES_LIMIT, NPAGES_LIMIT, "pages" },
        [K_NPAGES_DECAY] = { "KSM_NPAGES_DECAY", KEY_INT, offsetof(Settings, npages_decay),
                             -NPAGES_LIMIT, NPAGES_LIMIT, "pages" },
        [K_NPAGES_MIN] = { "KSM_NPAGES_MIN", KEY_INT, offsetof(Settings, npages_min), 0, NPAGES_LIMIT, "pages" },
        [K_NPAGES_MAX] = { "KSM_NPAGES_MAX", KEY_INT, offsetof(Settings, npages_max), 0, NPAGES_LIMIT, "pages" },
        [K_THRES_COEF] = { "KSM_THRES_COEF", KEY_INT, offsetof(Settings, thres_coef), 0, 100, "percent" },
        [K_THRES_CONST] = { "KSM_THRES_CONST", KEY_INT, offsetof(Settings, thres_const), 0, THRES_CONST_MAX, "kB" },
        [K_DEBUG] = { "DEBUG", KEY_FLAG, offsetof(Settings, debug) },
        [K_LOGFILE] = { "LOGFILE", KEY_PATH, offsetof(Settings, logfile) },
        [K_GUEST_COMM] = { "KSM_GUEST_COMM", KEY_REGEX, offsetof(Settings, guest_comm) },
        [K_GUEST_CMDLINE] = { "KSM_GUEST_CMDLINE", KEY_REGEX, offsetof(Settings, guest_cmdline) },
        [K_LIBVIRT_URI] = { "KSM_LIBVIRT_URI", KEY_STRING, offsetof(Settings, libvirt_uri) },
        [K_KVM_EVENTS] = { "KSM_KVM_EVENTS", KEY_BOOL, offsetof(Settings, kvm_events) },
        [K_EVENT_SETTLE_MSEC] = { "KSM_EVENT_SETTLE_MSEC", KEY_INT, offsetof(Settings, event_settle_msec), 0, 60000,
                                  "ms" },
        [K_FREE_MEMORY] = { "KSM_FREE_MEMORY", KEY_CHOICE, offsetof(Settings, free_source),
                            .choices = free_source_names },
        [K_COMMITTED] = { "KSM_COMMITTED", KEY_CHOICE, offsetof(Settings, committed_source),
                          .choices = committed_source_names },
        [K_CPU_BUDGET] = { "KSM_CPU_BUDGET", KEY_INT, offsetof(Settings, cpu_budget), 0, 100, "percent" },
        [K_STOP_MODE] = { "KSM_STOP_MODE", KEY_CHOICE, offsetof(Settings, stop_mode), .choices = stop_mode_names },
        [K_METRICS_FILE] = { "KSM_METRICS_FILE", KEY_PATH, offsetof(Settings, metrics_file) },
        [K_POLICY] = { "KSM_POLICY", KEY_CHOICE, offsetof(Settings, policy), .choices = policy_names },
        [K_ADAPTIVE_MAX_RATE] = { "KSM_ADAPTIVE_MAX_RATE", KEY_INT, offsetof(Settings, adaptive_max_rate), 100,
                                  100000000, "pages/s" },
        [K_ADAPTIVE_MIN_RATE] = { "KSM_ADAPTIVE_MIN_RATE", KEY_INT, offsetof(Settings, adaptive_min_rate), 1,
                                  100000000, "pages/s" },
        [K_ADAPTIVE_MAX_CPU] = { "KSM_ADAPTIVE_MAX_CPU", KEY_INT, offsetof(Settings, adaptive_max_cpu), 0, 100,
                                 "percent" },
        [K_ADVISOR] = { "KSM_ADVISOR", KEY_CHOICE, offsetof(Settings, advisor_mode), -1, 0, NULL,
                        advisor_mode_names },
        [K_ADVISOR_MAX_CPU] = { "KSM_ADVISOR_MAX_CPU", KEY_OPTINT, offsetof(Settings, advisor_max_cpu), 1, 100,
                                "percent" },
        [K_ADVISOR_MIN_PAGES] = { "KSM_ADVISOR_MIN_PAGES_TO_SCAN", KEY_OPTINT, offsetof(Settings, advisor_min_pages),
                                  1, NPAGES_LIMIT, "pages" },
        [K_ADVISOR_MAX_PAGES] = { "KSM_ADVISOR_MAX_PAGES_TO_SCAN", KEY_OPTINT, offsetof(Settings, advisor_max_pages),
                                  1, NPAGES_LIMIT, "pages" },
        [K_ADVISOR_TARGET_SCAN_TIME] = { "KSM_ADVISOR_TARGET_SCAN_TIME", KEY_OPTINT,
                                         offsetof(Settings, advisor_target_scan_time), 2, 86400, "seconds" },
        [K_SMART_SCAN] = { "KSM_SMART_SCAN", KEY_OPTBOOL, offsetof(Settings, smart_scan) },
        [K_USE_ZERO_PAGES] = { "KSM_USE_ZERO_PAGES", KEY_OPTBOOL, offsetof(Settings, use_zero_pages) },
        [K_MERGE_ACROSS_NODES] = { "KSM_MERGE_ACROSS_NODES", KEY_OPTBOOL, offsetof(Settings, merge_across_nodes) },
        [K_MAX_PAGE_SHARING] = { "KSM_MAX_PAGE_SHARING", KEY_OPTINT, offsetof(Settings, max_page_sharing), 2,
                                 NPAGES_LIMIT, "sharers" },
        /* The script took its pid file from the environment after sourcing the file, so a user may have set it. */
        [K_PIDFILE] = { "PIDFILE", KEY_IGNORED },
        [K_DEFAULTS] = { "KSM_DEFAULTS", KEY_CHOICE, offsetof(Settings, defaults), .choices = defaults_names },
        /* Proxmox VE's key, the default of KSM_COMMITTED: see settings_apply_defaults(). */
        [K_PS_METRIC] = { "KSM_PS_METRIC", KEY_CHOICE, offsetof(Settings, ps_metric), .choices = ps_metric_names },
};

/* Where a key got its value; file NULL for the built-in default. */
typedef struct Origin {
        char *file;
        unsigned line;
        unsigned seq; /* order of assignment across all files, to tell which of two came last */
} Origin;

typedef struct Loader {
        Settings settings;
        Origin origins[N_KEYS];
        unsigned seq;
        ConfigReport report;
        void *userdata;
        unsigned n_errors;
        int failure; /* -ENOMEM: stop and return it */

        /* The file being parsed, fed to inih line by line. */
        const char *file;
        const char *pos, *end;
        unsigned line;
        char *buf; /* the current line, without its CR and indentation */
        size_t buf_size;
        const char *value; /* in buf, just after '='; NULL when the line is not an assignment */
} Loader;

static int64_t *int_field(Settings *s, const KeyInfo *k) {
        return (int64_t *) ((char *) s + k->offset);
}

static char **string_field(Settings *s, const KeyInfo *k) {
        return (char **) ((char *) s + k->offset);
}

static void string_free(char *p) {
        if (p != default_guest_comm && p != proxmox_guest_comm && p != default_libvirt_uri)
                free(p);
}

static bool string_empty(const char *p) {
        return !p || !*p;
}

static bool is_set(const Origin *origins, Key k) {
        return origins && origins[k].file;
}

/*
 * Set the keys whose default KSM_DEFAULTS chooses, except those @origins says a file set (NULL: none).
 * classic: the original script's. proxmox: those of Proxmox VE's ksmtuned (ksm-control-daemon 1.5), whose
 * patches default KSM_SLEEP_MSEC to 100 and count guests with "ps -C kvm -o $KSM_PS_METRIC", pss by
 * default. KSM_PS_METRIC, when set, is KSM_COMMITTED's default in either mode (pss: pss; rsz, rss: rss).
 */
static void settings_apply_defaults(Settings *s, const Origin *origins) {
        bool proxmox = s->defaults == DEFAULTS_PROXMOX;

        if (!is_set(origins, K_SLEEP_MSEC))
                s->sleep_msec = proxmox ? 100 : 10;
        if (!is_set(origins, K_COMMITTED)) {
                if (s->ps_metric >= 0)
                        s->committed_source = s->ps_metric == PS_METRIC_PSS ? COMMITTED_PSS : COMMITTED_RSS;
                else
                        s->committed_source = proxmox ? COMMITTED_PSS : COMMITTED_RSS;
        }
        if (!is_set(origins, K_GUEST_COMM)) {
                string_free(s->guest_comm);
                s->guest_comm = proxmox ? proxmox_guest_comm : default_guest_comm;
        }
}

/**
 * settings_init() - the defaults: the original script's plus the Fedora/RHEL/Proxmox guest match, or,
 * built with -Ddefaults=proxmox, those of Proxmox VE's script (see settings_apply_defaults()).
 * @s: the settings to fill; whatever it held is overwritten, not freed.
 *
 * Cannot fail: nothing is allocated.
 */
void settings_init(Settings *s) {
        *s = (Settings) {
                .monitor_interval = 60,
                .npages_boost = 300,
                .npages_decay = -50,
                .npages_min = 64,
                .npages_max = 1250,
                .thres_coef = 20,
                .thres_const = 2048,
                .libvirt_uri = default_libvirt_uri,
                .kvm_events = true,
                .event_settle_msec = 2000,
                .adaptive_max_rate = 1000000,
                .adaptive_min_rate = 2000,
                .adaptive_max_cpu = 80,
                .advisor_mode = -1,
                .advisor_max_cpu = -1,
                .advisor_min_pages = -1,
                .advisor_max_pages = -1,
                .advisor_target_scan_time = -1,
                .smart_scan = -1,
                .use_zero_pages = -1,
                .merge_across_nodes = -1,
                .max_page_sharing = -1,
                .defaults = DEFAULTS_BUILTIN,
                .ps_metric = -1,
        };
        settings_apply_defaults(s, NULL);
}

/**
 * settings_done() - free the strings and leave @s empty (all zero).
 * @s: settings from settings_init(), config_load(), settings_copy(), or all zero.
 *
 * Safe to call again on the same struct.
 */
void settings_done(Settings *s) {
        string_free(s->logfile);
        string_free(s->guest_comm);
        string_free(s->guest_cmdline);
        string_free(s->libvirt_uri);
        string_free(s->metrics_file);
        *s = (Settings) {};
}

static int string_copy(const char *src, char **ret) {
        char *p;

        if (!src || src == default_guest_comm || src == proxmox_guest_comm) {
                *ret = (char *) src;
                return 0;
        }
        p = strdup(src);
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
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

        c.logfile = c.guest_comm = c.guest_cmdline = c.libvirt_uri = c.metrics_file = NULL;
        if (string_copy(src->logfile, &c.logfile) < 0 || string_copy(src->guest_comm, &c.guest_comm) < 0 ||
            string_copy(src->guest_cmdline, &c.guest_cmdline) < 0 || string_copy(src->libvirt_uri, &c.libvirt_uri) < 0 ||
            string_copy(src->metrics_file, &c.metrics_file) < 0) {
                settings_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static bool string_same(const char *a, const char *b) {
        if (string_empty(a) || string_empty(b))
                return string_empty(a) == string_empty(b);
        return streq(a, b);
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
        return a->monitor_interval == b->monitor_interval && a->sleep_msec == b->sleep_msec &&
               a->npages_boost == b->npages_boost && a->npages_decay == b->npages_decay &&
               a->npages_min == b->npages_min && a->npages_max == b->npages_max &&
               a->thres_coef == b->thres_coef && a->thres_const == b->thres_const && a->debug == b->debug &&
               string_same(a->logfile, b->logfile) && string_same(a->guest_comm, b->guest_comm) &&
               string_same(a->guest_cmdline, b->guest_cmdline) && string_same(a->libvirt_uri, b->libvirt_uri) &&
               a->kvm_events == b->kvm_events && a->event_settle_msec == b->event_settle_msec &&
               a->free_source == b->free_source && a->committed_source == b->committed_source &&
               a->cpu_budget == b->cpu_budget && a->stop_mode == b->stop_mode &&
               string_same(a->metrics_file, b->metrics_file) && a->advisor_mode == b->advisor_mode &&
               a->advisor_max_cpu == b->advisor_max_cpu && a->advisor_min_pages == b->advisor_min_pages &&
               a->advisor_max_pages == b->advisor_max_pages &&
               a->advisor_target_scan_time == b->advisor_target_scan_time && a->smart_scan == b->smart_scan &&
               a->use_zero_pages == b->use_zero_pages && a->merge_across_nodes == b->merge_across_nodes &&
               a->max_page_sharing == b->max_page_sharing && a->policy == b->policy &&
               a->adaptive_max_rate == b->adaptive_max_rate && a->adaptive_min_rate == b->adaptive_min_rate &&
               a->adaptive_max_cpu == b->adaptive_max_cpu;
}

static void loader_done(Loader *l) {
        settings_done(&l->settings);
        for (size_t i = 0; i < N_KEYS; i++)
                free(l->origins[i].file);
        free(l->buf);
}

static void loader_report(Loader *l, ConfigSeverity severity, const char *file, unsigned line, const char *format,
                          ...) _printf_(5, 6);

static void loader_report(Loader *l, ConfigSeverity severity, const char *file, unsigned line, const char *format,
                          ...) {
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int r;

        if (severity == CONFIG_ERROR)
                l->n_errors++;
        if (!l->report)
                return;

        va_start(ap, format);
        r = vasprintf(&message, format, ap);
        va_end(ap);
        if (r < 0) {
                message = NULL;
                l->failure = -ENOMEM;
                return;
        }
        l->report(l->userdata, severity, file, line, message);
}

/* A copy of @n bytes of @s fit for a log line: control characters as \xNN, the rest as written. */
static char *escape(const char *s, size_t n) {
        char *e, *p;

        e = malloc(n * 4 + 1);
        if (!e)
                return NULL;
        p = e;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c < 0x20 || c == 0x7f)
                        p += sprintf(p, "\\x%02x", c);
                else
                        *p++ = (char) c;
        }
        *p = '\0';
        return e;
}

/* Report a problem with one assignment as "KEY=VALUE: reason", VALUE exactly as written. */
static void report_value(Loader *l, ConfigSeverity severity, const char *key, const char *raw, size_t raw_len,
                         const char *format, ...) _printf_(6, 7);

static void report_value(Loader *l, ConfigSeverity severity, const char *key, const char *raw, size_t raw_len,
                         const char *format, ...) {
        _cleanup_free_ char *reason = NULL, *shown = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&reason, format, ap);
        va_end(ap);
        if (r < 0) {
                reason = NULL;
                if (severity == CONFIG_ERROR)
                        l->n_errors++;
                l->failure = -ENOMEM;
                return;
        }
        shown = escape(raw, raw_len);
        if (!shown) {
                if (severity == CONFIG_ERROR)
                        l->n_errors++;
                l->failure = -ENOMEM;
                return;
        }
        loader_report(l, severity, l->file, l->line, "%s=%s: %s", key, shown, reason);
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_name_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || is_digit(c);
}

/* What a shell would make of the '$' at @p, or NULL when it keeps it as a literal '$'. */
static const char *dollar_expansion(const char *p, bool in_double_quotes) {
        char c = p[1];

        if (c == '(' && p[2] == '(')
                return "arithmetic expansion $((...)) needs a shell" NOT_EXECUTED;
        if (c == '(')
                return "command substitution $(...) needs a shell" NOT_EXECUTED;
        if (c == '[')
                return "arithmetic expansion $[...] needs a shell" NOT_EXECUTED;
        if (c == '{' || is_name_char(c) || (c && strchr("@*#?!$-", c)))
                return "variable expansion needs a shell" NOT_EXECUTED;
        if (!in_double_quotes && (c == '\'' || c == '"'))
                return "$'...' and $\"...\" quoting need a shell" NOT_EXECUTED;
        return NULL;
}

/* Why an unquoted @c cannot be part of a value, or NULL when it can. */
static const char *unquoted_problem(char c) {
        switch (c) {
        case '`':
                return "command substitution `...` needs a shell" NOT_EXECUTED;
        case ';':
        case '&':
        case '|':
                return "an unquoted ';', '&' or '|' would start another command" NOT_EXECUTED;
        case '<':
        case '>':
                return "redirection needs a shell" NOT_EXECUTED;
        case '(':
        case ')':
                return "an unquoted '(' or ')' is a shell syntax error; quote the value";
        default:
                return NULL;
        }
}

/**
 * lex_value() - the value of an assignment, as bash would have assigned it, from the text after '='.
 * @s: the text after '=', to the end of the line.
 * @ret_value: the value, quotes removed; the caller frees it.
 * @ret_raw: where the value starts in @s, leading blanks skipped.
 * @ret_raw_len: how long the value is as written (without a trailing comment); on failure the rest of
 *               the line, so a message can show it.
 * @ret_reason: on failure, why; a static string.
 *
 * One shell word: unquoted text, '...' and "..." in any sequence, backslash escapes. Whatever would need
 * a shell to run it (expansions, command substitution, a second command, a redirection) is refused:
 * the file is never executed. Blanks and a '#' comment may follow the word, nothing else. Unlike a
 * shell, blanks may separate '=' from the value.
 *
 * Return: 0; -EINVAL with @ret_reason and @ret_raw_len set; -ENOMEM.
 */
static int lex_value(const char *s, char **ret_value, const char **ret_raw, size_t *ret_raw_len,
                     const char **ret_reason) {
        _cleanup_free_ char *v = NULL;
        const char *p = s, *raw, *reason = NULL;
        bool tilde_expands = true;
        size_t n = 0, len;

        while (is_blank(*p))
                p++;
        raw = p;
        *ret_raw = raw;

        v = malloc(strlen(p) + 1);
        if (!v)
                return -ENOMEM;

        /* "KEY= # comment" is an empty value; "KEY=#x" is "#x", as in the shell. */
        if (p > s && *p == '#') {
                *ret_raw_len = 0;
                goto done;
        }

        while (*p && !is_blank(*p)) {
                char c = *p;

                if (c == '~' && tilde_expands) {
                        reason = "tilde expansion needs a shell; write the full path";
                        goto fail;
                }
                tilde_expands = c == ':'; /* as in PATH=~/a:~/b */

                if (c == '\'') {
                        const char *q = strchr(p + 1, '\'');

                        if (!q) {
                                reason = "unbalanced single quote (a value cannot span lines)";
                                goto fail;
                        }
                        memcpy(v + n, p + 1, (size_t) (q - p - 1));
                        n += (size_t) (q - p - 1);
                        p = q + 1;
                } else if (c == '"') {
                        for (p++;; p++) {
                                if (*p == '\0') {
                                        reason = "unbalanced double quote (a value cannot span lines)";
                                        goto fail;
                                }
                                if (*p == '"')
                                        break;
                                if (*p == '`') {
                                        reason = unquoted_problem('`');
                                        goto fail;
                                }
                                if (*p == '$' && (reason = dollar_expansion(p, true)))
                                        goto fail;
                                /* Inside double quotes, a backslash only escapes these. */
                                if (*p == '\\' && p[1] && strchr("$`\"\\", p[1]))
                                        p++;
                                v[n++] = *p;
                        }
                        p++;
                } else if (c == '\\') {
                        if (p[1] == '\0') {
                                reason = BACKSLASH_EOL;
                                goto fail;
                        }
                        v[n++] = p[1];
                        p += 2;
                } else if (c == '$') {
                        reason = dollar_expansion(p, false);
                        if (reason)
                                goto fail;
                        v[n++] = *p++;
                } else {
                        reason = unquoted_problem(c);
                        if (reason)
                                goto fail;
                        v[n++] = *p++;
                }
        }
        len = (size_t) (p - raw);

        while (is_blank(*p))
                p++;
        if (*p == '\\' && p[1] == '\0') {
                reason = BACKSLASH_EOL;
                goto fail;
        }
        if (*p != '\0' && *p != '#') {
                size_t name = 0;

                while (is_name_char(p[name]))
                        name++;
                reason = unquoted_problem(*p);
                if (!reason && name > 0 && !is_digit(*p) && p[name] == '=')
                        reason = "only one assignment per line is supported";
                else if (!reason)
                        reason = "text after the value would be run as a command" NOT_EXECUTED
                                 "; quote the value, or start a comment with ' #'";
                goto fail;
        }
        *ret_raw_len = len;
done:
        v[n] = '\0';
        *ret_value = TAKE_PTR(v);
        return 0;

fail:
        len = strlen(raw);
        while (len > 0 && is_blank(raw[len - 1]))
                len--;
        *ret_raw_len = len;
        *ret_reason = reason;
        return -EINVAL;
}

static int parse_decimal(const char *digits, size_t n, int base, uint64_t *ret) {
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned d = (unsigned) (digits[i] - '0');

                if (d >= (unsigned) base || v > (UINT64_MAX - d) / (uint64_t) base)
                        return -ERANGE;
                v = v * (uint64_t) base + d;
        }
        *ret = v;
        return 0;
}

/*
 * Explain a number with a leading zero: bash's $[...] arithmetic, which the original used for most keys,
 * read it as octal, while test(1), which it used for others, read it as decimal.
 */
static void leading_zero_reason(const char *v, char *buf, size_t size) {
        const char *sign = *v == '-' ? "-" : "", *digits = v + (*v == '-');
        size_t n = strlen(digits);
        uint64_t dec, oct;

        if (parse_decimal(digits, n, 10, &dec) < 0) {
                snprintf(buf, size, "leading zero: write the number without it");
                return;
        }
        if (strspn(digits, "01234567") != n)
                snprintf(buf, size,
                         "leading zero: bash arithmetic rejected %s as an invalid octal number; write %s%" PRIu64, v,
                         sign, dec);
        else if (parse_decimal(digits, n, 8, &oct) >= 0 && oct != dec)
                snprintf(buf, size, "leading zero: bash arithmetic read %s as octal %s%" PRIu64 "; write %s%" PRIu64
                         " or %s%" PRIu64, v, sign, oct, sign, oct, sign, dec);
        else
                snprintf(buf, size, "leading zero (octal in bash arithmetic); write %s%" PRIu64, sign, dec);
}

/* A whole decimal integer within [k->min, k->max]; on failure, why in @reason. */
static int parse_int(const KeyInfo *k, const char *v, int64_t *ret, char *reason, size_t size) {
        const char *digits = v + (*v == '-');
        size_t n = strspn(digits, "0123456789");
        uint64_t mag;
        int64_t x;

        if (n == 0 || digits[n] != '\0') {
                snprintf(reason, size, "not an integer");
                return -EINVAL;
        }
        if (n > 1 && digits[0] == '0') {
                leading_zero_reason(v, reason, size);
                return -EINVAL;
        }
        if (parse_decimal(digits, n, 10, &mag) < 0 || mag > (uint64_t) INT64_MAX)
                goto range;
        x = *v == '-' ? -(int64_t) mag : (int64_t) mag;
        if (x < k->min || x > k->max)
                goto range;
        *ret = x;
        return 0;

range:
        snprintf(reason, size, "out of range (%" PRIi64 "..%" PRIi64 " %s)", k->min, k->max, k->unit);
        return -ERANGE;
}

/* 1, 0, or -1 when @v is none of 1/0, yes/no, true/false, on/off (any case). */
static int parse_bool(const char *v) {
        static const char *const yes[] = { "1", "yes", "true", "on" }, *const no[] = { "0", "no", "false", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0)
                        return 1;
                if (strcasecmp(v, no[i]) == 0)
                        return 0;
        }
        return -1;
}

static bool is_off_word(const char *v) {
        static const char *const words[] = { "0", "n", "no", "false", "off" };

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcasecmp(v, words[i]) == 0)
                        return true;
        return false;
}

/* Optimal string alignment distance, case-insensitive, for "did you mean" on unknown keys. */
static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), d[3][32];
        size_t *prev2 = d[0], *prev = d[1], *cur = d[2];

        if (la >= 32 || lb >= 32)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                prev[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t *t;

                cur[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = toupper((unsigned char) a[i - 1]) != toupper((unsigned char) b[j - 1]);
                        size_t m = prev[j] + 1;

                        if (cur[j - 1] + 1 < m)
                                m = cur[j - 1] + 1;
                        if (prev[j - 1] + cost < m)
                                m = prev[j - 1] + cost;
                        if (i > 1 && j > 1 && toupper((unsigned char) a[i - 1]) == toupper((unsigned char) b[j - 2]) &&
                            toupper((unsigned char) a[i - 2]) == toupper((unsigned char) b[j - 1]) &&
                            prev2[j - 2] + 1 < m)
                                m = prev2[j - 2] + 1;
                        cur[j] = m;
                }
                t = prev2;
                prev2 = prev;
                prev = cur;
                cur = t;
        }
        return prev[lb];
}

static const char *closest_key(const char *name) {
        const char *best = NULL;
        size_t best_d = 4; /* suggest nothing further than 3 edits away */

        for (size_t i = 0; i < N_KEYS; i++) {
                size_t d = edit_distance(name, keys[i].name);

                if (d < best_d) {
                        best_d = d;
                        best = keys[i].name;
                }
        }
        return best;
}

static int origin_set(Loader *l, size_t k) {
        char *f;

        f = strdup(l->file);
        if (!f)
                return -ENOMEM;
        free(l->origins[k].file);
        l->origins[k] = (Origin) { .file = f, .line = l->line, .seq = ++l->seq };
        return 0;
}

/* After an empty value: as if the key were not set, so that KSM_DEFAULTS still gives its default. */
static void origin_clear(Loader *l, size_t k) {
        free(l->origins[k].file);
        l->origins[k] = (Origin) {};
}

/* The defaults of KSM_DEFAULTS=@defaults. */
static void settings_defaults(int64_t defaults, Settings *ret) {
        settings_init(ret);
        ret->defaults = defaults;
        settings_apply_defaults(ret, NULL);
}

/* Apply one assignment to l->settings, reporting what is wrong with it. */
static int loader_assign(Loader *l, const char *name, const char *text) {
        _cleanup_free_ char *value = NULL;
        const char *raw, *reason;
        const KeyInfo *k = NULL;
        char why[256];
        size_t raw_len, ki;
        bool unset = false;
        int r;

        for (ki = 0; ki < N_KEYS; ki++)
                if (streq(keys[ki].name, name)) {
                        k = &keys[ki];
                        break;
                }
        if (!k) {
                const char *guess = closest_key(name);

                if (guess)
                        loader_report(l, CONFIG_WARNING, l->file, l->line,
                                      "unknown key %s, ignoring (did you mean %s?)", name, guess);
                else
                        loader_report(l, CONFIG_WARNING, l->file, l->line, "unknown key %s, ignoring", name);
                return 0;
        }
        if (k->type == KEY_IGNORED) {
                loader_report(l, CONFIG_WARNING, l->file, l->line,
                              "%s is ignored: ksmtuned runs as a systemd service and writes no pid file", name);
                return 0;
        }

        r = lex_value(text, &value, &raw, &raw_len, &reason);
        if (r == -EINVAL) {
                report_value(l, CONFIG_ERROR, name, raw, raw_len, "%s", reason);
                return 0;
        }
        if (r < 0)
                return r;

        switch (k->type) {
        case KEY_INT: {
                int64_t x;

                if (*value == '\0') {
                        /*
                         * The script's ${KEY:-default}: an empty value means the default, which may be
                         * KSM_DEFAULTS's, maybe set further on: loader_apply_defaults() sets it.
                         */
                        Settings c, p;

                        settings_defaults(DEFAULTS_CLASSIC, &c);
                        settings_defaults(DEFAULTS_PROXMOX, &p);
                        x = *int_field(l->settings.defaults == DEFAULTS_PROXMOX ? &p : &c, k);
                        unset = true;
                        if (*int_field(&c, k) != *int_field(&p, k))
                                report_value(l, CONFIG_WARNING, name, raw, raw_len,
                                             "empty value, using the default of KSM_DEFAULTS (%" PRIi64
                                             " for classic, %" PRIi64 " for proxmox)",
                                             *int_field(&c, k), *int_field(&p, k));
                        else
                                report_value(l, CONFIG_WARNING, name, raw, raw_len,
                                             "empty value, using the default %" PRIi64, x);
                } else if (parse_int(k, value, &x, why, sizeof(why)) < 0) {
                        report_value(l, CONFIG_ERROR, name, raw, raw_len, "%s", why);
                        return 0;
                }
                *int_field(&l->settings, k) = x;
                break;
        }
        case KEY_FLAG:
                if (is_off_word(value))
                        report_value(l, CONFIG_WARNING, name, raw, raw_len,
                                     "any non-empty value turns %s on, as in the original; "
                                     "to turn it off, write %s= or remove the line",
                                     name, name);
                l->settings.debug = *value != '\0';
                break;
        case KEY_PATH:
                if (*value != '\0' && *value != '/') {
                        report_value(l, CONFIG_ERROR, name, raw, raw_len, "not an absolute path");
                        return 0;
                }
                if (strlen(value) >= PATH_MAX) {
                        report_value(l, CONFIG_ERROR, name, raw, raw_len, "path too long");
                        return 0;
                }
                string_free(*string_field(&l->settings, k));
                *string_field(&l->settings, k) = *value ? TAKE_PTR(value) : NULL;
                break;
        case KEY_REGEX:
                if (*value != '\0') {
                        regex_t re;
                        int e;

                        e = regcomp(&re, value, REG_EXTENDED | REG_NOSUB);
                        if (e != 0) {
                                regerror(e, &re, why, sizeof(why));
                                report_value(l, CONFIG_ERROR, name, raw, raw_len,
                                             "invalid regular expression: %s", why);
                                return 0;
                        }
                        regfree(&re);
                }
                string_free(*string_field(&l->settings, k));
                *string_field(&l->settings, k) = *value ? TAKE_PTR(value) : NULL;
                break;
        case KEY_STRING:
                string_free(*string_field(&l->settings, k));
                *string_field(&l->settings, k) = *value ? TAKE_PTR(value) : NULL;
                break;
        case KEY_CHOICE: {
                int64_t c = -1;

                if (*value == '\0') {
                        Settings d;

                        settings_init(&d);
                        *int_field(&l->settings, k) = *int_field(&d, k);
                        unset = true;
                        break;
                }
                for (int64_t i = 0; k->choices[i]; i++)
                        if (streq(value, k->choices[i]))
                                c = i;
                if (c < 0) {
                        char list[128] = "";

                        for (size_t i = 0; k->choices[i]; i++)
                                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                                         k->choices[i]);
                        report_value(l, CONFIG_ERROR, name, raw, raw_len, "not one of: %s", list);
                        return 0;
                }
                *int_field(&l->settings, k) = c;
                break;
        }
        case KEY_OPTINT: {
                int64_t x = -1;

                if (*value != '\0' && parse_int(k, value, &x, why, sizeof(why)) < 0) {
                        report_value(l, CONFIG_ERROR, name, raw, raw_len, "%s", why);
                        return 0;
                }
                *int_field(&l->settings, k) = x;
                break;
        }
        case KEY_OPTBOOL: {
                int b = *value == '\0' ? -1 : parse_bool(value);

                if (*value != '\0' && b < 0) {
                        report_value(l, CONFIG_ERROR, name, raw, raw_len, "not a boolean: write 1 or 0");
                        return 0;
                }
                *int_field(&l->settings, k) = b;
                break;
        }
        case KEY_BOOL: {
                int b = -1;

                if (*value == '\0') {
                        Settings d;

                        settings_init(&d);
                        b = *(bool *) ((char *) &d + k->offset);
                        report_value(l, CONFIG_WARNING, name, raw, raw_len, "empty value, using the default %d", b);
                }
                if (b < 0)
                        b = parse_bool(value);
                if (b < 0) {
                        report_value(l, CONFIG_ERROR, name, raw, raw_len, "not a boolean: write 1 or 0");
                        return 0;
                }
                *(bool *) ((char *) &l->settings + k->offset) = b;
                break;
        }
        case KEY_IGNORED:
                break;
        }
        if (unset) {
                origin_clear(l, ki);
                return 0;
        }
        return origin_set(l, ki);
}

/* inih calls this right after loader_ini_reader() returned the line: l->line and l->value are that line's. */
#if INI_HANDLER_LINENO
static int loader_ini_handler(void *userdata, const char *section, const char *name, const char *value, int lineno) {
#else
static int loader_ini_handler(void *userdata, const char *section, const char *name, const char *value) {
#endif
        Loader *l = userdata;
        int r;

        /* inih's value is not used: it cuts at " ;" and knows nothing of quotes; lex_value() does it right. */
        if (l->failure < 0 || !l->value)
                return 1;
        r = loader_assign(l, name, l->value);
        if (r < 0)
                l->failure = r;
        return 1;
}

/*
 * loader_ini_reader() - hand inih the next line, made safe for it.
 *
 * inih would take an indented line as the continuation of the previous value, split a line longer than
 * its buffer into two lines, and treat ';' as a comment. So: comments and blank lines reach it empty
 * (of any length); indentation, a trailing CR and "export " are removed; a line that is not KEY=VALUE is
 * reported here and reaches it empty; an assignment that does not fit inih's buffer is an error rather
 * than two lines. The handler then lexes the value from our copy of the line.
 */
static char *loader_ini_reader(char *str, int num, void *stream) {
        Loader *l = stream;
        const char *s, *nl;
        char *p, *q;
        size_t len;

        if (l->pos >= l->end || l->failure < 0 || num < 2)
                return NULL;
        s = l->pos;
        nl = memchr(s, '\n', (size_t) (l->end - s));
        len = (size_t) ((nl ? nl : l->end) - s);
        l->pos = nl ? nl + 1 : l->end;
        l->line++;
        l->value = NULL;
        str[0] = '\0';

        if (len > 0 && s[len - 1] == '\r')
                len--;
        if (l->line == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
                s += 3;
                len -= 3;
        }
        if (memchr(s, '\0', len)) {
                loader_report(l, CONFIG_ERROR, l->file, l->line, "NUL byte in line");
                return str;
        }
        while (len > 0 && is_blank(*s)) {
                s++;
                len--;
        }
        if (len == 0 || *s == '#')
                return str;

        if (len + 1 > l->buf_size) {
                char *b = realloc(l->buf, len + 1);

                if (!b) {
                        l->failure = -ENOMEM;
                        return NULL;
                }
                l->buf = b;
                l->buf_size = len + 1;
        }
        memcpy(l->buf, s, len);
        l->buf[len] = '\0';

        p = l->buf;
        if (strncmp(p, "export", 6) == 0 && is_blank(p[6]))
                for (p += 6; is_blank(*p); p++)
                        ;
        /* A shell variable name: ASCII, whatever the locale. */
        q = p;
        if (!is_digit(*q))
                while (is_name_char(*q))
                        q++;
        if (q > p)
                while (is_blank(*q))
                        q++;
        if (q == p || *q != '=') {
                _cleanup_free_ char *shown = escape(l->buf, len > 60 ? 60 : len);

                if (!shown) {
                        l->failure = -ENOMEM;
                        return NULL;
                }
                loader_report(l, CONFIG_ERROR, l->file, l->line, "not a KEY=VALUE assignment: %s%s", shown,
                              len > 60 ? "..." : "");
                return str;
        }

        len = strlen(p);
        if (len > (size_t) num - 2) { /* room for '\n' and NUL */
                loader_report(l, CONFIG_ERROR, l->file, l->line, "line too long (%zu characters, at most %d)", len,
                              num - 2);
                return str;
        }
        l->value = q + 1;
        memcpy(str, p, len);
        /* A line that ends in '\n' is whole to every inih build, including those that realloc. */
        str[len] = '\n';
        str[len + 1] = '\0';
        return str;
}

static int loader_parse(Loader *l, const char *file, const char *text, size_t size) {
        int r;

        if (size > CONFIG_FILE_SIZE_MAX) {
                loader_report(l, CONFIG_ERROR, file, 0, "too large (more than %d bytes)", CONFIG_FILE_SIZE_MAX);
                return l->failure;
        }
        l->file = file;
        l->pos = text;
        l->end = text + size;
        l->line = 0;
        l->value = NULL;

        r = ini_parse_stream(loader_ini_reader, l, loader_ini_handler, l);
        if (l->failure < 0)
                return l->failure;
        if (r == -2)
                return -ENOMEM;
        if (r != 0) /* our reader hands inih nothing it can object to; in case a build of it does */
                loader_report(l, CONFIG_ERROR, file, r > 0 ? (unsigned) r : 0, "syntax error");
        return l->failure;
}

typedef enum Missing {
        MISSING_OK,   /* the main file: the defaults apply */
        MISSING_WARN, /* a drop-in that readdir() listed: a dangling symbolic link */
} Missing;

/* Read and parse one file. */
static int loader_load_file(Loader *l, const char *path, Missing missing) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT && missing == MISSING_OK)
                        return 0;
                if (errno == ENOENT && missing == MISSING_WARN) {
                        loader_report(l, CONFIG_WARNING, path, 0, "dangling symbolic link, ignoring");
                        return l->failure;
                }
                loader_report(l, CONFIG_ERROR, path, 0, "cannot open: %s", strerror(errno));
                return l->failure;
        }
        if (fstat(fd, &st) < 0) {
                loader_report(l, CONFIG_ERROR, path, 0, "cannot stat: %s", strerror(errno));
                return l->failure;
        }
        if (S_ISDIR(st.st_mode)) {
                loader_report(l, CONFIG_ERROR, path, 0, "is a directory, not a file");
                return l->failure;
        }
        /* A character device is allowed so that a link to /dev/null can mask a file. */
        if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
                loader_report(l, CONFIG_ERROR, path, 0, "not a regular file");
                return l->failure;
        }

        buf = malloc(CONFIG_FILE_SIZE_MAX + 2);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, CONFIG_FILE_SIZE_MAX + 1 - size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        loader_report(l, CONFIG_ERROR, path, 0, "cannot read: %s", strerror(errno));
                        return l->failure;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > CONFIG_FILE_SIZE_MAX)
                        break;
        }
        return loader_parse(l, path, buf, size);
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool is_dropin_name(const char *name) {
        size_t n = strlen(name);

        return name[0] != '.' && n > 5 && streq(name + n - 5, ".conf");
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* The drop-ins of @dir, *.conf but not hidden, in strcmp() order: the order of systemd's drop-ins. */
static int loader_load_dropins(Loader *l, const char *dir) {
        _cleanup_closedir_ DIR *d = NULL;
        char **names = NULL;
        size_t n = 0, alloc = 0;
        struct dirent *de;
        int r = 0;

        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT)
                        return 0;
                loader_report(l, CONFIG_ERROR, dir, 0, "cannot open drop-in directory: %s", strerror(errno));
                return l->failure;
        }
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0) {
                                loader_report(l, CONFIG_ERROR, dir, 0, "cannot read drop-in directory: %s",
                                              strerror(errno));
                                r = l->failure;
                                goto finish;
                        }
                        break;
                }
                if (!is_dropin_name(de->d_name))
                        continue;
                if (n == alloc) {
                        size_t na = alloc ? alloc * 2 : 16;
                        char **nv = reallocarray(names, na, sizeof(char *));

                        if (!nv) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        names = nv;
                        alloc = na;
                }
                if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        goto finish;
                }
                n++;
        }
        if (n > 0)
                qsort(names, n, sizeof(char *), compare_names);
        for (size_t i = 0; i < n; i++) {
                r = loader_load_file(l, names[i], MISSING_WARN);
                if (r < 0)
                        goto finish;
        }
        r = 0;
finish:
        strv_free(names, n);
        return r;
}

static void format_origin(const Origin *o, char *buf, size_t size) {
        if (o->file)
                snprintf(buf, size, "set at %s:%u", o->file, o->line);
        else
                snprintf(buf, size, "the default");
}

/* The later-assigned of two keys: where a problem between them is reported. */
static const Origin *later_origin(const Loader *l, size_t a, size_t b) {
        return l->origins[a].seq >= l->origins[b].seq ? &l->origins[a] : &l->origins[b];
}

/* A lower bound above its upper bound: reported where the later of the two was set. */
static void check_bounds(Loader *l, Key lo, Key hi) {
        int64_t a_v = *int_field(&l->settings, &keys[lo]), b_v = *int_field(&l->settings, &keys[hi]);
        const Origin *at;
        char a[PATH_MAX + 32], b[PATH_MAX + 32];

        if (a_v <= b_v)
                return;
        at = later_origin(l, lo, hi);
        format_origin(&l->origins[lo], a, sizeof(a));
        format_origin(&l->origins[hi], b, sizeof(b));
        loader_report(l, CONFIG_ERROR, at->file, at->line, "%s=%" PRIi64 " (%s) is greater than %s=%" PRIi64 " (%s)",
                      keys[lo].name, a_v, a, keys[hi].name, b_v, b);
}

/* Checks that involve more than one key, after every file is read. */
static void loader_check(Loader *l) {
        const Settings *s = &l->settings;

        check_bounds(l, K_NPAGES_MIN, K_NPAGES_MAX);
        check_bounds(l, K_ADAPTIVE_MIN_RATE, K_ADAPTIVE_MAX_RATE);
        if (string_empty(s->guest_comm) && string_empty(s->guest_cmdline)) {
                const Origin *at = later_origin(l, K_GUEST_COMM, K_GUEST_CMDLINE);

                loader_report(l, CONFIG_WARNING, at->file, at->line,
                              "KSM_GUEST_COMM and KSM_GUEST_CMDLINE are both empty: no process counts as a guest");
        }
}

/*
 * Once every file is read, KSM_DEFAULTS and KSM_PS_METRIC give the defaults of the keys that no file set,
 * wherever they were assigned. KSM_COMMITTED, when set, wins over KSM_PS_METRIC.
 */
static void loader_apply_defaults(Loader *l) {
        Settings *s = &l->settings;

        if (s->ps_metric >= 0 && is_set(l->origins, K_COMMITTED) &&
            s->committed_source != (s->ps_metric == PS_METRIC_PSS ? COMMITTED_PSS : COMMITTED_RSS)) {
                const Origin *at = later_origin(l, K_COMMITTED, K_PS_METRIC);
                char a[PATH_MAX + 32], b[PATH_MAX + 32];

                format_origin(&l->origins[K_COMMITTED], a, sizeof(a));
                format_origin(&l->origins[K_PS_METRIC], b, sizeof(b));
                loader_report(l, CONFIG_WARNING, at->file, at->line,
                              "KSM_COMMITTED=%s (%s) wins over KSM_PS_METRIC=%s (%s)",
                              committed_source_names[s->committed_source], a, ps_metric_names[s->ps_metric], b);
        }
        settings_apply_defaults(s, l->origins);
}

static int loader_finish(Loader *l, Settings *ret) {
        if (l->failure < 0)
                return l->failure;
        loader_apply_defaults(l);
        loader_check(l);
        if (l->failure < 0)
                return l->failure;
        if (l->n_errors > 0)
                return -EINVAL;
        *ret = l->settings;
        l->settings = (Settings) {};
        return 0;
}

/**
 * config_load() - read the configuration: the defaults, then @path, then @dropin_dir/\*.conf.
 * @path: the main file, normally /etc/ksmtuned.conf; it may be missing (then the defaults apply).
 * @dropin_dir: NULL, or a directory whose *.conf files are read after @path in strcmp() order, a later
 *              assignment winning; it may be missing. Hidden files and other names are ignored.
 * @ret: the settings; overwritten (not freed) on success, untouched on failure, so that a caller
 *       reloading keeps the running settings.
 * @report: called for every problem, warnings included; may be NULL.
 * @userdata: passed to @report.
 *
 * Every file is read to the end and every problem reported before the load fails.
 *
 * Return: 0; -EINVAL when any error was reported; -ENOMEM.
 */
int config_load(const char *path, const char *dropin_dir, Settings *ret, ConfigReport report, void *userdata) {
        Loader l = { .report = report, .userdata = userdata };
        int r;

        settings_init(&l.settings);
        r = loader_load_file(&l, path, MISSING_OK);
        if (r >= 0 && dropin_dir)
                r = loader_load_dropins(&l, dropin_dir);
        if (r >= 0)
                r = loader_finish(&l, ret);
        loader_done(&l);
        return r;
}

/**
 * config_load_string() - like config_load(), from one text instead of files.
 * @text: the contents of a configuration file.
 * @name: the file name to report problems against; NULL for "(string)".
 * @ret: as for config_load().
 * @report: as for config_load().
 * @userdata: passed to @report.
 *
 * Return: 0; -EINVAL when any error was reported; -ENOMEM.
 */
int config_load_string(const char *text, const char *name, Settings *ret, ConfigReport report, void *userdata) {
        Loader l = { .report = report, .userdata = userdata };
        int r;

        settings_init(&l.settings);
        r = loader_parse(&l, name ?: "(string)", text, strlen(text));
        if (r >= 0)
                r = loader_finish(&l, ret);
        loader_done(&l);
        return r;
}
