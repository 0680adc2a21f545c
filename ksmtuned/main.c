/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmtuned: command line, logging set-up, and the manager's run. */
#include <getopt.h>
#include <limits.h>

#include "log.h"
#include "manager.h"
#include "paths.h"
#include "reload.h"

#define DEFAULT_CONFIG SYSCONFDIR "/ksmtuned.conf"
/* Under TimeoutStartSec='s default (90 s), which also bounds ExecReload=, so our message comes first. */
#define RELOAD_TIMEOUT_USEC (60 * UINT64_C(1000000))

static void help(void) {
        printf("Usage: ksmtuned [OPTIONS]\n"
               "\n"
               "Tune the kernel's samepage merging (KSM) for the guests on this host: start ksmd when guest\n"
               "memory presses on the host's, scan harder while free memory is short, stop it when it is not.\n"
               "Runs in the foreground (systemd Type=notify). Signals: SIGUSR1 adjusts now, SIGHUP reloads the\n"
               "configuration and adjusts, SIGTERM/SIGINT exit and leave KSM as it is.\n"
               "\n"
               "Options:\n"
               "  -c, --config=FILE   configuration file (default: %s); drop-ins are read from FILE.d/*.conf\n"
               "      --once          adjust once, then exit\n"
               "  -n, --dry-run       compute and log decisions, write nothing\n"
               "  -d, --debug         log every decision with its inputs (like DEBUG=1)\n"
               "      --ksm-dir=DIR   directory laid out like %s (default: that)\n"
               "      --proc=DIR      directory laid out like %s (default: that)\n"
               "      --check-config  check the configuration and its drop-ins as the daemon would, print\n"
               "                      every problem, exit 0 when valid and 1 when not; touches nothing\n"
               "      --reload=PID    check the configuration the daemon PID reads; when valid, make it\n"
               "                      reload and wait until the reload is in force (ExecReload=)\n"
               "      --runtime-dir=DIR  where the daemon records its reloads (default: $RUNTIME_DIRECTORY,\n"
               "                      which RuntimeDirectory=ksmtuned sets)\n"
               "  -h, --help          show this help and exit\n"
               "  -V, --version       show the version and exit\n"
               "\n"
               "Exit status: 0 on success, 1 on a fatal error (invalid configuration, no KSM, not root; a reload\n"
               "not in force), 2 on a usage error. See ksmtuned(8) and ksmtuned.conf(5).\n",
               DEFAULT_CONFIG, KSM_SYSFS_DIR, PROC_DIR);
}

int main(int argc, char *argv[]) {
        enum { ARG_ONCE = 0x100, ARG_KSM_DIR, ARG_PROC, ARG_CHECK_CONFIG, ARG_RELOAD, ARG_RUNTIME_DIR };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "once", no_argument, NULL, ARG_ONCE },
                { "dry-run", no_argument, NULL, 'n' },
                { "debug", no_argument, NULL, 'd' },
                { "ksm-dir", required_argument, NULL, ARG_KSM_DIR },
                { "proc", required_argument, NULL, ARG_PROC },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "reload", required_argument, NULL, ARG_RELOAD },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        ManagerOptions opts = {
                .config_path = DEFAULT_CONFIG,
                .ksm_dir = KSM_SYSFS_DIR,
                .proc_dir = PROC_DIR,
                .runtime_dir = getenv("RUNTIME_DIRECTORY"),
        };
        bool check_config = false;
        int64_t reload_pid = -1;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *dropin = NULL, *runtime_dir = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:ndhV", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        opts.config_path = optarg;
                        break;
                case ARG_ONCE:
                        opts.once = true;
                        break;
                case 'n':
                        opts.dry_run = true;
                        break;
                case 'd':
                        opts.debug = true;
                        break;
                case ARG_KSM_DIR:
                        opts.ksm_dir = optarg;
                        break;
                case ARG_PROC:
                        opts.proc_dir = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        check_config = true;
                        break;
                case ARG_RELOAD:
                        /* Empty when the unit's $MAINPID is: the daemon is not running. */
                        if (*optarg &&
                            (safe_atoi64(optarg, &reload_pid) < 0 || reload_pid <= 0 || reload_pid > INT_MAX)) {
                                fprintf(stderr, "ksmtuned: --reload=%s: not a process ID\n", optarg);
                                return 2;
                        }
                        if (!*optarg)
                                reload_pid = 0;
                        break;
                case ARG_RUNTIME_DIR:
                        opts.runtime_dir = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("ksmtuned %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'ksmtuned --help' for more information.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "ksmtuned: unexpected argument '%s'\nTry 'ksmtuned --help' for more information.\n",
                        argv[optind]);
                return 2;
        }

        if (asprintf(&dropin, "%s.d", opts.config_path) < 0) {
                fprintf(stderr, "ksmtuned: out of memory\n");
                return 1;
        }
        opts.dropin_dir = dropin;
        /* $RUNTIME_DIRECTORY lists every RuntimeDirectory= of the unit, colon-separated: ours comes first. */
        if (opts.runtime_dir && strchr(opts.runtime_dir, ':')) {
                runtime_dir = strndup(opts.runtime_dir, strcspn(opts.runtime_dir, ":"));
                if (!runtime_dir) {
                        fprintf(stderr, "ksmtuned: out of memory\n");
                        return 1;
                }
                opts.runtime_dir = runtime_dir;
        }
        if (opts.runtime_dir && !*opts.runtime_dir)
                opts.runtime_dir = NULL;

        /* Native journal messages for the daemon only: see log_open(). */
        log_open(!check_config && reload_pid < 0 && !opts.once);
        if (check_config && reload_pid >= 0) {
                fprintf(stderr, "ksmtuned: --check-config and --reload exclude each other\n");
                return 2;
        }
        if (check_config)
                return run_check_config(opts.config_path, opts.dropin_dir);
        if (reload_pid >= 0)
                return run_reload((pid_t) reload_pid, opts.runtime_dir, RELOAD_TIMEOUT_USEC);

        r = manager_new(&opts, &m);
        if (r < 0)
                return 1;
        if (opts.once)
                return manager_adjust(m, TRIGGER_START_UP, "once") < 0 ? 1 : 0;
        reload_record(opts.runtime_dir, opts.config_path, opts.dropin_dir, 0, 0);
        r = manager_run(m);
        return r < 0 ? 1 : 0;
}
