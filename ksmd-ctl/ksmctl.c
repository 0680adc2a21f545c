/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmctl: start, stop, show or unmerge the kernel's KSM; the command line and messages around ksmctl-ops. */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <time.h>

#include "config.h"
#include "guest-info.h"
#include "ksm-sysfs.h"
#include "ksmctl-guests.h"
#include "ksmctl-ops.h"
#include "meminfo.h"
#include "paths.h"
#include "util.h"

/* Exit statuses, documented in ksmctl(8). */
enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,  /* a usage error or a failure, as the original used 1 for both */
        EXIT_REFUSED = 2, /* unmerge refused for lack of memory; nothing was changed */
};

typedef enum Verb {
        VERB_START,
        VERB_STOP,
        VERB_STATUS,
        VERB_UNMERGE,
        VERB_GUESTS,
} Verb;

/* clang-format off */
static const char *const verbs[] = {
        [VERB_START] = "start",
        [VERB_STOP] = "stop",
        [VERB_STATUS] = "status",
        [VERB_UNMERGE] = "unmerge",
        [VERB_GUESTS] = "guests",
};
/* clang-format on */

/* ksmtuned's configuration, which says which processes are guests; drop-ins in FILE.d, *.conf. */
#define DEFAULT_CONFIG SYSCONFDIR "/ksmtuned.conf"

typedef struct Args {
        Verb verb;
        const char *ksm_dir;
        const char *proc_dir;
        const char *config_path;
        bool config_set;
        uint64_t sample_ms;
        bool sample_set;
        bool force;
        bool json;
        bool verbose;
} Args;

#define USAGE_LINE "Usage: %s [OPTIONS] {start|stop|status|unmerge|guests}\n"

