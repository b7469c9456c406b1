import assert from "node:assert/strict";
import {
  classifyMssql,
  classifyMysql,
  classifyPostgres,
  type MysqlProbe,
  poolerWarning,
  reportFront,
} from "./_pooler.ts";
import type { Warning } from "../core/spec.ts";

const mariadb: MysqlProbe = {
  handshakeId: 12,
  serverVersion: "5.5.5-10.11.6-MariaDB-0+deb12u1",
  versionComment: "Debian 12",
  connectionIds: [12],
};

Deno.test("classifyMysql: direct, ProxySQL, MaxScale, multiplexed, an unnamed proxy", () => {
  const cases: [Partial<MysqlProbe>, string][] = [
    [{}, "direct"],
    [{ versionComment: "(ProxySQL)" }, "proxysql"],
    [{ connectionIds: [40, 40], handshakeId: 3, proxyVersion: "2.5.5-10-g195bd70" }, "proxysql"],
    [{ proxysqlSession: true }, "proxysql"],
    [{ versionComment: "MariaDB MaxScale" }, "maxscale"],
    [{ serverVersion: "10.11.6-MariaDB-maxscale" }, "maxscale"],
    [{ handshakeId: 7, connectionIds: [40, 41] }, "multiplexed"],
    [{ handshakeId: 7, connectionIds: [40, 40] }, "proxy"],
    // A probe that could not read CONNECTION_ID() says nothing.
    [{ handshakeId: 7, connectionIds: [] }, "direct"],
  ];
  for (const [change, kind] of cases) {
    assert.equal(classifyMysql({ ...mariadb, ...change }), kind, JSON.stringify(change));
  }
});

Deno.test("classifyPostgres and classifyMssql read the session ids", () => {
  assert.equal(classifyPostgres({ loginPid: 100, backendPids: [100] }), "direct");
  assert.equal(classifyPostgres({ loginPid: -5, backendPids: [100, 100] }), "pooler");
  assert.equal(classifyPostgres({ loginPid: -5, backendPids: [100, 101] }), "transaction_pooler");
  assert.equal(classifyPostgres({ loginPid: 100, backendPids: [] }), "direct");
  assert.equal(classifyMssql([55, 55]), "direct");
  assert.equal(classifyMssql([55, 61]), "multiplexed");
  assert.equal(classifyMssql([55, undefined]), "direct");
});

Deno.test("poolerWarning: one code per engine family, the kind first in the message", () => {
  const codes =
    (["transaction_pooler", "pooler", "proxysql", "maxscale", "multiplexed", "proxy"] as const)
      .map((kind) => [kind, poolerWarning(kind, "ids 1 and 2")?.code]);
  assert.deepEqual(codes, [
    ["transaction_pooler", "source.pooler_transaction"],
    ["pooler", "source.pooler_detected"],
    ["proxysql", "source.proxy_detected"],
    ["maxscale", "source.proxy_detected"],
    ["multiplexed", "source.proxy_detected"],
    ["proxy", "source.proxy_detected"],
  ]);
  assert.equal(poolerWarning("direct", ""), undefined);
  assert.match(
    poolerWarning("proxysql", "version comment '(ProxySQL)'")!.message,
    /^MySQL answers through ProxySQL: version comment/,
  );
});

Deno.test("reportFront warns once per kind and sink", () => {
  const seen: Warning[] = [];
  const sink = { onWarning: (w: Warning) => seen.push(w), reported: new Set<string>() };
  reportFront("proxy", "a", sink);
  reportFront("proxy", "b", sink);
  reportFront("multiplexed", "c", sink);
  reportFront("direct", "d", sink);
  assert.deepEqual(seen.map((w) => w.code), ["source.proxy_detected", "source.proxy_detected"]);
  assert.match(seen[1]!.message, /multiplexing proxy: c/);
});
