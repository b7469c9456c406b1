/**
 * `rivet completions bash|zsh|fish`: a shell completion script generated from the command tree
 * that `main.ts` built for this very call (commands, subcommands, their visible options, the
 * choices of options and arguments), so a new command or flag completes without editing this
 * file.
 *
 * Every script follows the same steps: find the command path in the words typed so far (words
 * that name a subcommand of the path so far, skipping options and the values of options that
 * take one), then offer the choices of an option waiting for its value (or file names for a
 * value without choices), the options of the command when the word starts with `-`, else its
 * subcommands (or the choices of its argument).
 *
 * Layer: cli.
 *
 * @module
 */
import type { Command } from "commander";
import type { CommandContext } from "../main.ts";

/** One option as completion sees it. */
export interface CompletionOption {
  /** `-c` and `--config` forms. */
  readonly flags: readonly string[];
  readonly description: string;
  readonly takesValue: boolean;
  /** Accepted values, when the option lists them. */
  readonly choices: readonly string[];
}

/** One command of the tree. */
export interface CompletionCommand {
  /** Names from the root, e.g. `["state", "show"]`; empty for `rivet` itself. */
  readonly path: readonly string[];
  readonly description: string;
  readonly subcommands: readonly CompletionCommand[];
  readonly options: readonly CompletionOption[];
  /** Choices of the command's first argument (e.g. the shell of `completions`). */
  readonly argChoices: readonly string[];
}

/** The shells a script can be generated for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/** A supported shell. */
export type Shell = typeof SHELLS[number];

/**
 * Reads the command tree: visible commands and options only (hidden ones stay out), the root's
 * options other than help and version offered at every level (`--json-errors` is global).
 *
 * @param root The program.
 * @returns The tree.
 */
export function completionTree(root: Command): CompletionCommand {
  const help = root.createHelp();
  const optionsOf = (cmd: Command) =>
    help.visibleOptions(cmd).map((o) => ({
      flags: [o.short, o.long].filter((f): f is string => f !== undefined),
      description: o.description,
      takesValue: !o.isBoolean(),
      choices: o.argChoices ?? [],
    }));
  const global = optionsOf(root).filter((o) =>
    !o.flags.some((f) => f === "--help" || f === "--version")
  );
  const walk = (cmd: Command, path: string[]): CompletionCommand => {
    const own = optionsOf(cmd);
    const known = new Set(own.flatMap((o) => o.flags));
    return {
      path,
      description: cmd.description(),
      subcommands: help.visibleCommands(cmd)
        // commander's implicit `help [command]` is not one of rivet's commands.
        .filter((c) => cmd.commands.includes(c))
        .map((c) => walk(c, [...path, c.name()])),
      options: path.length === 0
        ? own
        : [...own, ...global.filter((g) => !g.flags.some((f) => known.has(f)))],
      argChoices: cmd.registeredArguments[0]?.argChoices ?? [],
    };
  };
  return walk(root, []);
}

function flatten(node: CompletionCommand): CompletionCommand[] {
  return [node, ...node.subcommands.flatMap(flatten)];
}

const key = (node: CompletionCommand) => node.path.join(" ");
const words = (list: readonly string[]) => list.join(" ");

/** The `case` arms shared by the bash and zsh scripts: `"<path>") <body> ;;`. */
function caseArms(
  nodes: readonly CompletionCommand[],
  body: (node: CompletionCommand) => string | undefined,
): string {
  return nodes.flatMap((n) => {
    const text = body(n);
    return text === undefined ? [] : [`    "${key(n)}") ${text} ;;`];
  }).join("\n");
}

/** The helper functions of the bash and zsh scripts (written in the syntax both accept). */
function tables(name: string, nodes: readonly CompletionCommand[]): string {
  const choiceArms = nodes.flatMap((n) =>
    n.options.filter((o) => o.choices.length > 0).flatMap((o) =>
      o.flags.map((f) => `    "${key(n)}|${f}") echo "${words(o.choices)}" ;;`)
    )
  ).join("\n");
  return `${name}_subcommands() {
  case "$1" in
${
    caseArms(nodes, (n) =>
      n.subcommands.length === 0
        ? undefined
        : `echo "${
          words(n.subcommands.map((s) => s.path.at(-1)!))
        }"`)
  }
  esac
}

${name}_options() {
  case "$1" in
${caseArms(nodes, (n) => `echo "${words(n.options.flatMap((o) => o.flags))}"`)}
  esac
}

${name}_value_options() {
  case "$1" in
${
    caseArms(nodes, (n) => {
      const list = n.options.filter((o) => o.takesValue).flatMap((o) => o.flags);
      return list.length === 0 ? undefined : `echo "${words(list)}"`;
    })
  }
  esac
}

${name}_choices() {
  case "$1|$2" in
${choiceArms}
  esac
}

${name}_arg_choices() {
  case "$1" in
${caseArms(nodes, (n) => n.argChoices.length === 0 ? undefined : `echo "${words(n.argChoices)}"`)}
  esac
}

# What follows a command: its subcommands, or the choices of its argument.
${name}_words() {
  echo "$(${name}_subcommands "$1") $(${name}_arg_choices "$1")"
}