static _printf_(1, 2) void log_error(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s: ", program_invocation_short_name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static _printf_(2, 3) void log_debug(const Args *a, const char *fmt, ...) {
        va_list ap;

        if (!a->verbose)
                return;
        fprintf(stderr, "%s: ", program_invocation_short_name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* The usage line comes first, so scripts and people see at once what went wrong; then the reason. */
static _printf_(1, 2) int usage_error(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, USAGE_LINE, program_invocation_short_name);
        fprintf(stderr, "%s: ", program_invocation_short_name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry '%s --help' for more information.\n", program_invocation_short_name);
        return -EINVAL;
}

static void help(void) {
        /* clang-format off */
        printf(USAGE_LINE
               "\n"
               "Control the kernel's samepage merging (KSM) through " KSM_SYSFS_DIR ".\n"
               "\n"
               "Commands:\n"
               "  start            Let ksmd merge pages (write 1 to run); on kernels before 2.6.33\n"
               "                   first limit the kernel pages KSM may use to KSM_MAX_KERNEL_PAGES\n"
               "  stop             Stop ksmd (write 0 to run); merged pages stay merged\n"
               "  status           Show whether ksmd runs, how fast it scans and what it saves\n"
               "  unmerge          Unmerge every merged page and stop ksmd (write 2 to run); refused\n"
               "                   when less memory is available than the unmerged copies need\n"
               "  guests           Show each guest process, found as ksmtuned finds them: its memory,\n"
               "                   what KSM merged of it and saves it, and whether it can merge at all\n"
               "\n"
               "Options:\n"
               "  -d, --ksm-dir=DIR  Use DIR instead of " KSM_SYSFS_DIR "\n"
               "      --proc=DIR     Use DIR instead of " PROC_DIR ": meminfo (unmerge), ksmd (status),\n"
               "                     the guest processes (guests)\n"
               "  -c, --config=FILE  ksmtuned's configuration, for which processes are guests; drop-ins\n"
               "                     in FILE.d/*.conf (guests; default " DEFAULT_CONFIG ")\n"
               "  -f, --force        Unmerge even when memory looks short (unmerge)\n"
               "      --json         Print one JSON object (status, guests)\n"
               "      --sample=MS    Measure ksmd's CPU use over MS milliseconds, 0 to 10000;\n"
               "                     0 shows its total CPU time only (status; default 500)\n"
               "  -v, --verbose      Say what is done, on standard error\n"
               "  -h, --help         Show this help and exit\n"
               "  -V, --version      Show the version and exit\n"
               "\n"
               "Environment:\n"
               "  KSM_MAX_KERNEL_PAGES  Limit for start where the kernel has max_kernel_pages\n"
               "                        (before Linux 2.6.33), in pages, 0 for unlimited: a number\n"
               "                        as C's strtoll(s, &end, 0) reads it (0x10 = 16, 010 = 8).\n"
               "                        Unset, empty, negative or not wholly a number: half of\n"
               "                        physical memory\n"
               "\n"
               "Exit status: 0 success, 1 usage error or failure, 2 unmerge refused for lack of memory.\n"
               "See ksmctl(8).\n",
               program_invocation_short_name);
        /* clang-format on */
}

/* Returns 1 when the program should go on, 0 when it is done (help, version), -EINVAL on a usage error. */
static int parse_args(int argc, char *argv[], Args *a) {
        enum {
                ARG_PROC = 0x100,
                ARG_JSON,
                ARG_SAMPLE,
        };
        /* clang-format off */
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "ksm-dir", required_argument, NULL, 'd' },
                { "proc", required_argument, NULL, ARG_PROC },
                { "config", required_argument, NULL, 'c' },
                { "force", no_argument, NULL, 'f' },
                { "json", no_argument, NULL, ARG_JSON },
                { "sample", required_argument, NULL, ARG_SAMPLE },
                { "verbose", no_argument, NULL, 'v' },
                {},
        };
        /* clang-format on */
        const char *verb;
        size_t i;
        int c;

        opterr = 0; /* our own messages, after the usage line */
        while ((c = getopt_long(argc, argv, ":hVd:c:fv", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("%s %s\n", program_invocation_short_name, PACKAGE_VERSION);
                        return 0;
                case 'd':
                        a->ksm_dir = optarg;
                        break;
                case ARG_PROC:
                        a->proc_dir = optarg;
                        break;
                case 'c':
                        a->config_path = optarg;
                        a->config_set = true;
                        break;
                case 'f':
                        a->force = true;
                        break;
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_SAMPLE:
                        if (safe_atou64(optarg, &a->sample_ms) < 0 || a->sample_ms > KSMCTL_SAMPLE_MS_MAX)
                                return usage_error("--sample needs a number of milliseconds from 0 to %d, not '%s'",
                                                   KSMCTL_SAMPLE_MS_MAX, optarg);
                        a->sample_set = true;
                        break;
                case 'v':
                        a->verbose = true;
                        break;
                case ':':
                        return usage_error("option '%s' needs an argument", argv[optind - 1]);
                default:
                        if (strncmp(argv[optind - 1], "--", 2) == 0 && strchr(argv[optind - 1], '='))
                                return usage_error("option '%.*s' takes no argument",
                                                   (int) strcspn(argv[optind - 1], "="), argv[optind - 1]);
                        if (strncmp(argv[optind - 1], "--", 2) == 0 || optopt <= 0 || optopt >= 0x100)
                                return usage_error("unknown option '%s'", argv[optind - 1]);
                        return usage_error("unknown option '-%c'", optopt);
                }
        }

        if (optind >= argc)
                return usage_error("no command given");
        if (argc - optind > 1)
                return usage_error("unexpected argument '%s'", argv[optind + 1]);
        verb = argv[optind];
        for (i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verb, verbs[i]))
                        break;
        if (i >= ELEMENTSOF(verbs))
                return usage_error("unknown command '%s'", verb);
        a->verb = (Verb) i;

        if (a->json && a->verb != VERB_STATUS && a->verb != VERB_GUESTS)
                return usage_error("--json applies only to status and guests");
        if (a->config_set && a->verb != VERB_GUESTS)
                return usage_error("--config applies only to guests");
        if (a->config_path[0] == '\0')
                return usage_error("--config needs a file");
        if (a->sample_set && a->verb != VERB_STATUS)
                return usage_error("--sample applies only to status");
        if (a->force && a->verb != VERB_UNMERGE)
                return usage_error("--force applies only to unmerge");
        if (a->ksm_dir[0] == '\0')
                return usage_error("--ksm-dir needs a directory");
        if (a->proc_dir[0] == '\0')
                return usage_error("--proc needs a directory");
        return 1;
}

