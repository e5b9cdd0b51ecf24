// The gateway's Prometheus metrics. The router counts retries and failovers
// here; the WebSocket server and the HTTP routes count requests and latency.
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export class GatewayMetrics {
  readonly registry: Registry
  readonly requests: Counter<'op' | 'code'>
  readonly latency: Histogram<'op'>
  /** Attempts after the first, by op. */
  readonly retries: Counter<'op'>
  /** A request or watch that moved to another node than the one it tried. */
  readonly failovers: Counter<'kind'>
  /** Events a resumed watch replayed that its client already had. */
  readonly duplicatesDropped: Counter
  readonly #gauges: { connections: () => number; watches: () => number; nodes: () => number }

  constructor(registry: Registry = new Registry()) {
    this.registry = registry
    const registers = [registry]
    const gauges = (this.#gauges = { connections: () => 0, watches: () => 0, nodes: () => 0 })
    this.requests = new Counter({ name: 'weft_gateway_requests_total', help: 'Client requests answered (WebSocket and HTTP), by op and result code', labelNames: ['op', 'code'], registers })
    this.latency = new Histogram({
      name: 'weft_gateway_request_duration_seconds',
      help: 'Time from a request frame to its response (retries included), by op',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.retries = new Counter({ name: 'weft_gateway_retries_total', help: 'Request attempts after the first, by op', labelNames: ['op'], registers })
    this.failovers = new Counter({ name: 'weft_gateway_failovers_total', help: 'Requests and watches moved to another node, by kind', labelNames: ['kind'], registers })
    this.duplicatesDropped = new Counter({ name: 'weft_gateway_watch_duplicates_dropped_total', help: 'Replayed watch events dropped because the client already had them', registers })
    new Gauge({ name: 'weft_gateway_nodes', help: 'Nodes the gateway is connected to and routes to', registers, collect() { this.set(gauges.nodes()) } })
    new Gauge({ name: 'weft_gateway_connections', help: 'Open client WebSocket connections', registers, collect() { this.set(gauges.connections()) } })
    new Gauge({ name: 'weft_gateway_watches', help: 'Open client watches', registers, collect() { this.set(gauges.watches()) } })
  }

  /** One answered request: its op, `OK` or its error code, and how long it took. */
  observeRequest(op: string, code: string, seconds: number): void {
    this.requests.inc({ op, code })
    this.latency.observe({ op }, seconds)
  }

  /** Where the gauges read from (set by whoever owns the numbers). */
  observe(sources: Partial<{ connections: () => number; watches: () => number; nodes: () => number }>): void {
    Object.assign(this.#gauges, sources)
  }
}
