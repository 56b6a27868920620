/**
 * The environment as the config loaders read it. It lives below config.ts so that the loaders
 * config.ts calls (services/oidc-config.ts) can name it without importing config.ts back.
 */
export type Env = Record<string, string | undefined>;