/* "DIR/knob" for messages, without a doubled slash when DIR ends in one. */
static void knob_path(const Args *a, const char *knob, char *buf, size_t size) {
        size_t n = strlen(a->ksm_dir);

        while (n > 1 && a->ksm_dir[n - 1] == '/')
                n--;
        snprintf(buf, size, "%.*s%s%s", (int) n, a->ksm_dir, a->ksm_dir[n - 1] == '/' ? "" : "/", knob);
}

static int report_failure(const Args *a, const KsmctlReport *rep, int r) {
        char path[PATH_MAX];

        knob_path(a, rep->knob ?: "?", path, sizeof(path));
        if (rep->write)
                log_error("Failed to write %" PRIu64 " to %s: %s", rep->value, path, strerror(-r));
        else if (r == -EBADMSG)
                log_error("Failed to read %s: not a number", path);
        else
                log_error("Failed to read %s: %s", path, strerror(-r));
        return EXIT_FAILED;
}

static void report_written(const Args *a, const KsmctlReport *rep) {
        char path[PATH_MAX];

        knob_path(a, rep->knob, path, sizeof(path));
        log_debug(a, "Wrote %" PRIu64 " to %s", rep->value, path);
}

static int do_start(const Args *a, int dirfd) {
        KsmctlReport rep = {};
        const char *env = getenv("KSM_MAX_KERNEL_PAGES");
        long phys = sysconf(_SC_PHYS_PAGES);
        char path[PATH_MAX];
        int r;

        if (phys <= 0) {
                log_error("Failed to get the size of physical memory: %s", strerror(phys < 0 ? errno : EINVAL));
                return EXIT_FAILED;
        }
        r = ksmctl_start(dirfd, env, (uint64_t) phys, &rep);

        knob_path(a, "max_kernel_pages", path, sizeof(path));
        if (!rep.limited && !(r < 0 && streq(rep.knob, "max_kernel_pages")))
                log_debug(a, "No %s (Linux 2.6.33 or later): no kernel page limit to set", path);
        else if (rep.limit_from_env)
                log_debug(a, "Kernel page limit from KSM_MAX_KERNEL_PAGES: %" PRIu64 "%s", rep.max_kernel_pages,
                          rep.max_kernel_pages == 0 ? " (unlimited)" : "");
        else if (env && *env)
                log_debug(a,
                          "KSM_MAX_KERNEL_PAGES='%s' is not a number of pages; limit: half of memory, %" PRIu64
                          " pages",
                          env, rep.max_kernel_pages);
        else
                log_debug(a, "Kernel page limit: half of memory, %" PRIu64 " pages", rep.max_kernel_pages);
        if (r < 0)
                return report_failure(a, &rep, r);
        if (rep.limited)
                log_debug(a, "Wrote %" PRIu64 " to %s", rep.max_kernel_pages, path);
        report_written(a, &rep);
        return EXIT_OK;
}

static int do_stop(const Args *a, int dirfd) {
        KsmctlReport rep = {};
        int r;

        r = ksmctl_stop(dirfd, &rep);
        if (r < 0)
                return report_failure(a, &rep, r);
        report_written(a, &rep);
        return EXIT_OK;
}

