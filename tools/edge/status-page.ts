/** How often the `/_cluster` page asks for fresh status. */
export const STATUS_REFRESH_MS = 1000;

/**
 * The live `/_cluster` page: the lease (who holds it, its timing), a table of
 * nodes and the primary changes seen so far, polling `/_cluster/status.json`,
 * so a tester sees lag build up and drain, and the primary move, while they
 * inject faults, without reloading. Self-contained: no assets, no framework.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cluster status</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
  table { border-collapse: collapse; margin-top: 1rem; }
  th, td { padding: .35rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  code { font-size: 13px; }
  .primary { font-weight: 600; }
  .down { color: #b00020; }
  .fault { color: #a65f00; font-weight: 600; }
  .behind { color: #a65f00; }
  #updated { color: #666; }
</style>
</head>
<body>
<main>
<h1>Cluster status</h1>
<p>Main edge: <a id="main" href="/">…</a> (routes by <code>fly-prefer-region</code>, default <span id="primaryRegion">…</span>).
<span id="updated"></span></p>
<p id="lease"></p>
<table>
  <thead><tr>
    <th>region</th><th>instance</th><th>role</th><th>lease</th><th>position (TXID)</th><th>behind</th>
    <th>LiteFS .lag</th><th>injected</th><th>edge URL</th><th>app URL</th>
  </tr></thead>
  <tbody id="nodes"></tbody>
</table>
<h2>Primary changes</h2>
<ol id="changes"></ol>
</main>
<script>
const REFRESH_MS = ${STATUS_REFRESH_MS};
function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function link(row, url) {
  const td = cell(row, '');
  if (url) { const a = document.createElement('a'); a.href = url; a.textContent = url; td.appendChild(a); }
}
async function refresh() {
  try {
    const res = await fetch('/_cluster/status.json', { cache: 'no-store' });
    const status = await res.json();
    document.getElementById('main').textContent = status.mainUrl;
    document.getElementById('main').href = status.mainUrl;
    document.getElementById('primaryRegion').textContent = status.primaryRegion;
    const lease = status.lease;
    document.getElementById('lease').textContent = !lease ? ''
      : lease.type === 'static' ? 'Lease: static, primary ' + (lease.holder || '?') + ' (fixed: no failover).'
      : 'Lease: Consul, held by ' + (lease.holder || 'nobody') + ' (TTL ' + lease.ttlMs + ' ms, lock delay ' + lease.lockDelayMs + ' ms).';
    const changes = document.getElementById('changes');
    changes.replaceChildren();
    for (const c of status.primaryChanges || []) {
      const li = document.createElement('li');
      li.textContent = new Date(c.at).toLocaleTimeString() + ': ' + (c.from || 'nobody') + ' \u2192 ' + (c.to || 'nobody');
      changes.appendChild(li);
    }
    const body = document.getElementById('nodes');
    body.replaceChildren();
    for (const n of status.nodes) {
      const row = document.createElement('tr');
      row.dataset.region = n.region;
      cell(row, n.region);
      cell(row, n.instance);
      cell(row, n.role + (n.error ? ' (' + n.error + ')' : ''), n.role === 'down' ? 'down' : n.role === 'primary' ? 'primary' : '');
      cell(row, n.leaseHolder ? 'holder' : n.candidate ? 'candidate' : '–', n.leaseHolder ? 'primary' : '');
      cell(row, n.position === null ? '?' : String(parseInt(n.position, 16)), 'num');
      cell(row, n.behindTx === null ? '?' : n.behindTx + ' tx', n.behindTx ? 'num behind' : 'num');
      cell(row, n.lagMs === null ? '–' : n.lagMs + ' ms', 'num');
      cell(row, n.injected || 'none', n.injected ? 'fault' : '');
      link(row, n.edgeUrl);
      link(row, n.appUrl);
      body.appendChild(row);
    }
    document.getElementById('updated').textContent = 'Updated ' + new Date(status.at).toLocaleTimeString() + '.';
  } catch (err) {
    document.getElementById('updated').textContent = 'Cannot reach the edge: ' + err;
  }
}
refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
`;
