import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';

/**
 * The checker's history: one JSON object per line, written as operations
 * complete, so that a run that crashes still leaves what it saw. The first
 * line describes the run; the checker (check.ts) needs nothing else.
 */

/**
 * 2: sessions sign in, edit and delete; final reads name their instance.
 * 3: the failover nemesis (kill, start, handoff), every primary change, and
 * the apps' durability.
 * 4: nemesis actions that did not happen (`nemesis-error`: refused or failed).
 * Older histories still check.
 */
export const HISTORY_VERSION = 4;

/**
 * What a session did: the op kinds a history holds. Writes (POSTs): `sign-in`
 * (`/setup` or `/signin`), `write` (publish, `/new`), `edit`
 * (`/articles/:id`), `delete` (`/articles/:id/delete`). Reads (GETs): the
 * forms before them (`read-form`: `/new`, `/signin`, `/setup`;
 * `read-edit-form`; `read-delete-form`), the home page, an article page, and
 * the end-of-run reads of every node.
 */
export const OP_KINDS = [
  'sign-in',
  'read-form',
  'write',
  'read-edit-form',
  'edit',
  'read-delete-form',
  'delete',
  'read-home',
  'read-article',
  'final-read',
] as const;
export type OpKind = (typeof OP_KINDS)[number];
/** The op kinds that POST: their outcome is acknowledged, refused or unknown (see outcomeOf() in check.ts). */
export const WRITE_KINDS: readonly OpKind[] = ['sign-in', 'write', 'edit', 'delete'];

export interface RunMeta {
  readonly type: 'meta';
  readonly version: number;
  readonly seed: number;
  readonly startedAt: string;
  /** RYW_WAIT_MS of the apps: what "waited too long" is measured against. */
  readonly budgetMs: number;
  /** How many articles the home page lists (HOME_PAGE_SIZE). */
  readonly homePageSize: number;
  readonly regions: readonly string[];
  /** Every node (`fra-1`, `fra-2`, `ewr-1`, …): the final reads read each. Absent in version 1 (one node per region). */
  readonly instances?: readonly string[];
  readonly primaryRegion: string;
  readonly rywEnabled: boolean;
  /** RYW_FALLBACK per region. */
  readonly fallbacks: Readonly<Record<string, string>>;
  readonly sessions: number;
  /** The apps' RYW_DURABILITY (`local` when absent: version 2 and older). */
  readonly durability?: 'local' | 'standby';
  /** The apps' RYW_DURABILITY_WAIT_MS: how long a write may wait for a standby on top of the budget. */
  readonly durabilityWaitMs?: number;
  /**
   * How long the apps let a write on a replica that knows no primary wait
   * for one (DEFAULT_PRIMARY_WAIT_MS), on top of the budget. Absent (0) in
   * histories written before it was recorded.
   */
  readonly primaryWaitMs?: number;
}

export interface OpRecord {
  readonly type: 'op';
  /** Order of completion in this run. */
  readonly id: number;
  /** `s1`, `s2`, … ; `final` for the end-of-run reads. */
  readonly session: string;
  /** The region the request entered through (the node's region for final reads). */
  readonly region: string;
  /** final-read: the node read (its app, straight). */
  readonly instance?: string;
  readonly kind: OpKind;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Milliseconds since the run started, when the request was sent and when its whole answer was in. */
  readonly start: number;
  readonly end: number;
  /** HTTP status, or null when no answer came (network error, timeout). */
  readonly status: number | null;
  readonly error?: string;
  /** The app's read-your-writes decision (`Server-Timing: ryw;desc=`) of the answer that came back. */
  readonly decision: string | null;
  /** The app's reported wait (`Server-Timing: ryw;dur=`), ms. */
  readonly waitMs: number | null;
  /** The instances the edge sent the request to, in order. */
  readonly hops: readonly string[];
  /** The page said it was served stale (`<body data-ryw="stale">`). */
  readonly stale: boolean;
  /** A POST's `Location` (a 303's target), or null. */
  readonly location?: string | null;
  /**
   * write/edit: the title sent (every version's title is unique in a run, so a
   * title names a version). read-article/final-read: the title the page
   * showed; read-edit-form: the title in the form; read-delete-form: the
   * title it asks about (null: none shown).
   */
  readonly title?: string | null;
  /**
   * write: the id the 303 named (null: not acknowledged). edit/delete and the
   * reads of an article: the id asked for.
   */
  readonly articleId?: number | null;
  /** edit/delete: the revision the form started from (`_revision`); read-edit-form/read-delete-form: the one it carried. */
  readonly revision?: number | null;
  /** read-home: the article ids the page listed, in order. */
  readonly listed?: readonly number[];
  /** read-home: the titles of `listed`, in the same order. */
  readonly listedTitles?: readonly string[];
  /**
   * Whether the page showed its reader signed in (the nav's "Signed in as");
   * false also for a form that sent the session to `/signin`; null when the
   * answer shows neither (an error without the site's nav, no answer).
   */
  readonly signedIn?: boolean | null;
}

