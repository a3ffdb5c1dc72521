"""What a command's exit status tells its caller; the pipelines read 2 as drift."""

EXIT_OK, EXIT_ERROR, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2, 64  # 2 means drift to the pipelines: not for usage
EXIT_NO_PASSWORD = 3  # check: the sync user's password is the stack's only problem (scripts/up.sh sets it)
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command its pipe's reader stopped (128 + SIGPIPE)
