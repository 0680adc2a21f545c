/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading /etc/ksmtuned.conf and its drop-ins: the shell's KEY=VALUE lines, read and never executed. */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config-keys.h"
#include "config-lex.h"
#include "config.h"
#include "util.h"

/* A year: long enough for anyone who wants ksmtuned to act only on SIGUSR1. */
#define MONITOR_INTERVAL_MAX INT64_C(31536000)
#define NPAGES_LIMIT         INT64_C(1000000000)
/* 1 PiB in kB. */
#define THRES_CONST_MAX (INT64_C(1) << 40)
/* Characters of an assignment line, not counting its indentation. */
#define CONFIG_LINE_MAX 198

/*
 * The defaults of the string keys live here, not on the heap, so that settings_init() cannot fail;
 * settings_done() and settings_copy() know not to free or duplicate them.
 */
static char default_guest_comm[] = DEFAULT_GUEST_COMM;
static char default_libvirt_uri[] = DEFAULT_LIBVIRT_URI;

const char *const free_source_names[] = { "classic", "available", NULL };
const char *const committed_source_names[] = { "rss", "pss", "rss-minus-merged", NULL };
const char *const stop_mode_names[] = { "stop", "unmerge", NULL };
const char *const advisor_mode_names[] = { "none", "scan-time", NULL };
const char *const policy_names[] = { "classic", "adaptive", NULL };

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
        N_KEYS,
} Key;

