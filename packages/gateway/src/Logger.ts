// One definition for every room: see @weft/protocol's Logger.
export { type Logger, silentLogger } from '@weft/protocol'
