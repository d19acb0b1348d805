/**
 * Waits, on real clocks, until `condition` holds (it may be async), looking
 * every few milliseconds; throws `what` (or a plain message) once `ms` have
 * passed without it. For the moment something has happened (a reader is
 * waiting, a stream is connected), never for a duration.
 */
export async function until(condition: () => boolean | Promise<boolean>, ms = 3_000, what = 'condition not met in time'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} (within ${ms} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
