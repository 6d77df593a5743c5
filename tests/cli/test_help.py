"""Every subcommand is listed, and every option of every (sub)command explains itself in --help."""

from __future__ import annotations

import argparse

import pytest

from donkeyrl.cli import COMMANDS, build_parser, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = sub
                out.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return out


def test_every_command_is_registered():
    assert set(COMMANDS) <= set(_subparsers(build_parser()))


@pytest.mark.parametrize("name", sorted(_subparsers(build_parser())))
def test_every_option_has_help(name, capsys):
    sub = _subparsers(build_parser())[name]
    missing = [a.option_strings or a.dest for a in sub._actions
               if not isinstance(a, argparse._SubParsersAction) and not (a.help and a.help.strip())]
    assert missing == [], f"`donkeyrl {name}` options without help: {missing}"
    with pytest.raises(SystemExit) as exc:
        main([*name.split(), "--help"])
    assert exc.value.code == 0 and "usage: donkeyrl" in capsys.readouterr().out
