// A real node:http server on port 0 around createHttpHandler, as the gateway
// core mounts it; requests it leaves (answered false) get 299 "passed through".
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Authorizer } from '../../src/auth/Authorizer.ts'
import { OpenAuthorizer } from '../../src/auth/OpenAuthorizer.ts'
import { createHttpHandler, type HttpHandlerOptions } from '../../src/http/createHttpHandler.ts'
import type { HttpLogger } from '../../src/http/HttpContext.ts'
import { FakeBackend } from './FakeBackend.ts'

export interface TestServer {
  readonly url: string
  readonly port: number
  readonly backend: FakeBackend
  readonly server: Server
  readonly logs: { level: string; fields: object; message?: string }[]
}

const servers: Server[] = []

export async function startTestServer(
  options: { backend?: FakeBackend; authorizer?: Authorizer } & Partial<Omit<HttpHandlerOptions, 'backend' | 'authorizer'>> = {},
): Promise<TestServer> {
  const backend = options.backend ?? new FakeBackend()
  const logs: TestServer['logs'] = []
  const logger: HttpLogger = {
    debug: (fields, message) => logs.push({ level: 'debug', fields, ...(message !== undefined && { message }) }),
    info: (fields, message) => logs.push({ level: 'info', fields, ...(message !== undefined && { message }) }),
    warn: (fields, message) => logs.push({ level: 'warn', fields, ...(message !== undefined && { message }) }),
    error: (fields, message) => logs.push({ level: 'error', fields, ...(message !== undefined && { message }) }),
  }
  const handler = createHttpHandler({ logger, ...options, backend, authorizer: options.authorizer ?? new OpenAuthorizer() })
  const server = createServer((req, res) => {
    void handler(req, res).then((handled) => {
      if (!handled) res.writeHead(299, { 'Content-Type': 'text/plain' }).end('passed through')
    })
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, port, backend, server, logs }
}

/** Closes every server started by this test file (afterEach). */
export async function stopTestServers(): Promise<void> {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        }),
    ),
  )
}

export const REV = { id: '0193f1c2a4b50000.n1', index: 1, ts: 1732240000000, node: 'n1', kind: 'set' }
export const REV2 = { id: '0193f1c2a4c10000.n1', index: 2, ts: 1732240001000, node: 'n1', kind: 'set' }
