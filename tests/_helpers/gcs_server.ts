/**
 * A small in-repo Google Cloud Storage JSON-API server for the GCS destination tests
 * (npm has no GCS JSON-API emulator): `Deno.serve` on 127.0.0.1, a free port, objects kept in
 * memory.
 *
 * What it implements, as the real service answers it:
 * - buckets: `GET /b/{bucket}`, `POST /b` (create);
 * - simple uploads (`uploadType=multipart`, `multipart/related`; `uploadType=media`), with the
 *   `md5Hash` of the metadata part checked against the body;
 * - resumable uploads: `POST …?uploadType=resumable` answers a `Location:` session URL; a `PUT`
 *   to the session with `Content-Range: bytes a-b/` and a `*` total stores an intermediate chunk
 *   (a multiple of 256 KiB, all or nothing) and answers 308 with `Range: bytes=0-N`; a `*` range
 *   and a `*` total asks for the status; only a chunk that carries the total (`bytes a-b/T`, or
 *   an empty body with a `*` range and total `T`) finalises the object; `DELETE` on the session
 *   cancels it (499);
 * - object resources with `size`, `generation`, `md5Hash` (base64) and `crc32c` (base64 of the
 *   big-endian CRC32C, table-driven);
 * - `GET …/o/{name}` (metadata), `alt=media` (bytes, `Range:` honoured), `GET …/o?prefix=`
 *   (key order, `maxResults`/`pageToken` pagination), `DELETE`, `copyTo` and `rewriteTo`;
 * - the `ifGenerationMatch` precondition (0 = "must not exist") on uploads, copies and deletes,
 *   412 when it does not hold;
 * - both API prefixes: `/storage/v1/b/…` (the client with `apiEndpoint`) and `/b/…` (the client
 *   with `STORAGE_EMULATOR_HOST`); uploads under `/upload/storage/v1/…`.
 *
 * Test switches: `requireToken` (every API call but a session `PUT` needs `Authorization:
 * Bearer <token>`, else 401), an STS-like token endpoint at `POST /token` (for `external_account`
 * credentials), `maxPageSize`, and {@linkcode GcsServer.inject} to fail the Nth request of a
 * route with a status, or cut its connection before or after the request took effect.
 * `deno run -A tests/_helpers/gcs_server.ts [bucket...]` runs it as a process (it prints
 * `{"port":N}` and stops when stdin closes); {@linkcode spawnGcsServer} wraps that, so a memory
 * measurement of the client is not polluted by the server's own buffers.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** The routes a request can take, used to aim injected faults and to read the request log. */
export type GcsRoute =
  | "bucket.get"
  | "bucket.create"
  | "object.get"
  | "object.media"
  | "object.list"
  | "object.delete"
  | "object.copy"
  | "object.rewrite"
  | "upload.multipart"
  | "upload.media"
  | "upload.start"
  | "upload.chunk"
  | "upload.final"
  | "upload.status"
  | "upload.cancel"
  | "token"
  | "unknown";

/** One request the server answered. */
export interface GcsRequestRecord {
  readonly method: string;
  readonly route: GcsRoute;
  /** Path with the `/storage/v1` prefix removed when it was there. */
  readonly path: string;
  /** Whether the path came with the `/storage/v1` prefix (uploads always do). */
  readonly v1Prefix: boolean;
  readonly query: Readonly<Record<string, string>>;
  /** `Content-Range` of a session `PUT`. */
  readonly contentRange?: string;
  /** Body bytes the server read. */
  readonly bodyBytes: number;
  /** Status answered; 0 when the connection was cut. */
  status: number;
  readonly authorization?: string;
}

