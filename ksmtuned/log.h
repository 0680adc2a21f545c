/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmtuned's logging: to the journal when systemd started us, to stderr otherwise. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

#include "util.h"

void log_open(bool native);
void log_set_max_level(int level);
int log_get_max_level(void);
/* What LOGFILE opens in a directory it names. */
#define LOG_FILE_IN_DIR "ksmtuned.log"

int log_set_file(const char *path, bool *ret_in_dir);
void log_close_file(void);

int log_internal(int level, int error, const char *const *fields, const char *format, ...) _printf_(4, 5);
void log_to_file(const char *format, ...) _printf_(1, 2);

/* A failure is logged once, by the program layer; the return value lets callers write "return log_...". */
#define log_full_errno(level, error, ...) log_internal((level), (error), NULL, __VA_ARGS__)
#define log_debug(...)                    log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)                     log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)                   log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...)                  log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)                    log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(error, ...)     log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...)       log_full_errno(LOG_ERR, (error), __VA_ARGS__)
