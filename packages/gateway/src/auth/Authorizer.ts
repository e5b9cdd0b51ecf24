// Who may do what. A token file maps bearer tokens to grants on key prefixes;
// without one the gateway is open (and says so loudly in its log).
export const Access = {
  read: 'read',
  write: 'write',
  admin: 'admin',
} as const
export type Access = (typeof Access)[keyof typeof Access]

export interface Principal {
  readonly name: string
}

export interface Authorizer {
  /** The principal for a bearer token; throws WeftError UNAUTHORIZED when missing or unknown (unless open). */
  authenticate(token: string | undefined): Principal
  /**
   * Checks that `principal` may perform `access` on every key the request
   * touches (`keyOrPrefix`; undefined for cluster-wide ops like members, which
   * need read on the empty prefix). Throws WeftError FORBIDDEN otherwise.
   */
  authorize(principal: Principal, access: Access, keyOrPrefix: string | undefined): void
  /** True when no token file is configured. */
  readonly open: boolean
}
