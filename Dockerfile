# One image for weft nodes, gateways and the weft CLI; docker-compose.yml runs
# a cluster from it. The sources run as they are (Node 22 strips the types).
#
#   docker build -t weft .
#   docker run --rm weft keygen > swarm.key          # the cluster secret
#   docker run --rm weft node --help                 # or: gateway --help, weft --help
FROM node:22-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so that a change to the sources reuses this layer.
# No install scripts: lmdb and msgpackr-extract load their prebuilt binaries
# without them, and the `node` dev dependency (a Node download) is omitted.
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/protocol/package.json packages/protocol/
COPY packages/node/package.json packages/node/
COPY packages/gateway/package.json packages/gateway/
COPY packages/client/package.json packages/client/
COPY packages/cli/package.json packages/cli/
COPY apps/node/package.json apps/node/
COPY apps/gateway/package.json apps/gateway/
COPY apps/local/package.json apps/local/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY packages packages
COPY apps apps
COPY docker/entrypoint.sh docker/entrypoint.sh

# A node keeps its store and identity key in /data (a volume per node).
RUN mkdir -p /data && chown node:node /data
ENV WEFT_DATA_DIR=/data
VOLUME ["/data"]

USER node
# libp2p, node API (/v1/ws, /healthz, /metrics), gateway.
EXPOSE 7400 7410 7420
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["node"]
