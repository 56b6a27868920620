# The auth service: Node.js 24 LTS running the TypeScript sources through tsx (a runtime dependency).
# It applies db/migrations at start-up and writes the gate config to GATE_CONFIG_FILE.
#
#   docker build -f docker/auth.Dockerfile -t identity-gateway-auth .
#
# NODE_IMAGE: the base image (default the official node:24-bookworm-slim; tests pass a local stand-in).
ARG NODE_IMAGE=node:24-bookworm-slim

# --- production dependencies only ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# npm 11's `npm ci` rejects this lock file (a known npm regression); npm 10's ci installs it exactly.
RUN npx -y npm@10 ci --omit=dev --no-audit --no-fund \
 && rm -rf /root/.npm

# --- runtime ---
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY package.json tsconfig.json ./
COPY auth-service/src auth-service/src
# The session contract shared with the njs gate.
COPY njs/src/core njs/src/core
COPY db db
# Mount point of the volume shared with nginx. A fresh named volume takes this directory's owner and
# mode, so the service (user node) can write the gate config and nobody else can read it.
RUN mkdir -p /run/gate \
 && chown node:node /run/gate \
 && chmod 0700 /run/gate
USER node
EXPOSE 3001
CMD ["node", "--import", "tsx", "auth-service/src/main.ts"]
