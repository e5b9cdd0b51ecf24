// The small HTTP answers a node's and a gateway's servers both give: JSON
// bodies and the Prometheus text of /metrics (HEAD answered without a body).
import type { IncomingMessage, ServerResponse } from 'node:http'

/** What /metrics reads: a prom-client Registry fits. */
export interface MetricsSource {
  metrics(): Promise<string>
  readonly contentType: string
}

/** The request's path, '' when its URL cannot be read. */
export function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname
  } catch {
    return ''
  }
}

export function replyJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) })
  res.end(res.req.method === 'HEAD' ? undefined : text)
}

export async function replyMetrics(res: ServerResponse, source: MetricsSource): Promise<void> {
  const text = await source.metrics()
  res.writeHead(200, { 'Content-Type': source.contentType })
  res.end(res.req.method === 'HEAD' ? undefined : text)
}
