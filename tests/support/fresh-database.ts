import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const DEFAULT_TEST_PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface FreshDatabase {
  /** Connection URL of the new, empty database. */
  url: string;
  /** Drops the database, disconnecting anyone still connected. Safe to call twice. */
  drop(): Promise<void>;
}

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates an empty database `gw_t_<random>` on the test PostgreSQL server (admin URL from
 * TEST_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres, trust auth).
 */
export async function createFreshDatabase(): Promise<FreshDatabase> {
  const adminUrl = process.env.TEST_PG_ADMIN_URL || DEFAULT_TEST_PG_ADMIN_URL;
  const name = `gw_t_${randomBytes(6).toString('hex')}`;
  // The name is generated above from hex digits only, so interpolating it is safe.
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await withAdmin(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