/** A fault to inject into matching requests. */
export interface GcsFault {
  /** Route to fail; any route when omitted. */
  readonly route?: GcsRoute;
  /** 1-based index among the requests of that route counted from now; default 1. */
  readonly nth?: number;
  /** How many consecutive matching requests fail from `nth` on; default 1. */
  readonly times?: number;
  /**
   * `status`: answer `status` (default 503) without doing anything; `cut_before`: read the
   * request, do nothing, then break the response mid-way (the client sees headers and a dying
   * body); `cut_after`: do the request, then break the response (a lost reply); `delay`: wait
   * `delayMs` after reading the request, then do it (a slow store).
   */
  readonly kind?: "status" | "cut_before" | "cut_after" | "delay";
  readonly status?: number;
  /** Wait of a `delay` fault; default 1 s. */
  readonly delayMs?: number;
}

/** Options of {@linkcode startGcsServer}. */
export interface GcsServerOptions {
  /** Buckets that exist from the start. */
  readonly buckets?: readonly string[];
  /** When set, API calls must carry `Authorization: Bearer <requireToken>` (else 401). */
  readonly requireToken?: string;
  /**
   * Token exchange at `POST /token`: a `subject_token` equal to `subjectToken` gets
   * `accessToken` back, anything else `400 invalid_grant`.
   */
  readonly sts?: { readonly subjectToken: string; readonly accessToken: string };
  /** Largest list page the server returns, whatever `maxResults` asks; default 1000. */
  readonly maxPageSize?: number;
  /** Flips the first byte of every object at finalisation (a store that corrupts data). */
  readonly corrupt?: boolean;
  /** Port to listen on; a free one by default. */
  readonly port?: number;
}

/** A stored object. */
export interface GcsStoredObject {
  readonly bucket: string;
  readonly name: string;
  readonly data: Uint8Array;
  readonly generation: string;
  readonly md5Hash: string;
  readonly crc32c: string;
  readonly contentType: string;
  readonly created: string;
}