static int do_unmerge(const Args *a, int dirfd, uint64_t page_size) {
        KsmctlReport rep = {};
        MemInfo mi;
        int r;

        if (!a->force) {
                const char *field = NULL;
                unsigned used;
                char why[96];

                r = meminfo_read_full(a->proc_dir, &field, &mi);
                if (r < 0) {
                        log_error("Failed to read %s/meminfo: %s", a->proc_dir,
                                  meminfo_strerror(r, field, why, sizeof(why)));
                        return EXIT_FAILED;
                }
                /* What the check below uses, and counts as 0 when the file lacks it or it is malformed. */
                used = (1u << MEMINFO_MEM_AVAILABLE) |
                       (mi.has_mem_available
                                ? 0
                                : (1u << MEMINFO_MEM_FREE) | (1u << MEMINFO_BUFFERS) | (1u << MEMINFO_CACHED));
                for (unsigned f = 0; f < _MEMINFO_FIELD_MAX; f++) {
                        const char *name = meminfo_field_name(f);

                        if (mi.malformed & used & (1u << f))
                                log_error("%s/meminfo: %s is not a number of kB, counting it as 0", a->proc_dir, name);
                        else if (mi.missing & used & ~(1u << MEMINFO_MEM_AVAILABLE) & (1u << f))
                                log_error("%s/meminfo has no %s line, counting it as 0", a->proc_dir, name);
                }
        }
        r = ksmctl_unmerge(dirfd, a->force ? NULL : &mi, page_size, &rep);
        if (rep.refused) {
                log_error("Refusing to unmerge: it needs %" PRIu64 " bytes (%.1f MiB) for the merged pages, but only "
                          "%" PRIu64 " bytes (%.1f MiB) are available. Use --force to unmerge anyway.",
                          rep.needed_bytes, (double) rep.needed_bytes / 1048576.0, rep.available_bytes,
                          (double) rep.available_bytes / 1048576.0);
                return EXIT_REFUSED;
        }
        if (r < 0)
                return report_failure(a, &rep, r);
        if (a->force)
                log_debug(a, "Unmerging %" PRIu64 " bytes without checking available memory (--force)",
                          rep.needed_bytes);
        else
                log_debug(a, "Unmerging needs %" PRIu64 " bytes, %" PRIu64 " bytes are available", rep.needed_bytes,
                          rep.available_bytes);
        report_written(a, &rep);
        return EXIT_OK;
}

