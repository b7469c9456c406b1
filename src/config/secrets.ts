/**
 * Registers secret values with the redactor as early as possible: before the YAML is parsed (a
 * syntax error must not be the first place a password shows up) and again once each field is read.
 *
 * Layer: config. Pure apart from the redactor's registry.
 *
 * @module
 */
import { registerSecret } from "../_util/redact.ts";

/**
 * Registers a URL and its (raw and percent-decoded) password with the redactor.
 *
 * @param url A connection URL that may carry credentials.
 */
export function registerUrlSecrets(url: string): void {
  registerSecret(url);
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#\s]*)/.exec(url.trim())?.[1] ?? "";
  const at = authority.lastIndexOf("@");
  if (at < 0) return;
  const userinfo = authority.slice(0, at);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return;
  const password = userinfo.slice(colon + 1);
  registerSecret(password);
  try {
    registerSecret(decodeURIComponent(password));
  } catch {
    // Not valid percent-encoding: the raw form is already registered.
  }
}

const secretLine = /^[ \t-]*(?:password|webhook_url)[ \t]*:[ \t]*(.+?)[ \t]*$/gm;
const urlWithUserinfo = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/?#'"]*@/g;

/**
 * Scans raw config text for `password:` / `webhook_url:` values and URLs with credentials, and
 * registers them, so that no later error (YAML syntax, type, validation) can echo them.
 *
 * @param text Raw or substituted YAML text.
 */
export function sweepSecrets(text: string): void {
  for (const match of text.matchAll(secretLine)) {
    let value = match[1]!;
    const quoted = /^(['"])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2]!;
    else value = value.replace(/[ \t]+#.*$/, "");
    registerSecret(value);
  }
  for (const match of text.matchAll(urlWithUserinfo)) registerUrlSecrets(match[0]);
}
