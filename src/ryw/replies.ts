import type { NextFunction, Request, Response } from 'express';
import type { ReplayTarget } from './fly-replay.js';

/** Why a request is replayed elsewhere. */
export type ReplayReason = 'write' | 'behind' | 'busy' | 'region';

export interface ReplyContext {
  req: Request;
  res: Response;
  next: NextFunction;
}

/**
 * What the layer answers itself. The protocol headers (`fly-replay`,
 * `Retry-After`, `Server-Timing`) are set before a reply runs; a reply only
 * chooses the status and body (or hands an error to `next` for the app's
 * own error pages).
 */
export interface Replies {
  /** A replay to another instance or region; Fly.io's proxy discards this answer. Default 409, plain text. */
  replay(ctx: ReplyContext, replay: { target: ReplayTarget; reason: ReplayReason }): void;
  /** No way to serve this here now (`Retry-After` is set). Default 503, plain text. */
  unavailable(ctx: ReplyContext, why: string): void;
  /** A malformed request (`?region=` that is no region). Default 400, plain text. */
  invalid(ctx: ReplyContext, message: string): void;
}

const REPLAY_REASONS: Record<Exclude<ReplayReason, 'region'>, (primary: string) => string> = {
  write: (primary) => `This instance is a read-only replica; replaying the write to the primary (${primary}).`,
  behind: (primary) => `This region has not caught up with your latest change yet; replaying the read to the primary (${primary}).`,
  busy: (primary) => `This copy of the database is busy applying changes; replaying the read to the primary (${primary}).`,
};

export const defaultReplies: Replies = {
  replay({ res }, { target, reason }) {
    const why =
      'region' in target
        ? `This request asked for region ${target.region}; replaying it there.`
        : REPLAY_REASONS[reason === 'region' ? 'write' : reason](target.instance);
    res.status(409).type('text/plain').send(`${why}\n`);
  },
  unavailable({ res }, why) {
    res.status(503).type('text/plain').send(`${why} Please try again in a moment.\n`);
  },
  invalid({ res }, message) {
    res.status(400).type('text/plain').send(`${message}\n`);
  },
};