static uint64_t clock_now_usec(void *userdata) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                return 0; /* cannot happen for CLOCK_MONOTONIC; leaves the window unmeasured */
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void clock_sleep_ms(uint64_t msec, void *userdata) {
        struct timespec ts = { .tv_sec = (time_t) (msec / 1000), .tv_nsec = (long) (msec % 1000) * 1000000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/*
 * ksmd's CPU time is extra to the status: when it cannot be had, say why and show the rest. No ksmd
 * (-ESRCH) is not even a warning: kernels without KSM and containers that hide kernel threads have none.
 */
static void read_ksmd_cpu(const Args *a, KsmdCpu *ret) {
        static const KsmctlClock clock = { .now_usec = clock_now_usec, .sleep_ms = clock_sleep_ms };
        long tck = sysconf(_SC_CLK_TCK);
        int r;

        *ret = (KsmdCpu) { .sample_ms = a->sample_ms };
        if (tck <= 0) {
                log_error("Failed to get the clock ticks a second: %s, ignoring", strerror(tck < 0 ? errno : EINVAL));
                return;
        }
        r = ksmctl_ksmd_cpu_read(a->proc_dir, (uint64_t) tck, a->sample_ms, &clock, ret);
        if (r == -ESRCH)
                log_debug(a, "No ksmd in %s: no KSM in this kernel, or kernel threads are hidden", a->proc_dir);
        else if (r < 0)
                log_error("Failed to read ksmd's CPU time in %s: %s, ignoring", a->proc_dir,
                          r == -EBADMSG ? "ksmd's PID/stat is not a stat line with numeric utime and stime"
                                        : strerror(-r));
        else
                log_debug(a, "ksmd is PID %d in %s", (int) ret->pid, a->proc_dir);
}

static int do_status(const Args *a, int dirfd, uint64_t page_size) {
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        KsmctlReport rep = {};
        KsmdCpu cpu;
        int r;

        r = ksmctl_status_read(dirfd, &s, &rep);
        if (r < 0)
                return report_failure(a, &rep, r);
        read_ksmd_cpu(a, &cpu);
        if (a->json)
                r = ksmctl_status_print_json(&s, &cpu, page_size, stdout);
        else
                r = ksmctl_status_print(&s, &cpu, page_size, stdout);
        if (r < 0) {
                log_error("Failed to write the status: %s", strerror(-r));
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

static void config_report(void *userdata, ConfigSeverity severity, const char *file, unsigned line,
                          const char *message) {
        const char *what = severity == CONFIG_ERROR ? "" : "warning: ";

        if (line > 0)
                log_error("%s%s:%u: %s", what, file, line, message);
        else
                log_error("%s%s: %s", what, file, message);
}

static int do_guests(const Args *a, int dirfd, uint64_t page_size) {
        _cleanup_(settings_done) Settings settings = {};
        _cleanup_(guest_list_done) GuestList list = {};
        _cleanup_(ksmctl_status_done) KsmStatus s = {};
        _cleanup_free_ char *dropin = NULL;
        GuestMatcher matcher;
        KsmctlReport rep = {};
        bool have_status;
        char err[256];
        int r;

        if (asprintf(&dropin, "%s.d", a->config_path) < 0) {
                log_error("Out of memory");
                return EXIT_FAILED;
        }
        settings_init(&settings);
        r = config_load(a->config_path, dropin, &settings, config_report, NULL);
        if (r < 0) {
                log_error("Failed to load the configuration %s: %s", a->config_path,
                          r == -EINVAL ? "invalid, see above" : strerror(-r));
                return EXIT_FAILED;
        }
        r = guest_matcher_init(&matcher, settings.guest_comm, settings.guest_cmdline, err, sizeof(err));
        if (r < 0) {
                log_error("Invalid guest match expression in %s or %s: %s", a->config_path, dropin, err);
                return EXIT_FAILED;
        }
        log_debug(a, "Guests: process name matching '%s', command line matching '%s' (from %s)",
                  settings.guest_comm ?: "", settings.guest_cmdline ?: "", a->config_path);
        r = guest_list(a->proc_dir, &matcher, GUEST_LIST_SMAPS, &list);
        guest_matcher_done(&matcher);
        if (r < 0) {
                log_error("Failed to list the processes in %s: %s", a->proc_dir, strerror(-r));
                return EXIT_FAILED;
        }
        guest_list_sort(&list, page_size);

        have_status = dirfd >= 0 && ksmctl_status_read(dirfd, &s, &rep) >= 0;
        if (dirfd >= 0 && !have_status)
                log_error("Failed to read %s/%s, ignoring: no line for KSM as a whole", a->ksm_dir, rep.knob ?: "?");
        if (a->json)
                r = ksmctl_guests_print_json(&list, have_status ? &s : NULL, page_size, stdout);
        else
                r = ksmctl_guests_print(&list, have_status ? &s : NULL, page_size, stdout);
        if (r < 0) {
                log_error("Failed to write the guests: %s", strerror(-r));
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

int main(int argc, char *argv[]) {
        Args a = {
                .ksm_dir = KSM_SYSFS_DIR,
                .proc_dir = PROC_DIR,
                .config_path = DEFAULT_CONFIG,
                .sample_ms = 500,
        };
        _cleanup_close_ int dirfd = -1;
        long page_size;
        int r;

        r = parse_args(argc, argv, &a);
        if (r < 0)
                return EXIT_FAILED;
        if (r == 0)
                return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_FAILED;

        page_size = sysconf(_SC_PAGESIZE);
        if (page_size <= 0) {
                log_error("Failed to get the page size: %s", strerror(page_size < 0 ? errno : EINVAL));
                return EXIT_FAILED;
        }

        r = ksm_open_dir(a.ksm_dir, &dirfd);
        if (r < 0 && a.verb == VERB_GUESTS)
                /* The guests are there without KSM too; only the line for KSM as a whole is missing. */
                log_error("Failed to open %s: %s, ignoring: no line for KSM as a whole", a.ksm_dir, strerror(-r));
        else if (r < 0) {
                log_error("Failed to open %s: %s", a.ksm_dir, strerror(-r));
                return EXIT_FAILED;
        }

        switch (a.verb) {
        case VERB_START:
                return do_start(&a, dirfd);
        case VERB_STOP:
                return do_stop(&a, dirfd);
        case VERB_STATUS:
                return do_status(&a, dirfd, (uint64_t) page_size);
        case VERB_UNMERGE:
                return do_unmerge(&a, dirfd, (uint64_t) page_size);
        case VERB_GUESTS:
                return do_guests(&a, dirfd, (uint64_t) page_size);
        }
        return EXIT_FAILED;
}
