"""Shell completion scripts for bash, zsh and fish, built from the CLI's own parser.

Built from the argparse tree, so a command or option added to `monitor.cli` completes
without an edit here: the commands, their subcommands, and each one's options.
"""

from __future__ import annotations

import argparse


def _tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = (),
          ) -> dict[tuple[str, ...], tuple[list[str], list[str]]]:
    """Command path -> (its subcommands, its options)."""
    subs: dict[str, argparse.ArgumentParser] = {}
    options: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subs.update(action.choices)
        else:
            options += [o for o in action.option_strings if o.startswith("--")]
    out = {path: (list(subs), options)}
    for name, child in subs.items():
        out.update(_tree(child, (*path, name)))
    return out


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    tree = _tree(parser)
    prog = parser.prog
    if shell == "fish":
        return _fish(prog, tree)
    cases = []
    for path, (subs, options) in sorted(tree.items()):
        words = " ".join(subs + options)
        cases.append(f'    "{" ".join(path)}") words="{words}" ;;')
    body = "\n".join(cases)
    func = f"_{prog}_complete"
    common = f"""{func}_words() {{
  local path="$1" words=""
  case "$path" in
{body}
  esac
  echo "$words"
}}"""
    if shell == "bash":
        return f"""# bash completion for {prog}: eval "$({prog} completion bash)"
{common}
{func}() {{
  local path="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${{COMP_WORDS[i]}}"
    [[ "$w" == -* ]] && continue
    if [[ " $({func}_words "$path") " == *" $w "* ]]; then path="${{path:+$path }}$w"; fi
  done
  COMPREPLY=($(compgen -W "$({func}_words "$path")" -- "${{COMP_WORDS[COMP_CWORD]}}"))
}}
complete -o default -F {func} {prog}
"""
    return f"""#compdef {prog}
# zsh completion for {prog}: eval "$({prog} completion zsh)"
{common}
{func}() {{
  local path="" w
  for w in "${{(@)words[2,CURRENT-1]}}"; do
    [[ "$w" == -* ]] && continue
    if [[ " $({func}_words "$path") " == *" $w "* ]]; then path="${{path:+$path }}$w"; fi
  done
  compadd -- ${{=$({func}_words "$path")}}
  _files
}}
compdef {func} {prog}
"""


def _fish(prog: str, tree: dict[tuple[str, ...], tuple[list[str], list[str]]]) -> str:
    lines = [f"# fish completion for {prog}: {prog} completion fish | source",
             f"complete -c {prog} -f"]
    for path, (subs, options) in sorted(tree.items()):
        if path:
            cond = " and ".join(f"__fish_seen_subcommand_from {p}" for p in path)
        else:
            cond = "__fish_use_subcommand"
        if len(path) == 1:  # not after its own subcommands
            others = list(subs)
            if others:
                cond += f"; and not __fish_seen_subcommand_from {' '.join(others)}"
        cond = cond.replace(" and __fish", "; and __fish")
        for name in subs:
            lines.append(f"complete -c {prog} -n '{cond}' -a {name}")
        for option in options:
            lines.append(f"complete -c {prog} -n '{cond}' -l {option[2:]}")
    return "\n".join(lines) + "\n"
