"""What management commands share at the terminal: confirming destructive work, and progress.

A destructive command asks before it acts (`Type 'yes'`), skips the question with `--yes`, and refuses
when nobody can answer (stdin is not a terminal: a script, cron, CI) rather than guessing. Progress
redraws one line on a terminal and becomes plain lines, a few per stage, when the output is a log.
"""

import sys
import time

from django.core.management.base import CommandError


def add_yes_argument(parser) -> None:
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts, cron)")


def confirm(question: str, *, yes: bool, refusal: str) -> None:
    """Return when confirmed; CommandError otherwise. `refusal` names what --yes would do ("to revoke")."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CommandError(f"not confirmed: stdin is not a terminal; run again with --yes {refusal}")
    try:
        answer = input(f"{question} Type 'yes' to go on: ")
    except EOFError:
        answer = ""
    if answer.strip().lower() != "yes":
        raise CommandError("not confirmed: nothing changed")


class Progress:
    """`progress(stage, done, total)`: a bar redrawn in place on a terminal, plain lines otherwise.

    Off a terminal a line is written when a stage starts, at every further LINE_PERCENT of it, and when
    it ends, so a log gets a handful of readable lines instead of control characters.
    """

    WIDTH = 30
    LINE_PERCENT = 25

    def __init__(self, stream, *, interactive: bool | None = None):
        self.stream = stream
        self.interactive = _isatty(stream) if interactive is None else interactive
        self._stage = None
        self._last_step = -1
        self._last_draw = 0.0
        self._finished = True

    def __call__(self, stage: str, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        finished = done >= total
        if stage != self._stage:
            if self._stage is not None and self.interactive and not self._finished:
                self._write("\n")
            self._stage, self._last_step, self._finished = stage, -1, False
        if self.interactive:
            now = time.monotonic()
            # Redraws are cheap but not free: at most 20 a second, and always the last one.
            if finished or now - self._last_draw >= 0.05:
                filled = int(self.WIDTH * fraction)
                bar = "#" * filled + "." * (self.WIDTH - filled)
                self._write(f"\r{stage:<6} [{bar}] {done}/{total}" + ("\n" if finished else ""))
                self._last_draw = now
        else:
            step = int(fraction * 100) // self.LINE_PERCENT
            if step != self._last_step or (finished and not self._finished):
                self._write(f"{stage:<6} {done}/{total} ({int(fraction * 100)}%)\n")
                self._last_step = step
        self._finished = finished

    def _write(self, text: str) -> None:
        # A Django OutputWrapper adds a newline unless told not to.
        try:
            self.stream.write(text, ending="")
        except TypeError:
            self.stream.write(text)
        self.stream.flush()


def _isatty(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False
