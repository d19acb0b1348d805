import type { ControlStatus } from './control-api.js';

/** What a control verb answered: its HTTP status, and its error when it failed. */
export interface ControlAnswer {
  readonly ok: boolean;
  readonly status: number;
  readonly error?: string;
  /** What the verb did, when there is more to say than "ok" (`handoff`: who holds the lease now). */
  readonly message?: string;
}

/**
 * Calls a verb of a running cluster's control API (`controlUrl` ends in
 * `/_cluster/api`), as the CLI does from another terminal. The body goes as
 * `application/json`: the API refuses anything else.
 */
export async function callControl(controlUrl: string, verb: string, body: unknown): Promise<ControlAnswer> {
  const res = await fetch(`${controlUrl}/${verb}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let error: string | undefined;
  let message: string | undefined;
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (!res.ok && typeof body.error === 'string') error = body.error;
    if (res.ok && typeof body.message === 'string') message = body.message;
  } catch {
    if (!res.ok) error = text.trim(); // not the API's JSON (another server on that port?)
  }
  return { ok: res.ok, status: res.status, ...(error ? { error } : {}), ...(message ? { message } : {}) };
}

export async function fetchControlStatus(controlUrl: string): Promise<ControlStatus> {
  const res = await fetch(`${controlUrl}/status`);
  if (!res.ok) throw new Error(`status: HTTP ${res.status}: ${(await res.text()).trim()}`);
  return (await res.json()) as ControlStatus;
}