/** A running server. */
export interface GcsServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`, the value of a destination's `endpoint`. */
  readonly url: string;
  readonly port: number;
  /** Every request answered so far, in arrival order. */
  readonly requests: GcsRequestRecord[];
  /** Resumable sessions started and neither finalised nor cancelled. */
  readonly openSessions: number;
  /** Creates a bucket (no-op when it exists). */
  createBucket(name: string): void;
  /** Stores an object directly, bypassing HTTP. */
  putObject(bucket: string, name: string, data: Uint8Array): GcsStoredObject;
  /** The object at `name`, or undefined. */
  object(bucket: string, name: string): GcsStoredObject | undefined;
  /** Object names of a bucket in list order. */
  names(bucket: string): string[];
  /** Arms a fault for upcoming requests. */
  inject(fault: GcsFault): void;
  /** Stops the server. Idempotent. */
  close(): Promise<void>;
}

/** Intermediate chunks of a resumable upload must be multiples of this. */
export const GCS_CHUNK_GRANULE = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, 8 bytes per step.

const CRC_TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    tables[0]![n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[0]![n]!;
    for (let t = 1; t < 8; t++) {
      c = (c >>> 8) ^ tables[0]![c & 0xff]!;
      tables[t]![n] = c >>> 0;
    }
  }
  return tables;
})();

/**
 * Continues a CRC32C over more bytes.
 *
 * @param crc The CRC so far (0 for none).
 * @param bytes The next bytes.
 * @returns The updated CRC, unsigned.
 */
export function crc32cUpdate(crc: number, bytes: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = ~crc >>> 0;
  let i = 0;
  const n = bytes.length;
  for (; i + 8 <= n; i += 8) {
    const lo = c ^
      (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    c = t7[lo & 0xff]! ^ t6[(lo >>> 8) & 0xff]! ^ t5[(lo >>> 16) & 0xff]! ^ t4[lo >>> 24]! ^
      t3[bytes[i + 4]!]! ^ t2[bytes[i + 5]!]! ^ t1[bytes[i + 6]!]! ^ t0[bytes[i + 7]!]!;
  }
  for (; i < n; i++) c = t0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * The GCS form of a CRC32C: base64 of its four big-endian bytes.
 *
 * @param crc An unsigned CRC32C.
 * @returns E.g. `AAAAAA==` for the CRC of nothing.
 */
export function crc32cBase64(crc: number): string {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, crc >>> 0, false);
  return base64(out);
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

// ---------------------------------------------------------------------------------------------

interface Session {
  readonly id: string;
  readonly bucket: string;
  readonly name: string;
  readonly contentType: string;
  readonly ifGenerationMatch: string | undefined;
  readonly parts: Uint8Array[];
  received: number;
  readonly md5: Hash;
  crc: number;
  /** Set once finalised: a repeated final chunk or status query gets the object again. */
  done?: GcsStoredObject;
}

interface ArmedFault {
  readonly route: GcsRoute | undefined;
  readonly first: number;
  readonly last: number;
  seen: number;
  readonly kind: "status" | "cut_before" | "cut_after" | "delay";
  readonly status: number;
  readonly delayMs: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly reason: string) {
    super(message);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Starts the server on 127.0.0.1.
 *
 * @param options Buckets, auth, paging and corruption switches.
 * @returns The running server; dispose it at the end of the test.
 *
 * @example
 * ```ts ignore
 * await using gcs = await startGcsServer({ buckets: ["rivet-test"] });
 * // destination: { type: gcs, bucket: rivet-test, endpoint: gcs.url, allow_anonymous: true }
 * ```
 */
export function startGcsServer(options: GcsServerOptions = {}): Promise<GcsServer> {
  const buckets = new Map<string, Map<string, GcsStoredObject>>();
  const sessions = new Map<string, Session>();
  const requests: GcsRequestRecord[] = [];
  const faults: ArmedFault[] = [];
  let generation = Date.now() * 1000;
  let sessionCounter = 0;
  const maxPage = options.maxPageSize ?? 1000;

  const createBucket = (name: string) => {
    if (!buckets.has(name)) buckets.set(name, new Map());
  };
  for (const b of options.buckets ?? []) createBucket(b);

  const store = (
    bucket: string,
    name: string,
    data: Uint8Array,
    contentType: string,
    sums?: { md5Hash: string; crc32c: string },
  ): GcsStoredObject => {
    let stored = data;
    let md5Hash = sums?.md5Hash;
    let crc = sums?.crc32c;
    if (options.corrupt === true && data.length > 0) {
      stored = data.slice();
      stored[0] = stored[0]! ^ 0xff;
      md5Hash = undefined;
    }
    md5Hash ??= createHash("md5").update(stored).digest("base64");
    crc = options.corrupt === true || crc === undefined
      ? crc32cBase64(crc32cUpdate(0, stored))
      : crc;
    const object: GcsStoredObject = {
      bucket,
      name,
      data: stored,
      generation: String(++generation),
      md5Hash,
      crc32c: crc,
      contentType,
      created: new Date().toISOString(),
    };
    bucketOf(bucket).set(name, object);
    return object;
  };

  const bucketOf = (bucket: string): Map<string, GcsStoredObject> => {
    const b = buckets.get(bucket);
    if (b === undefined) {
      throw new HttpError(404, "The specified bucket does not exist.", "notFound");
    }
    return b;
  };

  const checkGeneration = (
    bucket: string,
    name: string,
    want: string | undefined,
  ): void => {
    if (want === undefined) return;
    const current = bucketOf(bucket).get(name);
    const holds = want === "0" ? current === undefined : current?.generation === want;
    if (!holds) {
      throw new HttpError(
        412,
        "At least one of the pre-conditions you specified did not hold.",
        "conditionNotMet",
      );
    }
  };

  const resource = (o: GcsStoredObject, origin: string) => ({
    kind: "storage#object",
    id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `${origin}/storage/v1/b/${o.bucket}/o/${encodeURIComponent(o.name)}`,
    mediaLink: `${origin}/download/storage/v1/b/${o.bucket}/o/${
      encodeURIComponent(o.name)
    }?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: o.generation,
    metageneration: "1",
    contentType: o.contentType,
    storageClass: "STANDARD",
    size: String(o.data.length),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: `C${o.generation}`,
    timeCreated: o.created,
    updated: o.created,
  });

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json; charset=UTF-8", ...headers },
    });

  const errorResponse = (e: HttpError) =>
    json(e.status, {
      error: {
        code: e.status,
        message: e.message,
        errors: [{ message: e.message, domain: "global", reason: e.reason }],
      },
    });

  const classify = (method: string, parts: string[], query: URLSearchParams, upload: boolean) => {
    if (upload) {
      if (method === "POST") {
        const t = query.get("uploadType");
        return t === "resumable"
          ? "upload.start"
          : t === "multipart"
          ? "upload.multipart"
          : t === "media"
          ? "upload.media"
          : "unknown";
      }
      return "unknown";
    }
    // parts: ["b", bucket, "o", name, ...]
    if (parts[0] !== "b") return "unknown";
    if (parts.length === 1) return method === "POST" ? "bucket.create" : "unknown";
    if (parts.length === 2) return method === "GET" ? "bucket.get" : "unknown";
    if (parts[2] !== "o") return "unknown";
    if (parts.length === 3) return method === "GET" ? "object.list" : "unknown";
    if (parts.length === 4) {
      if (method === "GET") return query.get("alt") === "media" ? "object.media" : "object.get";
      if (method === "DELETE") return "object.delete";
      return "unknown";
    }
    if (parts.length === 9 && parts[5] === "b" && parts[7] === "o" && method === "POST") {
      return parts[4] === "rewriteTo"
        ? "object.rewrite"
        : parts[4] === "copyTo"
        ? "object.copy"
        : "unknown";
    }
    return "unknown";
  };

  const armedFor = (route: GcsRoute): ArmedFault | undefined => {
    // Counts each fault's own matching requests, so two faults on different routes are
    // independent.
    let hit: ArmedFault | undefined;
    for (const f of faults) {
      if (f.route !== undefined && f.route !== route) continue;
      f.seen++;
      if (hit === undefined && f.seen >= f.first && f.seen <= f.last) hit = f;
    }
    return hit;
  };

  // A reply that promises 64 bytes and sends one: the client's connection breaks mid-body
  // (headers arrive, the body read fails), and nothing is logged on the server side.
  const cutResponse = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode("{"));
          controller.close();
        },
      }),
      { status: 200, headers: { "content-type": "application/json", "content-length": "64" } },
    );

  const handle = async (
    req: Request,
    record: (r: Omit<GcsRequestRecord, "status">) => GcsRequestRecord,
  ): Promise<Response> => {
    const url = new URL(req.url);
    const origin = `${url.protocol}//${req.headers.get("host") ?? url.host}`;
    const raw = url.pathname;
    let upload = false;
    let v1Prefix = false;
    let path = raw;
    if (raw === "/token") {
      const body = await req.arrayBuffer();
      const rec = record({
        method: req.method,
        route: "token",
        path: raw,
        v1Prefix: false,
        query: {},
        bodyBytes: body.byteLength,
      });
      const form = new URLSearchParams(decoder.decode(body));
      if (options.sts !== undefined && form.get("subject_token") === options.sts.subjectToken) {
        rec.status = 200;
        return json(200, {
          access_token: options.sts.accessToken,
          issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
          token_type: "Bearer",
          expires_in: 3600,
        });
      }
      rec.status = 400;
      return json(400, {
        error: "invalid_grant",
        error_description: "The subject token is invalid.",
      });
    }
    if (raw.startsWith("/upload/storage/v1/")) {
      upload = true;
      v1Prefix = true;
      path = raw.slice("/upload/storage/v1".length);
    } else if (raw.startsWith("/storage/v1/")) {
      v1Prefix = true;
      path = raw.slice("/storage/v1".length);
    }
    const parts = path.split("/").slice(1).map((p) => decodeURIComponent(p));
    const query = url.searchParams;
    const sessionId = upload ? query.get("upload_id") : null;
    const contentRange = req.headers.get("content-range") ?? undefined;
    let route: GcsRoute;
    if (sessionId !== null) {
      if (req.method === "DELETE") route = "upload.cancel";
      else if (contentRange === undefined || /^bytes \*\/\*$/.test(contentRange)) {
        route = "upload.status";
      } else route = /\/\d+$/.test(contentRange) ? "upload.final" : "upload.chunk";
    } else route = classify(req.method, parts, query, upload) as GcsRoute;

    // Reads the whole body first: a cut connection makes this throw, and nothing is applied.
    const body = new Uint8Array(await req.arrayBuffer());
    const rec = record({
      method: req.method,
      route,
      path,
      v1Prefix,
      query: Object.fromEntries(query),
      ...(contentRange === undefined ? {} : { contentRange }),
      bodyBytes: body.length,
      ...(req.headers.has("authorization")
        ? { authorization: req.headers.get("authorization")! }
        : {}),
    });

    const fault = armedFor(route);
    if (fault?.kind === "status") {
      rec.status = fault.status;
      return errorResponse(new HttpError(fault.status, "Injected failure", "backendError"));
    }
    if (fault?.kind === "cut_before") {
      rec.status = 0;
      return cutResponse();
    }
    if (fault?.kind === "delay") await new Promise((r) => setTimeout(r, fault.delayMs));

    const auth = req.headers.get("authorization");
    if (options.requireToken !== undefined && sessionId === null) {
      if (auth !== `Bearer ${options.requireToken}`) {
        rec.status = 401;
        return errorResponse(
          new HttpError(
            401,
            auth === null
              ? "Anonymous caller does not have storage.objects.list access to the Google Cloud Storage bucket."
              : "Invalid Credentials",
            auth === null ? "required" : "authError",
          ),
        );
      }
    }

    let response: Response;
    try {
      response = route.startsWith("upload.")
        ? handleUpload(route, parts, query, body, req.headers, origin, sessionId)
        : handleJson(route, parts, query, req.headers, origin);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      response = errorResponse(e);
    }
    if (fault?.kind === "cut_after") {
      rec.status = 0;
      await response.body?.cancel();
      return cutResponse();
    }
    rec.status = response.status;
    return response;
  };

  const handleJson = (
    route: GcsRoute,
    parts: string[],
    query: URLSearchParams,
    headers: Headers,
    origin: string,
  ): Response => {
    const bucket = parts[1] ?? "";
    const name = parts[3] ?? "";
    switch (route) {
      case "bucket.create": {
        throw new HttpError(400, "Use the test helper to create buckets", "invalid");
      }
      case "bucket.get": {
        bucketOf(bucket);
        return json(200, { kind: "storage#bucket", id: bucket, name: bucket });
      }
      case "object.get":
      case "object.media": {
        const o = bucketOf(bucket).get(name);
        if (o === undefined) {
          throw new HttpError(404, `No such object: ${bucket}/${name}`, "notFound");
        }
        if (route === "object.get") return json(200, resource(o, origin));
        const range = /^bytes=(\d+)-(\d*)$/.exec(headers.get("range") ?? "");
        if (range !== null) {
          const start = Number(range[1]);
          const end = range[2] === ""
            ? o.data.length - 1
            : Math.min(Number(range[2]), o.data.length - 1);
          if (start >= o.data.length) {
            throw new HttpError(
              416,
              "Requested range not satisfiable",
              "requestedRangeNotSatisfiable",
            );
          }
          return new Response(o.data.slice(start, end + 1), {
            status: 206,
            headers: {
              "content-type": o.contentType,
              "content-range": `bytes ${start}-${end}/${o.data.length}`,
              "x-goog-generation": o.generation,
            },
          });
        }
        return new Response(o.data.slice(), {
          status: 200,
          headers: {
            "content-type": o.contentType,
            "x-goog-generation": o.generation,
            "x-goog-hash": `crc32c=${o.crc32c},md5=${o.md5Hash}`,
          },
        });
      }
      case "object.list": {
        const b = bucketOf(bucket);
        const prefix = query.get("prefix") ?? "";
        const max = Math.min(Number(query.get("maxResults") ?? maxPage) || maxPage, maxPage);
        const after = query.get("pageToken");
        const startAfter = after === null ? undefined : decoder.decode(fromBase64(after));
        const names = sortedNames(b).filter((n) =>
          n.startsWith(prefix) && (startAfter === undefined || compareUtf8(n, startAfter) > 0)
        );
        const page = names.slice(0, max);
        const body: Record<string, unknown> = {
          kind: "storage#objects",
          items: page.map((n) => resource(b.get(n)!, origin)),
        };
        if (names.length > max) {
          body.nextPageToken = base64(encoder.encode(page[page.length - 1]!));
        }
        if (page.length === 0) delete body.items;
        return json(200, body);
      }
      case "object.delete": {
        const b = bucketOf(bucket);
        if (!b.has(name)) throw new HttpError(404, `No such object: ${bucket}/${name}`, "notFound");
        checkGeneration(bucket, name, query.get("ifGenerationMatch") ?? undefined);
        b.delete(name);
        return new Response(null, { status: 204 });
      }
      case "object.copy":
      case "object.rewrite": {
        const source = bucketOf(bucket).get(name);
        const destBucket = parts[6] ?? "";
        const destName = parts[8] ?? "";
        if (source === undefined) {
          throw new HttpError(404, `No such object: ${bucket}/${name}`, "notFound");
        }
        bucketOf(destBucket);
        checkGeneration(destBucket, destName, query.get("ifGenerationMatch") ?? undefined);
        const copy = store(destBucket, destName, source.data, source.contentType, source);
        if (route === "object.copy") return json(200, resource(copy, origin));
        return json(200, {
          kind: "storage#rewriteResponse",
          totalBytesRewritten: String(copy.data.length),
          objectSize: String(copy.data.length),
          done: true,
          resource: resource(copy, origin),
        });
      }
      default:
        throw new HttpError(404, "Not Found", "notFound");
    }
  };

  const handleUpload = (
    route: GcsRoute,
    parts: string[],
    query: URLSearchParams,
    body: Uint8Array,
    headers: Headers,
    origin: string,
    sessionId: string | null,
  ): Response => {
    const bucket = parts[1] ?? "";
    if (route === "upload.multipart" || route === "upload.media") {
      let meta: Record<string, unknown> = {};
      let media = body;
      let contentType = headers.get("content-type") ?? "application/octet-stream";
      if (route === "upload.multipart") {
        const split = splitMultipart(body, headers.get("content-type") ?? "");
        meta = JSON.parse(decoder.decode(split.meta)) as Record<string, unknown>;
        media = split.media;
        contentType = typeof meta.contentType === "string"
          ? meta.contentType
          : split.mediaType ?? "application/octet-stream";
      }
      const name = typeof meta.name === "string" ? meta.name : query.get("name");
      if (name === null || name === "") {
        throw new HttpError(400, "Required: object name", "required");
      }
      bucketOf(bucket);
      const md5Hash = createHash("md5").update(media).digest("base64");
      if (typeof meta.md5Hash === "string" && meta.md5Hash !== md5Hash) {
        throw new HttpError(
          400,
          `Provided MD5 hash "${meta.md5Hash}" doesn't match calculated MD5 hash "${md5Hash}".`,
          "invalid",
        );
      }
      checkGeneration(bucket, name, query.get("ifGenerationMatch") ?? undefined);
      const object = store(bucket, name, media, contentType, {
        md5Hash,
        crc32c: crc32cBase64(crc32cUpdate(0, media)),
      });
      return json(200, resource(object, origin));
    }
    if (route === "upload.start") {
      bucketOf(bucket);
      let meta: Record<string, unknown> = {};
      if (body.length > 0) meta = JSON.parse(decoder.decode(body)) as Record<string, unknown>;
      const name = typeof meta.name === "string" ? meta.name : query.get("name");
      if (name === null || name === "") {
        throw new HttpError(400, "Required: object name", "required");
      }
      const ifGenerationMatch = query.get("ifGenerationMatch") ?? undefined;
      checkGeneration(bucket, name, ifGenerationMatch);
      const id = `s${++sessionCounter}_${crypto.randomUUID().replaceAll("-", "")}`;
      sessions.set(id, {
        id,
        bucket,
        name,
        contentType: headers.get("x-upload-content-type") ??
          (typeof meta.contentType === "string" ? meta.contentType : "application/octet-stream"),
        ifGenerationMatch,
        parts: [],
        received: 0,
        md5: createHash("md5"),
        crc: 0,
      });
      const location = `${origin}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?` +
        new URLSearchParams({ uploadType: "resumable", name, upload_id: id });
      return new Response(null, { status: 200, headers: { location, "content-length": "0" } });
    }
    const session = sessions.get(sessionId ?? "") ?? doneSessions.get(sessionId ?? "");
    if (session === undefined) {
      throw new HttpError(404, "No such upload session", "notFound");
    }
    if (route === "upload.cancel") {
      sessions.delete(session.id);
      return new Response(null, { status: 499 });
    }
    if (session.done !== undefined) {
      // A finalised session answers every later request with the object (a lost final reply
      // is recovered this way).
      return json(200, resource(session.done, origin));
    }
    const status308 = () => {
      const h: Record<string, string> = { "content-length": "0" };
      if (session.received > 0) h.range = `bytes=0-${session.received - 1}`;
      return new Response(null, { status: 308, headers: h });
    };
    if (route === "upload.status") return status308();
    const m = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(headers.get("content-range") ?? "");
    if (m === null) throw new HttpError(400, "Invalid Content-Range", "invalid");
    const total = m[3] === "*" ? undefined : Number(m[3]);
    if (m[1] === undefined) {
      if (body.length !== 0) throw new HttpError(400, "Body without a byte range", "invalid");
    } else {
      const start = Number(m[1]);
      const end = Number(m[2]);
      if (end < start || end - start + 1 !== body.length) {
        throw new HttpError(400, "Content-Range does not match the body length", "invalid");
      }
      if (start > session.received) {
        throw new HttpError(400, "Chunk starts after the bytes received so far", "invalid");
      }
      if (total === undefined && body.length % GCS_CHUNK_GRANULE !== 0) {
        throw new HttpError(
          400,
          "Intermediate chunks must be a multiple of 256 KiB",
          "invalid",
        );
      }
      // Bytes resent below the persisted offset are ignored, as the service does.
      const fresh = body.subarray(session.received - start);
      if (fresh.length > 0) {
        session.parts.push(fresh.slice());
        session.md5.update(fresh);
        session.crc = crc32cUpdate(session.crc, fresh);
        session.received += fresh.length;
      }
    }
    if (total === undefined) return status308();
    if (total !== session.received) {
      throw new HttpError(
        400,
        `Upload declared ${total} bytes but ${session.received} arrived`,
        "invalid",
      );
    }
    checkGeneration(session.bucket, session.name, session.ifGenerationMatch);
    const data = concat(session.parts, session.received);
    const object = store(session.bucket, session.name, data, session.contentType, {
      md5Hash: session.md5.digest("base64"),
      crc32c: crc32cBase64(session.crc),
    });
    session.parts.length = 0;
    session.done = object;
    sessions.delete(session.id);
    doneSessions.set(session.id, session);
    return json(200, resource(object, origin));
  };
  const doneSessions = new Map<string, Session>();

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen() {} },
    async (req) => {
      let rec: GcsRequestRecord | undefined;
      try {
        return await handle(req, (r) => {
          rec = { ...r, status: 0 };
          requests.push(rec);
          return rec;
        });
      } catch (e) {
        // A request whose body was cut mid-way lands here: nothing was applied.
        if (rec !== undefined) rec.status = 0;
        const message = e instanceof Error ? e.message : String(e);
        return json(500, { error: { code: 500, message, errors: [] } });
      }
    },
  );
  const port = server.addr.port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await server.shutdown();
  };
  return Promise.resolve({
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get openSessions() {
      return sessions.size;
    },
    createBucket,
    putObject: (bucket, name, data) => {
      createBucket(bucket);
      return store(bucket, name, data.slice(), "application/octet-stream");
    },
    object: (bucket, name) => buckets.get(bucket)?.get(name),
    names: (bucket) => sortedNames(buckets.get(bucket) ?? new Map()),
    inject: (fault) => {
      const first = fault.nth ?? 1;
      faults.push({
        route: fault.route,
        first,
        last: first + (fault.times ?? 1) - 1,
        seen: 0,
        kind: fault.kind ?? "status",
        status: fault.status ?? 503,
        delayMs: fault.delayMs ?? 1000,
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  });
}

function sortedNames(b: Map<string, GcsStoredObject>): string[] {
  return [...b.keys()].sort(compareUtf8);
}

/** Orders names as the service lists them: by their UTF-8 bytes. */
function compareUtf8(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  outer: for (let i = haystack.indexOf(first!, from); i >= 0; i = haystack.indexOf(first!, i + 1)) {
    if (i + needle.length > haystack.length) return -1;
    for (let j = 1; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Splits a two-part `multipart/related` body: JSON metadata, then the media. */
function splitMultipart(
  body: Uint8Array,
  contentType: string,
): { meta: Uint8Array; media: Uint8Array; mediaType: string | undefined } {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (m === null) throw new HttpError(400, "multipart/related without a boundary", "invalid");
  const boundary = m[1] ?? m[2]!;
  const dash = encoder.encode(`--${boundary}`);
  const crlf2 = encoder.encode("\r\n\r\n");
  const parts: { headers: string; data: Uint8Array }[] = [];
  let at = indexOf(body, dash, 0);
  while (at >= 0) {
    const after = at + dash.length;
    if (body[after] === 0x2d && body[after + 1] === 0x2d) break; // closing delimiter
    const headEnd = indexOf(body, crlf2, after);
    if (headEnd < 0) break;
    const next = indexOf(body, encoder.encode(`\r\n--${boundary}`), headEnd + 4);
    if (next < 0) break;
    parts.push({
      headers: decoder.decode(body.subarray(after, headEnd)),
      data: body.subarray(headEnd + 4, next),
    });
    at = next + 2;
  }
  if (parts.length !== 2) {
    throw new HttpError(400, "multipart/related body must have two parts", "invalid");
  }
  const mediaType = /content-type:\s*([^\r\n]+)/i.exec(parts[1]!.headers)?.[1]?.trim();
  return { meta: parts[0]!.data, media: parts[1]!.data, mediaType };
}

/** A server running in its own process (see the module doc). */
export interface SpawnedGcsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** Stops the process. Idempotent. */
  close(): Promise<void>;
}

/**
 * Runs the server in a child Deno process.
 *
 * @param buckets Buckets that exist from the start.
 * @returns The child's URL; dispose it to stop the child.
 */
export async function spawnGcsServer(buckets: readonly string[]): Promise<SpawnedGcsServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, ...buckets],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("gcs_server child exited before printing its port");
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const { port } = JSON.parse(text.slice(0, text.indexOf("\n"))) as { port: number };
  const writer = child.stdin.getWriter();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await writer.close().catch(() => {});
    await child.status;
  };
  return { url: `http://127.0.0.1:${port}`, port, close, [Symbol.asyncDispose]: close };
}

if (import.meta.main) {
  const server = await startGcsServer({ buckets: Deno.args });
  console.log(JSON.stringify({ port: server.port }));
  // Stops when the parent closes stdin (or dies).
  for await (const _ of Deno.stdin.readable) { /* drain */ }
  await server.close();
}
