/** One app instance the edge can send requests to. */
export interface EdgeNode {
  /** Its machine id (`FLY_MACHINE_ID`), the name `fly-replay: instance=` uses. */
  readonly instance: string;
  /** Its region (`FLY_REGION`). */
  readonly region: string;
  /** Where its app listens, e.g. `http://127.0.0.1:9001`. */
  readonly url: string;
}

/** The first node of a region, or, with `except`, the first other one. */
export function nodeInRegion(
  nodes: readonly EdgeNode[],
  region: string,
  except?: string,
): EdgeNode | undefined {
  return nodes.find((n) => n.region === region && n.instance !== except);
}
