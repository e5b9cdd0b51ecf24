// No token file: everyone may do everything. The gateway says so loudly in its log.
import type { Access, Authorizer, Principal } from './Authorizer.ts'

export const ANONYMOUS: Principal = Object.freeze({ name: 'anonymous' })

export class OpenAuthorizer implements Authorizer {
  readonly open = true

  authenticate(_token?: string): Principal {
    return ANONYMOUS
  }

  authorize(_principal: Principal, _access: Access, _keyOrPrefix: string | undefined): void {}
}
