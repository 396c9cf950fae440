// The typed API client: paths and bodies from the OpenAPI document (schema.d.ts is
// generated from it and checked in CI), bearer token attached, problems thrown typed.

import { sessionEnded, userManager } from "../auth";
import { config } from "../config";
import { ApiError, type Problem } from "../lib/problems";
import type { components } from "./schema";

export type Schemas = components["schemas"];
export type Page<T> = { items: T[]; next_cursor: string | null; total?: number; total_exact?: boolean };
export type ClientView = Schemas["ClientView"];
export type AccountView = Schemas["AccountView"];
export type PayeeView = Schemas["PayeeView"];
export type TransactionView = Schemas["TransactionView"];
export type StaffView = Schemas["StaffView"];
export type LogEntry = Schemas["LogEntry"];
export type AuditEntry = Schemas["AuditEntry"];
export type EventView = Schemas["EventView"];
export type Verification = Schemas["Verification"];
export type VerificationRun = Schemas["VerificationRun"];

/**
 * One request. A command carries an Idempotency-Key: the caller's, when the request is
 * one attempt of an intent that may be retried (see `useCommand`), else a fresh one.
 */
async function request<T>(method: string, path: string, body?: unknown, idempotencyKey?: string): Promise<T> {
  const user = await userManager.getUser();
  const headers: Record<string, string> = { accept: "application/json" };
  if (user) headers.authorization = `Bearer ${user.access_token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["idempotency-key"] = idempotencyKey ?? crypto.randomUUID();
  const response = await fetch(`${config.apiBase}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const problem: Problem = parsed?.type
      ? parsed
      : { type: "/problems/unknown", title: response.statusText, status: response.status, detail: text };
    if (response.status === 401) await sessionEnded();
    throw new ApiError(problem);
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body?: unknown, key?: string) => request<T>("POST", path, body ?? {}, key),
  patch: <T>(path: string, body: unknown, key?: string) => request<T>("PATCH", path, body, key),
  delete: <T>(path: string, key?: string) => request<T>("DELETE", path, undefined, key),
};

/** Every item of a paged list, page after page (200 at a time). */
export async function allPages<T>(path: string, params: Record<string, string | number | undefined | null> = {}): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null | undefined = undefined;
  do {
    const page: Page<T> = await request<Page<T>>("GET", `${path}${query({ ...params, cursor, limit: 200 })}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** `?a=1&b=2`, leaving out empty values. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
