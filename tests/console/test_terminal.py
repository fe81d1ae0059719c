"""console/terminal.py: confirmation of destructive commands and progress on a terminal or in a log."""

import io

import pytest
from django.core.management import CommandError

from console.terminal import Progress, confirm


class Terminal(io.StringIO):
    """A stream that says it is a terminal (stdin answering a prompt, or stdout showing progress)."""

    def isatty(self) -> bool:
        return True


def test_progress_redraws_one_line_on_a_terminal():
    out = Terminal()
    progress = Progress(out)
    for done in range(1, 4):
        progress("read", done, 3)
    progress("write", 0, 2)
    progress("write", 2, 2)
    text = out.getvalue()
    assert text.count("\n") == 2  # one finished line per stage, every update in between redrawn in place
    assert text.startswith("\rread   [") and "] 3/3\n" in text and text.endswith("] 2/2\n")


def test_progress_is_plain_lines_in_a_log():
    out = io.StringIO()
    progress = Progress(out)
    for done in range(1, 1001):
        progress("read", done, 1000)
    text = out.getvalue()
    assert "\r" not in text and "[" not in text
    lines = text.splitlines()
    # A handful of lines for a thousand updates: at each quarter, and the end.
    assert lines == ["read   1/1000 (0%)", "read   250/1000 (25%)", "read   500/1000 (50%)", "read   750/1000 (75%)",
                     "read   1000/1000 (100%)"]  # fmt: skip


def test_progress_of_an_empty_stage_is_one_line():
    out = io.StringIO()
    Progress(out)("upload", 0, 0)
    assert out.getvalue() == "upload 0/0 (100%)\n"


def test_confirm_refuses_without_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    with pytest.raises(CommandError, match="stdin is not a terminal; run again with --yes to revoke"):
        confirm("Revoke?", yes=False, refusal="to revoke")
    confirm("Revoke?", yes=True, refusal="to revoke")  # --yes: no question


@pytest.mark.parametrize(
    "answer,confirmed", [("yes\n", True), ("YES\n", True), ("y\n", False), ("\n", False), ("", False)]
)
def test_confirm_asks_on_a_terminal(monkeypatch, capsys, answer, confirmed):
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    if confirmed:
        confirm("Delete tenant X?", yes=False, refusal="to delete")
    else:
        with pytest.raises(CommandError, match="not confirmed: nothing changed"):
            confirm("Delete tenant X?", yes=False, refusal="to delete")
    assert "Delete tenant X? Type 'yes' to go on: " in capsys.readouterr().out
