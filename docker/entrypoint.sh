#!/bin/sh
# The weft image's entrypoint: the first argument says what to run, the rest
# are its options (each option also has an environment variable: --help).
#   node [OPTIONS]      a weft node (the default)
#   gateway [OPTIONS]   a weft gateway
#   keygen              print a new cluster secret (swarm key) to stdout
#   weft [ARGS]         the weft CLI
#   anything else       run as given (e.g. sh)
set -e
app=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- node
case "$1" in
  node) shift; exec node "$app/apps/node/src/main.ts" "$@" ;;
  -*) exec node "$app/apps/node/src/main.ts" "$@" ;;
  gateway) shift; exec node "$app/apps/gateway/src/main.ts" "$@" ;;
  keygen) exec node "$app/apps/node/src/main.ts" keygen ;;
  weft) shift; exec node "$app/packages/cli/src/main.ts" "$@" ;;
  *) exec "$@" ;;
esac
