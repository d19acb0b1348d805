/** One app instance the edge can send requests to. */
export interface EdgeNode {
  /** Its machine id (`FLY_MACHINE_ID`), the name `fly-replay: instance=` uses. */
  readonly instance: string;
  /** Its region (`FLY_REGION`). */
  readonly region: string;
  /** Where its app listens, e.g. `http://127.0.0.1:9001`. */
  readonly url: string;
  /** False while its machine is down (stopped, killed, exited); absent means up. */
  readonly live?: boolean;
}

/** Whether the edge may send a user to `node`. */
export function isLive(node: EdgeNode): boolean {
  return node.live !== false;
}

/**
 * A live node of a region, picked at random as Fly.io's proxy spreads a
 * region's users over its machines; with `except`, any other one. Undefined
 * when the region has no live node.
 */
export function nodeInRegion(
  nodes: readonly EdgeNode[],
  region: string,
  except?: string,
  random: () => number = Math.random,
): EdgeNode | undefined {
  const live = nodes.filter((n) => n.region === region && n.instance !== except && isLive(n));
  return live[Math.floor(random() * live.length)];
}
