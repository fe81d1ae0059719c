#!/usr/bin/env python
import os
import sys

# Commands print their own output and progress; the platform's INFO log lines (on stderr) would be mixed
# into it. Unless LOG_LEVEL is set, a command logs warnings and errors only: -v 2 shows INFO, -v 3 DEBUG.
# The development server keeps the usual level (its request lines are INFO).
VERBOSE_LOG_LEVELS = {0: "ERROR", 1: "WARNING", 2: "INFO", 3: "DEBUG"}
SERVERS = {"runserver", "testserver"}


def command_log_level(argv: list[str]) -> str | None:
    if len(argv) < 2 or argv[1] in SERVERS or argv[1].startswith("-"):
        return None
    verbosity = 1
    for index, arg in enumerate(argv):
        value = None
        if arg in ("-v", "--verbosity") and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("--verbosity="):
            value = arg.partition("=")[2]
        elif arg.startswith("-v") and arg[2:].isdigit():
            value = arg[2:]
        if value is not None and value.isdigit():
            verbosity = int(value)
    return VERBOSE_LOG_LEVELS.get(verbosity, "DEBUG")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")
    level = command_log_level(sys.argv)
    if level and "LOG_LEVEL" not in os.environ:
        os.environ["LOG_LEVEL"] = level
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
