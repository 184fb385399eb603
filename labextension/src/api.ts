/**
 * The lab server's drivelab API (`<base_url>drivelab/api/...`, docs/lab.md): requests with
 * JupyterLab's own credentials (token, XSRF header), answers as typed documents, failures as
 * {@link ApiError} carrying the server's own words and hint.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const API_PATH = 'drivelab/api';

/** A request that failed: the server's `error` and `hint` (those of the CLI), else what went wrong. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly hint: string | null = null,
    readonly status = 0
  ) {
    super(message);
  }
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'DELETE';
  body?: unknown;
  /** Abort after this many ms (0: wait as long as it takes, e.g. a flush). */
  timeoutMs?: number;
}

export async function request<T>(
  settings: ServerConnection.ISettings,
  path: string,
  options: RequestOptions = {}
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_PATH, path);
  const init: RequestInit = { method: options.method ?? 'GET' };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  const abort = new AbortController();
  init.signal = abort.signal;
  const timeout = options.timeoutMs === 0 ? 0 : window.setTimeout(() => abort.abort(), options.timeoutMs ?? 30000);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (reason) {
    throw new ApiError(
      abort.signal.aborted ? `no answer from the lab's server within ${(options.timeoutMs ?? 30000) / 1000} s` : `the lab's server did not answer (${reason})`,
      'is `drivelab lab` still running? Its terminal says.'
    );
  } finally {
    window.clearTimeout(timeout);
  }
  if (!response.ok) {
    const head = `HTTP ${response.status} ${response.statusText}`.trim();
    let error = head;
    let hint: string | null = null;
    try {
      const body = (await response.json()) as { error?: string; hint?: string | null; message?: string };
      error = body.error ?? body.message ?? head;
      hint = body.hint ?? null;
    } catch {
      // not JSON: keep the HTTP status
    }
    throw new ApiError(error, hint, response.status);
  }
  return (await response.json()) as T;
}

/** `failure.message`, then its hint on a line of its own. */
export function describe(failure: unknown): { message: string; hint: string | null } {
  if (failure instanceof ApiError) {
    return { message: failure.message, hint: failure.hint };
  }
  return { message: failure instanceof Error ? failure.message : String(failure), hint: null };
}

// ------------------------------------------------------------------ documents

/** `GET status` (`kind: "lab.status"`). */
export interface LabStatus {
  kind: 'lab.status';
  version: number;
  memory: { used: number; total: number };
  cpu: { percent: number; cores: number };
  disk: { free: number; total: number; path: string };
  gpus: Gpu[];
  drive: DriveSummary;
}

export interface Gpu {
  index: number;
  name: string;
  memory_used: number | null;
  memory_total: number | null;
  utilization: number | null;
}

export interface DriveSummary {
  mode: 'local' | 'mount' | 'sync';
  phase: 'local' | 'starting' | 'live' | 'down' | 'failed' | 'detached';
  remote: string | null;
  pending_uploads: number | null;
  read_only: boolean;
}

/** `GET runtime/panel`: the rows `drivelab runtime` prints. */
export interface RuntimePanel {
  kind: 'runtime.panel';
  rows: { label: string; value: string; kind: 'fact' | 'device' | 'problem' }[];
}

/** `GET doctor`: what `drivelab doctor --json` prints. */
export interface Doctor {
  kind: 'doctor';
  ok: boolean;
  report: {
    ok: boolean;
    python: string;
    torch: string | null;
    seconds: number;
    checks: { name: string; ok: boolean; detail: string; fix: string | null }[];
  };
}

/** `GET drive`: what `drivelab drive status --json` prints. */
export interface DriveDocument {
  kind: 'drive';
  mode: 'local' | 'mount' | 'sync';
  live: boolean;
  remote: string | null;
  spec: string | null;
  phase: DriveSummary['phase'];
  /** null: rclone did not answer (see `stats_error`, `last_stats`); never shown as zero. */
  pending_uploads: number | null;
  uploading: number | null;
  errored_files: number | null;
  stats_error?: string | null;
  last_stats?: { pending_uploads: number | null; age: number; time: string } | null;
  remounts: number;
  events?: { time: string; event: string; [detail: string]: unknown }[];
  error: string | null;
  notices: string[];
  users: { pid: number; what: string; since: string }[];
  read_only: boolean;
}

export interface FlushResult {
  files: number;
  bytes: number;
  seconds: number;
  mode: string;
}

export interface DetachResult extends FlushResult {
  forced: boolean;
  pending: number;
  /** Where the pending uploads are kept: this machine's drive cache (null when nothing is pending). */
  cache: string | null;
  reason: string | null;
  detached: boolean;
}

export interface Secret {
  name: string;
  source: 'stored' | 'env';
  env: string | null;
}

/** One job of `GET jobs` (`drivelab jobs list --json`). */
export interface Job {
  run: string;
  state: string;
  restarts: number;
  last_checkpoint: string | null;
  started: string;
  ended: string | null;
  command: string[];
  spec: { script?: string; args?: string[] } | null;
  summary: string | null;
}

export interface JobLog {
  kind: 'jobs.log';
  run: string;
  offset: number;
  text: string;
  state: string;
  active: boolean;
}
