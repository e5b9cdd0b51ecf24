// A command line the CLI cannot act on: exit code 2, with a hint where to look.

export class UsageError extends Error {
  /** The command whose help to point at, if known. */
  readonly command: string | undefined

  constructor(message: string, command?: string) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}
