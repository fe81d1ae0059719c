"""Checks that a `manage.py ...` command line names a command that exists and parses its arguments."""


def manage_py_parses(args: list[str]) -> None:
    """Raise AssertionError for an unknown command, CommandError for arguments its parser refuses."""
    from django.core.management import get_commands, load_command_class

    name, *rest = args
    app = get_commands().get(name)
    assert app, f"manage.py {name}: no such command"
    load_command_class(app, name).create_parser("manage.py", name).parse_args(rest)