const KeyInfo config_keys[N_KEYS] = {
        [K_MONITOR_INTERVAL] = { "KSM_MONITOR_INTERVAL", KEY_INT, offsetof(Settings, monitor_interval), 1,
                                 MONITOR_INTERVAL_MAX, "seconds", .def = 60 },
        [K_SLEEP_MSEC] = { "KSM_SLEEP_MSEC", KEY_INT, offsetof(Settings, sleep_msec), 0, 1000000, "ms", .def = 10 },
        [K_NPAGES_BOOST] = { "KSM_NPAGES_BOOST", KEY_INT, offsetof(Settings, npages_boost), -NPAGES_LIMIT, NPAGES_LIMIT,
                             "pages", .def = 300 },
        [K_NPAGES_DECAY] = { "KSM_NPAGES_DECAY", KEY_INT, offsetof(Settings, npages_decay), -NPAGES_LIMIT, NPAGES_LIMIT,
                             "pages", .def = -50 },
        [K_NPAGES_MIN] = { "KSM_NPAGES_MIN", KEY_INT, offsetof(Settings, npages_min), 0, NPAGES_LIMIT, "pages",
                           .def = 64 },
        [K_NPAGES_MAX] = { "KSM_NPAGES_MAX", KEY_INT, offsetof(Settings, npages_max), 0, NPAGES_LIMIT, "pages",
                           .def = 1250 },
        [K_THRES_COEF] = { "KSM_THRES_COEF", KEY_INT, offsetof(Settings, thres_coef), 0, 100, "percent", .def = 20 },
        [K_THRES_CONST] = { "KSM_THRES_CONST", KEY_INT, offsetof(Settings, thres_const), 0, THRES_CONST_MAX, "kB",
                            .def = 2048 },
        [K_DEBUG] = { "DEBUG", KEY_FLAG, offsetof(Settings, debug) },
        [K_LOGFILE] = { "LOGFILE", KEY_PATH, offsetof(Settings, logfile) },
        [K_GUEST_COMM] = { "KSM_GUEST_COMM", KEY_REGEX, offsetof(Settings, guest_comm),
                           .def_string = default_guest_comm },
        [K_GUEST_CMDLINE] = { "KSM_GUEST_CMDLINE", KEY_REGEX, offsetof(Settings, guest_cmdline) },
        [K_LIBVIRT_URI] = { "KSM_LIBVIRT_URI", KEY_STRING, offsetof(Settings, libvirt_uri),
                            .def_string = default_libvirt_uri },
        [K_KVM_EVENTS] = { "KSM_KVM_EVENTS", KEY_BOOL, offsetof(Settings, kvm_events), .def = true },
        [K_EVENT_SETTLE_MSEC] = { "KSM_EVENT_SETTLE_MSEC", KEY_INT, offsetof(Settings, event_settle_msec), 0, 60000,
                                  "ms", .def = 2000 },
        [K_FREE_MEMORY] = { "KSM_FREE_MEMORY", KEY_CHOICE, offsetof(Settings, free_source),
                            .choices = free_source_names },
        [K_COMMITTED] = { "KSM_COMMITTED", KEY_CHOICE, offsetof(Settings, committed_source),
                          .choices = committed_source_names },
        [K_CPU_BUDGET] = { "KSM_CPU_BUDGET", KEY_INT, offsetof(Settings, cpu_budget), 0, 100, "percent" },
        [K_STOP_MODE] = { "KSM_STOP_MODE", KEY_CHOICE, offsetof(Settings, stop_mode), .choices = stop_mode_names },
        [K_METRICS_FILE] = { "KSM_METRICS_FILE", KEY_PATH, offsetof(Settings, metrics_file) },
        [K_POLICY] = { "KSM_POLICY", KEY_CHOICE, offsetof(Settings, policy), .choices = policy_names },
        [K_ADAPTIVE_MAX_RATE] = { "KSM_ADAPTIVE_MAX_RATE", KEY_INT, offsetof(Settings, adaptive_max_rate), 100,
                                  100000000, "pages/s", .def = 1000000 },
        [K_ADAPTIVE_MIN_RATE] = { "KSM_ADAPTIVE_MIN_RATE", KEY_INT, offsetof(Settings, adaptive_min_rate), 1, 100000000,
                                  "pages/s", .def = 2000 },
        [K_ADAPTIVE_MAX_CPU] = { "KSM_ADAPTIVE_MAX_CPU", KEY_INT, offsetof(Settings, adaptive_max_cpu), 0, 100,
                                 "percent", .def = 80 },
        [K_ADVISOR] = { "KSM_ADVISOR", KEY_CHOICE, offsetof(Settings, advisor_mode), -1, 0, NULL, advisor_mode_names,
                        .def = -1 },
        [K_ADVISOR_MAX_CPU] = { "KSM_ADVISOR_MAX_CPU", KEY_OPTINT, offsetof(Settings, advisor_max_cpu), 1, 100,
                                "percent", .def = -1 },
        [K_ADVISOR_MIN_PAGES] = { "KSM_ADVISOR_MIN_PAGES_TO_SCAN", KEY_OPTINT, offsetof(Settings, advisor_min_pages), 1,
                                  NPAGES_LIMIT, "pages", .def = -1 },
        [K_ADVISOR_MAX_PAGES] = { "KSM_ADVISOR_MAX_PAGES_TO_SCAN", KEY_OPTINT, offsetof(Settings, advisor_max_pages), 1,
                                  NPAGES_LIMIT, "pages", .def = -1 },
        [K_ADVISOR_TARGET_SCAN_TIME] = { "KSM_ADVISOR_TARGET_SCAN_TIME", KEY_OPTINT,
                                         offsetof(Settings, advisor_target_scan_time), 2, 86400, "seconds", .def = -1 },
        [K_SMART_SCAN] = { "KSM_SMART_SCAN", KEY_OPTBOOL, offsetof(Settings, smart_scan), .def = -1 },
        [K_USE_ZERO_PAGES] = { "KSM_USE_ZERO_PAGES", KEY_OPTBOOL, offsetof(Settings, use_zero_pages), .def = -1 },
        [K_MERGE_ACROSS_NODES] = { "KSM_MERGE_ACROSS_NODES", KEY_OPTBOOL, offsetof(Settings, merge_across_nodes),
                                   .def = -1 },
        [K_MAX_PAGE_SHARING] = { "KSM_MAX_PAGE_SHARING", KEY_OPTINT, offsetof(Settings, max_page_sharing), 2,
                                 NPAGES_LIMIT, "sharers", .def = -1 },
        /* The script took its pid file from the environment after sourcing the file, so a user may have set it. */
        [K_PIDFILE] = { "PIDFILE", KEY_IGNORED },
};
const size_t config_n_keys = N_KEYS;

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

        /* The file being parsed, and its line. */
        const char *file;
        unsigned line;
} Loader;

static void loader_done(Loader *l) {
        settings_done(&l->settings);
        for (size_t i = 0; i < N_KEYS; i++)
                free(l->origins[i].file);
}

static void loader_report(Loader *l, ConfigSeverity severity, const char *file, unsigned line, const char *format, ...)
        _printf_(5, 6);

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
        shown = config_escape(raw, raw_len);
        if (!shown) {
                if (severity == CONFIG_ERROR)
                        l->n_errors++;
                l->failure = -ENOMEM;
                return;
        }
        loader_report(l, severity, l->file, l->line, "%s=%s: %s", key, shown, reason);
}

