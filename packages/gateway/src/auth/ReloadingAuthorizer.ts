// A token file that can be re-read while the gateway runs (SIGHUP in
// apps/gateway). A reload that fails keeps the tokens in force. Connections
// authenticated before a reload keep working as long as their token is still
// in the file, under its new grants; a token taken out of the file stops
// working at the connection's next request.
import { ErrorCode, WeftError } from '@weft/core'
import type { Access, Authorizer, Principal } from './Authorizer.ts'
import { TokenFileAuthorizer } from './TokenFileAuthorizer.ts'

export class ReloadingAuthorizer implements Authorizer {
  readonly open = false
  readonly path: string
  #current: TokenFileAuthorizer
  /** Which table issued each principal, and for which token (to look it up again after a reload). */
  readonly #issued = new WeakMap<Principal, { readonly by: TokenFileAuthorizer; readonly token: string | undefined }>()

  private constructor(path: string, current: TokenFileAuthorizer) {
    this.path = path
    this.#current = current
  }

  static async load(path: string): Promise<ReloadingAuthorizer> {
    return new ReloadingAuthorizer(path, await TokenFileAuthorizer.load(path))
  }

  /** Re-reads the file; on any problem throws (naming it) and keeps the tokens in force. */
  async reload(): Promise<void> {
    this.#current = await TokenFileAuthorizer.load(this.path)
  }

  authenticate(token: string | undefined): Principal {
    const principal = this.#current.authenticate(token)
    this.#issued.set(principal, { by: this.#current, token })
    return principal
  }

  authorize(principal: Principal, access: Access, keyOrPrefix: string | undefined): void {
    const issued = this.#issued.get(principal)
    if (issued?.by === this.#current) return this.#current.authorize(principal, access, keyOrPrefix)
    // Issued before a reload: the token decides again, against the file as it is now.
    let now: Principal
    try {
      now = this.#current.authenticate(issued?.token)
    } catch {
      throw new WeftError(ErrorCode.UNAUTHORIZED, 'this bearer token is no longer in the token file')
    }
    this.#current.authorize(now, access, keyOrPrefix)
  }
}
