/**
 * Test support (TDS test server): a T-SQL tokenizer that respects `'…'`, `N'…'`, `[…]`, `"…"`,
 * `--` and block comments, and turns a token list into a tree of parenthesised groups so
 * rewrites can see function calls and their arguments; plus statement splitting of a batch.
 *
 * @module
 */

/** One token. `text` is the value without quotes for strings and quoted identifiers. */
export interface Tok {
  readonly kind: "ws" | "word" | "qident" | "str" | "num" | "hex" | "var" | "op";
  readonly text: string;
  /** `N'…'` */
  readonly national?: boolean;
}

/** A parenthesised group. */
export interface Group {
  readonly kind: "group";
  readonly items: Node[];
}

/** A token or a group. */
export type Node = Tok | Group;

/** Splits T-SQL text into tokens (comments become whitespace). */
export function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = sql.length;
  const quoted = (close: string, start: number): [string, number] => {
    let v = "";
    let j = start;
    while (j < n) {
      const c = sql[j]!;
      if (c === close) {
        if (sql[j + 1] === close) {
          v += close;
          j += 2;
          continue;
        }
        return [v, j + 1];
      }
      v += c;
      j++;
    }
    throw new SyntaxError(`Unclosed quotation mark after the character string '${v}'.`);
  };
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      let j = i;
      while (j < n && /\s/.test(sql[j]!)) j++;
      out.push({ kind: "ws", text: sql.slice(i, j) });
      i = j;
    } else if (c === "-" && sql[i + 1] === "-") {
      const j = sql.indexOf("\n", i);
      out.push({ kind: "ws", text: " " });
      i = j < 0 ? n : j;
    } else if (c === "/" && sql[i + 1] === "*") {
      const j = sql.indexOf("*/", i + 2);
      out.push({ kind: "ws", text: " " });
      i = j < 0 ? n : j + 2;
    } else if (c === "'" || ((c === "N" || c === "n") && sql[i + 1] === "'")) {
      const national = c !== "'";
      const [v, j] = quoted("'", i + (national ? 2 : 1));
      out.push({ kind: "str", text: v, national });
      i = j;
    } else if (c === "[") {
      const [v, j] = quoted("]", i + 1);
      out.push({ kind: "qident", text: v });
      i = j;
    } else if (c === '"') {
      const [v, j] = quoted('"', i + 1);
      out.push({ kind: "qident", text: v });
      i = j;
    } else if (c === "0" && (sql[i + 1] === "x" || sql[i + 1] === "X")) {
      let j = i + 2;
      while (j < n && /[0-9a-fA-F]/.test(sql[j]!)) j++;
      out.push({ kind: "hex", text: sql.slice(i + 2, j) });
      i = j;
    } else if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(sql[i + 1] ?? ""))) {
      const m = /^(\d*\.?\d*(?:[eE][+-]?\d+)?)/.exec(sql.slice(i))!;
      out.push({ kind: "num", text: m[1]! });
      i += m[1]!.length;
    } else if (c === "@") {
      const m = /^@@?[\w$#@]*/.exec(sql.slice(i))!;
      out.push({ kind: "var", text: m[0] });
      i += m[0].length;
    } else if (/[\p{L}_#]/u.test(c)) {
      const m = /^[\p{L}\p{N}_#$@]+/u.exec(sql.slice(i))!;
      out.push({ kind: "word", text: m[0] });
      i += m[0].length;
    } else {
      const two = sql.slice(i, i + 2);
      const op = ["<=", ">=", "<>", "!=", "!<", "!>", "::", "||"].includes(two) ? two : c;
      out.push({ kind: "op", text: op });
      i += op.length;
    }
  }
  return out;
}

/** Nests tokens by parentheses. */
export function tree(tokens: readonly Tok[]): Node[] {
  const stack: Node[][] = [[]];
  for (const t of tokens) {
    if (t.kind === "op" && t.text === "(") stack.push([]);
    else if (t.kind === "op" && t.text === ")") {
      if (stack.length === 1) throw new SyntaxError("Incorrect syntax near ')'.");
      const items = stack.pop()!;
      stack.at(-1)!.push({ kind: "group", items });
    } else stack.at(-1)!.push(t);
  }
  if (stack.length !== 1) throw new SyntaxError("Incorrect syntax near '('.");
  return stack[0]!;
}

/** Whether a node is the keyword `word` (case-insensitive). */
export function isWord(n: Node | undefined, ...words: string[]): boolean {
  return n !== undefined && n.kind === "word" && words.includes(n.text.toUpperCase());
}

/** Whether a node is the operator `op`. */
export function isOp(n: Node | undefined, op: string): boolean {
  return n !== undefined && n.kind === "op" && n.text === op;
}

/** The nodes without whitespace. */
export function solid(nodes: readonly Node[]): Node[] {
  return nodes.filter((n) => n.kind !== "ws");
}

/** Splits nodes at top-level commas. */
export function splitCommas(nodes: readonly Node[]): Node[][] {
  const parts: Node[][] = [[]];
  for (const n of nodes) {
    if (isOp(n, ",")) parts.push([]);
    else parts.at(-1)!.push(n);
  }
  return parts;
}

const words = (list: string) => new Set(list.split(" "));
/** Statements that never continue into a following SELECT/INSERT/… without a `;`. */
const SHORT = words(
  "SET WAITFOR USE KILL DECLARE DROP TRUNCATE GRANT REVOKE DENY BEGIN COMMIT ROLLBACK CREATE EXEC EXECUTE",
);
/** Keywords a statement starts with. */
const STARTS = new Set([...SHORT, "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "ALTER"]);
/** Keywords that always begin a statement. */
const ALWAYS = words("WAITFOR USE KILL DECLARE DROP TRUNCATE GRANT COMMIT");

/**
 * Splits a batch into statements: at top-level `;`, and where T-SQL lets a statement follow
 * another without one (tedious' initial `set … set …` batch, `SET …` then `SELECT`, `CREATE TABLE
 * (…)` then `INSERT`).
 */
export function splitStatements(nodes: readonly Node[]): Node[][] {
  const out: Node[][] = [];
  let cur: Node[] = [];
  let first: string | undefined;
  let second: string | undefined;
  let prev: Node | undefined;
  const push = () => {
    if (solid(cur).length > 0) out.push(cur);
    cur = [];
    first = second = prev = undefined;
  };
  for (const n of nodes) {
    if (isOp(n, ";")) {
      push();
      continue;
    }
    if (n.kind === "word" && first !== undefined) {
      const w = n.text.toUpperCase();
      const afterAs = isWord(prev, "AS", "UNION", "ALL", "EXCEPT", "INTERSECT");
      const creatingView = first === "CREATE" && second === "VIEW";
      const granting = ["GRANT", "REVOKE", "DENY"].includes(first) &&
        ["SELECT", "INSERT", "UPDATE", "DELETE", "EXEC", "EXECUTE"].includes(w);
      const splits = STARTS.has(w) && !afterAs && !creatingView && !granting && (
        ALWAYS.has(w) ||
        (w === "SET" && first !== "UPDATE" && first !== "ALTER") ||
        w === "CREATE" || w === "BEGIN" || w === "ROLLBACK" ||
        SHORT.has(first)
      );
      if (splits) push();
    }
    if (n.kind === "word") {
      if (first === undefined) first = n.text.toUpperCase();
      else if (second === undefined) second = n.text.toUpperCase();
    }
    cur.push(n);
    if (n.kind !== "ws") prev = n;
  }
  push();
  return out;
}