static const char *closest_key(const char *name) {
        const char *best = NULL;
        size_t best_d = 4; /* suggest nothing further than 3 edits away */

        for (size_t i = 0; i < N_KEYS; i++) {
                size_t d = config_edit_distance(name, config_keys[i].name);

                if (d < best_d) {
                        best_d = d;
                        best = config_keys[i].name;
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

/* Apply one assignment to l->settings, reporting what is wrong with it. */
static int loader_assign(Loader *l, const char *name, const char *text) {
        _cleanup_free_ char *value = NULL;
        const char *raw, *reason;
        const KeyInfo *k = NULL;
        char why[256];
        size_t raw_len, ki;
        int r;

        for (ki = 0; ki < N_KEYS; ki++)
                if (streq(config_keys[ki].name, name)) {
                        k = &config_keys[ki];
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

        r = config_lex_value(text, &value, &raw, &raw_len, &reason);
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
                        /* The script's ${KEY:-default}: an empty value means the default. */
                        x = k->def;
                        report_value(l, CONFIG_WARNING, name, raw, raw_len, "empty value, using the default %" PRIi64,
                                     x);
                } else if (config_parse_int(value, k->min, k->max, k->unit, &x, why, sizeof(why)) < 0) {
                        report_value(l, CONFIG_ERROR, name, raw, raw_len, "%s", why);
                        return 0;
                }
                *int_field(&l->settings, k) = x;
                break;
        }
        case KEY_FLAG:
                if (config_is_off_word(value))
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
                string_set(&l->settings, k, *value ? TAKE_PTR(value) : NULL);
                break;
        case KEY_REGEX:
                if (*value != '\0') {
                        regex_t re;
                        int e;

                        e = regcomp(&re, value, REG_EXTENDED | REG_NOSUB);
                        if (e != 0) {
                                regerror(e, &re, why, sizeof(why));
                                report_value(l, CONFIG_ERROR, name, raw, raw_len, "invalid regular expression: %s",
                                             why);
                                return 0;
                        }
                        regfree(&re);
                }
                string_set(&l->settings, k, *value ? TAKE_PTR(value) : NULL);
                break;
        case KEY_STRING:
                string_set(&l->settings, k, *value ? TAKE_PTR(value) : NULL);
                break;
        case KEY_CHOICE: {
                int64_t c = -1;

                if (*value == '\0') {
                        *int_field(&l->settings, k) = k->def;
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

                if (*value != '\0' && config_parse_int(value, k->min, k->max, k->unit, &x, why, sizeof(why)) < 0) {
                        report_value(l, CONFIG_ERROR, name, raw, raw_len, "%s", why);
                        return 0;
                }
                *int_field(&l->settings, k) = x;
                break;
        }
        case KEY_OPTBOOL: {
                int b = *value == '\0' ? -1 : config_parse_bool(value);

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
                        b = k->def != 0;
                        report_value(l, CONFIG_WARNING, name, raw, raw_len, "empty value, using the default %d", b);
                }
                if (b < 0)
                        b = config_parse_bool(value);
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
        return origin_set(l, ki);
}

/*
 * One line of a file: blank or a comment, or "[export ]KEY=VALUE" (indentation, a trailing CR and
 * "export " allowed). The value is lexed as a shell word would be, up to a comment.
 */
static int loader_line(Loader *l, const char *s, size_t len) {
        _cleanup_free_ char *line = NULL;
        char *p, *q, *name_end;

        if (len > 0 && s[len - 1] == '\r')
                len--;
        if (l->line == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
                s += 3;
                len -= 3;
        }
        if (memchr(s, '\0', len)) {
                loader_report(l, CONFIG_ERROR, l->file, l->line, "NUL byte in line");
                return l->failure;
        }
        while (len > 0 && config_is_blank(*s)) {
                s++;
                len--;
        }
        if (len == 0 || *s == '#')
                return 0;
        line = strndup(s, len);
        if (!line)
                return -ENOMEM;

        p = line;
        if (strncmp(p, "export", 6) == 0 && config_is_blank(p[6]))
                for (p += 6; config_is_blank(*p); p++)
                        ;
        /* A shell variable name: ASCII, whatever the locale. */
        q = p;
        if (!(*q >= '0' && *q <= '9'))
                while (config_is_name_char(*q))
                        q++;
        name_end = q;
        if (q > p)
                while (config_is_blank(*q))
                        q++;
        if (q == p || *q != '=') {
                _cleanup_free_ char *shown = config_escape(line, len > 60 ? 60 : len);

                if (!shown)
                        return -ENOMEM;
                loader_report(l, CONFIG_ERROR, l->file, l->line, "not a KEY=VALUE assignment: %s%s", shown,
                              len > 60 ? "..." : "");
                return l->failure;
        }
        /* Kept from the versions that read the file through inih (INI_MAX_LINE 200): same files, same verdict. */
        if (strlen(p) > CONFIG_LINE_MAX) {
                loader_report(l, CONFIG_ERROR, l->file, l->line, "line too long (%zu characters, at most %d)",
                              strlen(p), CONFIG_LINE_MAX);
                return l->failure;
        }
        *name_end = '\0';
        return loader_assign(l, p, q + 1);
}

/* Parse one file's text, line by line, reporting every problem. */
static int loader_parse(Loader *l, const char *file, const char *text, size_t size) {
        const char *pos = text, *end = text + size;
        int r;

        if (size > CONFIG_FILE_SIZE_MAX) {
                loader_report(l, CONFIG_ERROR, file, 0, "too large (more than %d bytes)", CONFIG_FILE_SIZE_MAX);
                return l->failure;
        }
        l->file = file;
        l->line = 0;
        while (pos < end && l->failure >= 0) {
                const char *nl = memchr(pos, '\n', (size_t) (end - pos)), *s = pos;

                pos = nl ? nl + 1 : end;
                l->line++;
                r = loader_line(l, s, (size_t) ((nl ? nl : end) - s));
                if (r < 0)
                        l->failure = r;
        }
        return l->failure;
}

typedef enum Missing {
        MISSING_OK,   /* the main file: the defaults apply */
        MISSING_WARN, /* a drop-in that the directory listed: a dangling symbolic link */
} Missing;

/* Read and parse one file. */
static int loader_load_file(Loader *l, const char *path, Missing missing) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct stat st;
        int r;

        if (stat(path, &st) < 0) {
                if (errno == ENOENT && missing == MISSING_OK)
                        return 0;
                if (errno == ENOENT && missing == MISSING_WARN) {
                        loader_report(l, CONFIG_WARNING, path, 0, "dangling symbolic link, ignoring");
                        return l->failure;
                }
                loader_report(l, CONFIG_ERROR, path, 0, "cannot open: %s", strerror(errno));
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
        r = read_full_file_at(AT_FDCWD, path, CONFIG_FILE_SIZE_MAX, &buf, &size);
        if (r == -ENOMEM)
                return r;
        if (r == -EFBIG) {
                loader_report(l, CONFIG_ERROR, path, 0, "too large (more than %d bytes)", CONFIG_FILE_SIZE_MAX);
                return l->failure;
        }
        if (r < 0) {
                loader_report(l, CONFIG_ERROR, path, 0, "cannot open: %s", strerror(-r));
                return l->failure;
        }
        return loader_parse(l, path, buf, size);
}

/* *.conf, not hidden. */
static int is_dropin(const struct dirent *de) {
        size_t n = strlen(de->d_name);

        return de->d_name[0] != '.' && n > 5 && streq(de->d_name + n - 5, ".conf");
}

static int compare_names(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

/* The drop-ins of @dir in strcmp() order: the order of systemd's drop-ins. */
static int loader_load_dropins(Loader *l, const char *dir) {
        struct dirent **names = NULL;
        int n, r = 0;

        n = scandir(dir, &names, is_dropin, compare_names);
        if (n < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno == ENOMEM)
                        return -ENOMEM;
                loader_report(l, CONFIG_ERROR, dir, 0, "cannot open drop-in directory: %s", strerror(errno));
                return l->failure;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;

                if (r >= 0 && asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = loader_load_file(l, path, MISSING_WARN);
                free(names[i]);
        }
        free(names);
        return r < 0 ? r : 0;
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
        int64_t a_v = *int_field(&l->settings, &config_keys[lo]), b_v = *int_field(&l->settings, &config_keys[hi]);
        const Origin *at;
        char a[PATH_MAX + 32], b[PATH_MAX + 32];

        if (a_v <= b_v)
                return;
        at = later_origin(l, lo, hi);
        format_origin(&l->origins[lo], a, sizeof(a));
        format_origin(&l->origins[hi], b, sizeof(b));
        loader_report(l, CONFIG_ERROR, at->file, at->line, "%s=%" PRIi64 " (%s) is greater than %s=%" PRIi64 " (%s)",
                      config_keys[lo].name, a_v, a, config_keys[hi].name, b_v, b);
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

static int loader_finish(Loader *l, Settings *ret) {
        if (l->failure < 0)
                return l->failure;
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