/** What the nemesis does: faults on replication links, and (failover) crashes, restarts and handoffs of nodes. */
export type NemesisAction = 'lag' | 'cut' | 'heal' | 'kill' | 'start' | 'handoff';

export interface NemesisRecord {
  readonly type: 'nemesis';
  /** When the action was done (its call returned). */
  readonly time: number;
  readonly action: NemesisAction;
  /** The target: a region or an instance (`fra-2`); null: every replica (heal), or the primary (kill, handoff). */
  readonly region: string | null;
  readonly lagMs?: number;
  readonly jitterMs?: number;
  /** kill: the instances killed; handoff: the new primary. */
  readonly instances?: readonly string[];
}

/**
 * A nemesis action that did not happen. Its own record, not a field on
 * NemesisRecord: a `nemesis` record keeps meaning "done" for everything that
 * counts them or times from them (a kill starts the failover's clock).
 */
export interface NemesisErrorRecord {
  readonly type: 'nemesis-error';
  /** When it gave up. */
  readonly time: number;
  readonly action: NemesisAction;
  /** What it was aimed at, as NemesisRecord's `region`: a region or an instance; null: every replica, or the primary. */
  readonly target: string | null;
  /**
   * refused: the cluster said there was nothing to do right now (a
   * ControlInputError: no primary runs, nobody to hand off to), and changed
   * nothing. failed: it was tried and broke (a node that would not start
   * again, a kill or a handoff that errored): the run did not get the fault
   * it asked for, or left a node down.
   */
  readonly outcome: 'refused' | 'failed';
  /** The error's first line, and its most telling one (LiteFS's `ERROR:` line from the log tail), at most NEMESIS_ERROR_MAX_CHARS (failover-nemesis.ts). */
  readonly error: string;
}

/** One change of the lease holder as the cluster saw it (null: nobody holds the lease). */
export interface PrimaryRecord {
  readonly type: 'primary';
  /** On the run's clock (ms since it started). */
  readonly time: number;
  readonly from: string | null;
  readonly to: string | null;
}

/** Marks the end of the session phase: final reads follow after healing and syncing. */
export interface PhaseRecord {
  readonly type: 'phase';
  readonly time: number;
  readonly phase: 'sessions-done' | 'synced' | 'final-done';
}

export type HistoryEntry = RunMeta | OpRecord | NemesisRecord | NemesisErrorRecord | PrimaryRecord | PhaseRecord;

/** Appends entries to a JSONL file as they happen. */
export class HistoryWriter {
  private readonly stream: WriteStream;
  readonly entries: HistoryEntry[] = [];

  constructor(readonly path: string) {
    this.stream = createWriteStream(path, { flags: 'w' });
  }

  append(entry: HistoryEntry): void {
    this.entries.push(entry);
    this.stream.write(`${JSON.stringify(entry)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

/** Reads a history file back; a torn last line (a crash mid-write) is ignored. */
export function readHistory(path: string): HistoryEntry[] {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .map((line, i) => ({ line, number: i + 1 }))
    .filter(({ line }) => line.trim() !== '');
  const entries: HistoryEntry[] = [];
  for (const [i, { line, number }] of lines.entries()) {
    try {
      entries.push(JSON.parse(line) as HistoryEntry);
    } catch (err) {
      if (i === lines.length - 1) break;
      throw new Error(`${path}:${number}: not JSON: ${String(err)}`, { cause: err });
    }
  }
  return entries;
}
