/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `ksmtuned --check-config` and `ksmtuned --reload=PID`, and the reload state the daemon keeps for them. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "guests.h"

/* The state file in the runtime directory (RuntimeDirectory=ksmtuned: /run/ksmtuned/reload). */
#define RELOAD_STATE_FILE "reload"

typedef struct ReloadState {
        char *config_path;     /* what the daemon reads */
        char *dropin_dir;      /* NULL: none */
        uint64_t started_usec; /* CLOCK_MONOTONIC when the last reload began; 0: none yet */
        int64_t result;        /* of that reload: 0, or -errno */
} ReloadState;

void reload_state_done(ReloadState *s);
int reload_state_parse(const char *text, ReloadState *ret);
int reload_state_write(const char *dir, const ReloadState *s);
int reload_state_read(const char *dir, ReloadState *ret);

int config_load_checked(const char *config_path, const char *dropin_dir, ConfigReport report, void *userdata,
                        Settings *ret, GuestMatcher *ret_matcher);
int config_check(const char *config_path, const char *dropin_dir, ConfigReport report, void *userdata);
void config_report_log(void *userdata, ConfigSeverity severity, const char *file, unsigned line, const char *message);

int run_check_config(const char *config_path, const char *dropin_dir);
int run_reload(pid_t pid, const char *runtime_dir, uint64_t timeout_usec);
void reload_record(const char *runtime_dir, const char *config_path, const char *dropin_dir, uint64_t started_usec,
                   int result);
