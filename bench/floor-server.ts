/**
 * The floor of an HTTP request in Node on this machine: `node:http`, one process, reads the body,
 * JSON.parses it and answers a constant JSON document. No routing, auth, policy or audit — what a
 * request costs before any PDP work, measured by bench/run.ts as the `node-http-floor` system so
 * that Verdict's per-request overhead can be split into Node's share and Verdict's own.
 *
 *   PORT=8181 node bench/floor-server.ts
 */
import http from 'node:http';

const ANSWER = JSON.stringify({ result: { allow: true, violations: [], obligations: [], exceptions: [] } });

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