# The command path of the words typed before the current one: the words that name a subcommand
# of the path so far, skipping options and the value of an option that takes one.
${name}_path() {
  local at="" prev="" word
  for word in "$@"; do
    if [[ -n "$prev" && " $(${name}_value_options "$at") " == *" $prev "* ]]; then
      prev=""
      continue
    fi
    prev="$word"
    [[ "$word" == -* ]] && continue
    if [[ " $(${name}_subcommands "$at") " == *" $word "* ]]; then
      at="\${at:+$at }$word"
    fi
  done
  echo "$at"
}
`;
}

function bashScript(tree: CompletionCommand): string {
  return `# bash completion for rivet, generated by \`rivet completions bash\`.
# Load it with:  source <(rivet completions bash)
${tables("_rivet", flatten(tree))}
_rivet() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" at
  at="$(_rivet_path "\${COMP_WORDS[@]:1:COMP_CWORD-1}")"
  COMPREPLY=()
  if [[ " $(_rivet_value_options "$at") " == *" $prev "* ]]; then
    local choices
    choices="$(_rivet_choices "$at" "$prev")"
    if [[ -z "$choices" ]]; then
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return 0
    fi
    mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$cur")
  elif [[ "$cur" == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_rivet_options "$at")" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -W "$(_rivet_words "$at")" -- "$cur")
  fi
  return 0
}

complete -o default -F _rivet rivet
`;
}

function zshScript(tree: CompletionCommand): string {
  return `#compdef rivet
# zsh completion for rivet, generated by \`rivet completions zsh\`.
# Load it with:  source <(rivet completions zsh)   (after compinit), or save it as _rivet in
# a folder of $fpath.
${tables("_rivet", flatten(tree))}
_rivet() {
  local cur="\${words[CURRENT]}" prev="\${words[CURRENT-1]}" at offer
  at="$(_rivet_path "\${(@)words[2,CURRENT-1]}")"
  if [[ " $(_rivet_value_options "$at") " == *" $prev "* ]]; then
    offer="$(_rivet_choices "$at" "$prev")"
    [[ -z "$offer" ]] && { _files; return; }
  elif [[ "$cur" == -* ]]; then
    offer="$(_rivet_options "$at")"
  else
    offer="$(_rivet_words "$at")"
  fi
  compadd -- \${=offer}
}

if [[ "\${zsh_eval_context[-1]}" == loadautofunc ]]; then
  _rivet "$@"
else
  compdef _rivet rivet
fi
`;
}

function fishQuote(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

function fishScript(tree: CompletionCommand): string {
  const nodes = flatten(tree);
  const paths = nodes.filter((n) => n.path.length > 0).map((n) => key(n));
  const valueFlags = [
    ...new Set(nodes.flatMap((n) => n.options.filter((o) => o.takesValue).flatMap((o) => o.flags))),
  ];
  const lines = [
    "# fish completion for rivet, generated by `rivet completions fish`.",
    "# Load it with:  rivet completions fish | source",
    "complete -c rivet -f",
    "function __rivet_path",
    "    set -l at ''",
    "    set -l skip 0",
    "    for word in (commandline -opc)[2..-1]",
    "        if test $skip -eq 1",
    "            set skip 0",
    "            continue",
    "        end",
    `        if contains -- $word ${words(valueFlags)}`,
    "            set skip 1",
    "            continue",
    "        end",
    "        string match -q -- '-*' $word; and continue",
    '        set -l next (string trim -- "$at $word")',
    `        if contains -- $next ${paths.map(fishQuote).join(" ")}`,
    "            set at $next",
    "        end",
    "    end",
    "    echo $at",
    "end",
  ];
  for (const n of nodes) {
    const at = `-n ${fishQuote(`test (__rivet_path) = ${fishQuote(key(n))}`)}`;
    for (const s of n.subcommands) {
      lines.push(
        `complete -c rivet ${at} -a ${fishQuote(s.path.at(-1)!)} -d ${fishQuote(s.description)}`,
      );
    }
    if (n.argChoices.length > 0) {
      lines.push(`complete -c rivet ${at} -a ${fishQuote(words(n.argChoices))}`);
    }
    for (const o of n.options) {
      const forms = o.flags.map((f) =>
        f.startsWith("--") ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`
      );
      const value = o.choices.length > 0
        ? ` -x -a ${fishQuote(words(o.choices))}`
        : o.takesValue
        ? " -r -F"
        : "";
      lines.push(
        `complete -c rivet ${at} ${forms.join(" ")}${value} -d ${fishQuote(o.description)}`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * The completion script of a shell for a command tree.
 *
 * @param shell `bash`, `zsh` or `fish`.
 * @param root The program (its tree is read as it is now).
 * @returns The script.
 */
export function completionScript(shell: Shell, root: Command): string {
  const tree = completionTree(root);
  if (shell === "bash") return bashScript(tree);
  if (shell === "zsh") return zshScript(tree);
  return fishScript(tree);
}

/**
 * Runs `rivet completions SHELL`: prints the script on stdout.
 *
 * @param shell The shell (commander checked it against {@linkcode SHELLS}).
 * @param root The program.
 * @param ctx Output.
 * @returns The exit code (0).
 */
export function completionsCommand(shell: Shell, root: Command, ctx: CommandContext): number {
  ctx.io.out(completionScript(shell, root));
  return 0;
}
