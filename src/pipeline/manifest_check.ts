/**
 * Self-consistency of a `manifest.json` document, as `rivet validate` checks it before it looks
 * at any object: version 1, `part_count` equal to the parts listed, `row_count` equal to the rows
 * of the committed parts, unique 1-based part ids and paths, and every part well-formed (a path,
 * counts for rows and size, an `xxh3:<16 hex>` content fingerprint, status `committed` or
 * `quarantined`). Pure: the caller reads the bytes (at most {@linkcode MANIFEST_MAX_BYTES}) and
 * verifies the parts at the destination (`verify.ts`).
 *
 * Layer: pipeline. Imports nothing.
 *
 * @module
 */

/**
 * Largest `manifest.json` rivet reads back (validate, and the leftovers sweep before a run): a
 * bigger file is not read, so a corrupt or hostile one cannot exhaust memory.
 */
export const MANIFEST_MAX_BYTES = 64 * 1024 * 1024;

/** One thing verified wrong, with a stable code. */
export interface ValidateProblem {
  /** E.g. `part.missing`, `part.size_mismatch`, `part.fingerprint_mismatch`, `success.mismatch`. */
  readonly code: string;
  readonly message: string;
}

/** A part as parsed from the manifest. */
export interface ParsedPart {
  readonly id: number;
  readonly path: string;
  readonly rows: number;
  readonly sizeBytes: number;
  /** 16 lowercase hex digits. */
  readonly xxh3: string;
  readonly md5: string | undefined;
}

/** What the manifest says, after the self-consistency checks. */
export interface ParsedManifest {
  readonly problems: ValidateProblem[];
  /** Well-formed committed parts, to verify at the destination. */
  readonly parts: ParsedPart[];
  /** Every path the manifest names (committed or quarantined, well-formed or not). */
  readonly paths: Set<string>;
  readonly committed: number;
  readonly quarantined: number;
  readonly runId?: string;
  readonly runStatus?: string;
  readonly rowCount?: number;
  readonly exportName?: string;
  readonly uri?: string;
  /** False when the document is too broken to check anything else (no parts checked). */
  readonly usable: boolean;
}

const hex16 = /^[0-9a-f]{16}$/;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const quote = (s: string) => `'${s}'`;

/**
 * Checks a manifest document for self-consistency.
 *
 * @param doc The parsed JSON.
 * @returns Problems (empty when consistent), the parts to verify and the run facts.
 */
export function checkManifest(doc: unknown): ParsedManifest {
  const problems: ValidateProblem[] = [];
  const paths = new Set<string>();
  const broken = (code: string, message: string): ParsedManifest => ({
    problems: [{ code, message }],
    parts: [],
    paths,
    committed: 0,
    quarantined: 0,
    usable: false,
  });
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return broken("manifest.invalid", "manifest.json is not a JSON object");
  }
  const m = doc as Record<string, unknown>;
  if (m.manifest_version !== 1) {
    return broken(
      "manifest.version",
      `manifest.json has manifest_version ${JSON.stringify(m.manifest_version)}; this rivet ` +
        "reads version 1 only",
    );
  }
  const text = (key: string): string | undefined => {
    const v = m[key];
    if (typeof v === "string" && v !== "") return v;
    problems.push({ code: "manifest.field", message: `manifest.json ${key} is not a string` });
    return undefined;
  };
  const runId = text("run_id");
  const exportName = text("export_name");
  const runStatus = text("status");
  if (runStatus !== undefined && !["success", "failed", "interrupted"].includes(runStatus)) {
    problems.push({
      code: "manifest.field",
      message: `manifest.json status '${runStatus}' is not success, failed or interrupted`,
    });
  }
  const destination = m.destination as { uri?: unknown } | null | undefined;
  const uri = typeof destination?.uri === "string" ? destination.uri : undefined;
  if (!Array.isArray(m.parts)) {
    return {
      ...broken("manifest.field", "manifest.json parts is not an array"),
      ...(runId === undefined ? {} : { runId }),
      ...(runStatus === undefined ? {} : { runStatus }),
    };
  }
  const parts: ParsedPart[] = [];
  const ids = new Set<number>();
  let committed = 0;
  let quarantined = 0;
  let committedRows = 0;
  let rowsKnown = true;
  m.parts.forEach((raw: unknown, index) => {
    const where = `manifest.json parts[${index}]`;
    if (typeof raw !== "object" || raw === null) {
      committed += 1;
      rowsKnown = false;
      problems.push({ code: "manifest.part", message: `${where} is not an object` });
      return;
    }
    const p = raw as Record<string, unknown>;
    const bad: string[] = [];
    const id = p.part_id;
    if (!Number.isSafeInteger(id) || (id as number) < 1) bad.push("part_id is not an integer ≥ 1");
    else if (ids.has(id as number)) {
      problems.push({ code: "manifest.part_id", message: `${where}: part_id ${id} is not unique` });
    } else ids.add(id as number);
    const path = typeof p.path === "string" && p.path !== "" ? p.path : undefined;
    if (path === undefined) bad.push("path is not a string");
    else if (paths.has(path)) {
      problems.push({
        code: "manifest.duplicate_path",
        message: `${where}: path '${path}' is listed twice`,
      });
    } else paths.add(path);
    if (!isCount(p.rows)) bad.push("rows is not a count");
    if (!isCount(p.size_bytes)) bad.push("size_bytes is not a count");
    const fp = typeof p.content_fingerprint === "string" ? p.content_fingerprint : "";
    if (!fp.startsWith("xxh3:") || !hex16.test(fp.slice(5))) {
      bad.push("content_fingerprint is not xxh3:<16 hex>");
    }
    const status = p.status;
    if (status !== "committed" && status !== "quarantined") {
      bad.push("status is not committed or quarantined");
    }
    if (status === "quarantined") {
      quarantined += 1;
    } else {
      committed += 1;
      if (isCount(p.rows)) committedRows += p.rows;
      else rowsKnown = false;
    }
    if (bad.length > 0) {
      problems.push({
        code: "manifest.part",
        message: `${where}${path === undefined ? "" : ` (${quote(path)})`}: ${bad.join(", ")}`,
      });
      return;
    }
    if (status !== "committed") return;
    parts.push({
      id: id as number,
      path: path!,
      rows: p.rows as number,
      sizeBytes: p.size_bytes as number,
      xxh3: fp.slice(5),
      md5: typeof p.content_md5 === "string" && p.content_md5 !== "" ? p.content_md5 : undefined,
    });
  });
  if (m.part_count !== m.parts.length) {
    problems.push({
      code: "manifest.part_count",
      message: `manifest.json part_count is ${JSON.stringify(m.part_count)} but it lists ` +
        `${m.parts.length} part(s)`,
    });
  }
  const rowCount = isCount(m.row_count) ? m.row_count : undefined;
  if (rowCount === undefined) {
    problems.push({ code: "manifest.field", message: "manifest.json row_count is not a count" });
  } else if (rowsKnown && rowCount !== committedRows) {
    problems.push({
      code: "manifest.row_count",
      message: `manifest.json row_count is ${rowCount} but its committed parts hold ` +
        `${committedRows} row(s)`,
    });
  }
  return {
    problems,
    parts,
    paths,
    committed,
    quarantined,
    usable: true,
    ...(runId === undefined ? {} : { runId }),
    ...(runStatus === undefined ? {} : { runStatus }),
    ...(rowCount === undefined ? {} : { rowCount }),
    ...(exportName === undefined ? {} : { exportName }),
    ...(uri === undefined ? {} : { uri }),
  };
}
