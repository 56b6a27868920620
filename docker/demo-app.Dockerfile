# The demo upstream app (examples/demo-app): stands in for the app the gateway protects.
#
#   docker build -f docker/demo-app.Dockerfile -t identity-gateway-demo-app .

ARG NODE_IMAGE=node:24-bookworm-slim

# Same first steps as docker/auth.Dockerfile, so the builder reuses that dependency layer.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npx -y npm@10 ci --omit=dev --no-audit --no-fund \
 && rm -rf /root/.npm

FROM ${NODE_IMAGE}
ENV NODE_ENV=production DEMO_APP_HOST=0.0.0.0 DEMO_APP_PORT=5000
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY package.json ./
COPY examples/demo-app/server.ts examples/demo-app/server.ts
USER node
EXPOSE 5000
CMD ["node", "--import", "tsx", "examples/demo-app/server.ts"]
