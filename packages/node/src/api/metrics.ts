// The API's Prometheus metrics, on a registry the node may share with its own.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { VersionedStore } from '../store/VersionedStore.ts'


const METRIC_NAMES = [
  'weft_api_requests_total',
  'weft_api_request_duration_seconds',
  'weft_api_connections',
  'weft_api_watches',
  'weft_store_keys',
  'weft_store_size_bytes',
  'weft_store_feed_seq',
] as const

export class ApiMetrics {
  readonly requests: Counter<'op' | 'code'>
  readonly latency: Histogram<'op'>
  readonly #registry: Registry

  constructor(registry: Registry, store: VersionedStore, counts: { connections: () => number; watches: () => number }) {
    this.#registry = registry
    const registers = [registry]
    this.requests = new Counter({ name: 'weft_api_requests_total', help: 'Client requests answered, by op and result code', labelNames: ['op', 'code'], registers })
    this.latency = new Histogram({
      name: 'weft_api_request_duration_seconds',
      help: 'Time from a request frame to its response, by op',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    })
    new Gauge({
      name: 'weft_api_connections',
      help: 'Open client WebSocket connections',
      registers,
      collect() {
        this.set(counts.connections())
      },
    })
    new Gauge({
      name: 'weft_api_watches',
      help: 'Open watches',
      registers,
      collect() {
        this.set(counts.watches())
      },
    })
    new Gauge({
      name: 'weft_store_keys',
      help: 'Live keys in fork main',
      registers,
      collect() {
        this.set(store.keyCount())
      },
    })
    new Gauge({
      name: 'weft_store_size_bytes',
      help: 'Approximate bytes the store uses',
      registers,
      collect() {
        this.set(store.sizeBytes())
      },
    })
    new Gauge({
      name: 'weft_store_feed_seq',
      help: "Position of this node's change feed",
      registers,
      collect() {
        this.set(store.feedHead().seq)
      },
    })
  }

  /** Takes this server's metrics off the registry, so another server can register them. */
  remove(): void {
    for (const name of METRIC_NAMES) this.#registry.removeSingleMetric(name)
  }
}
