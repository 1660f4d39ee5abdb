#!/usr/bin/env node
// The data around the README's examples, for run.sh. Run it from an installed app
// directory: pg and ioredis are taken from that app's node_modules.
//
//   node fixture.js seed   <schema> <rows>   a fresh <schema>, its users table made by the README's
//                                            CREATE TABLE (src/quick-start/users.sql, written by
//                                            extract-readme.js), ids 1..rows, updated 0
//   node fixture.js verify <schema> <rows>   every id 1..rows has updated = 1 (each row handled exactly once)
//   node fixture.js drop   <schema>
//   node fixture.js redis-clean <redis url> <job>   deletes the job's keys ({<storageKey>:<job>}…) in that Redis db
//
// DATABASE_URL is the PostgreSQL to use.
'use strict';
const { createRequire } = require('node:module');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

const appRequire = createRequire(join(process.cwd(), 'package.json'));
const [command, ...args] = process.argv.slice(2);

function ident(name) {
  if (!/^[a-z_][a-z0-9_]*$/.test(name))
    throw new Error(`not a plain SQL identifier: ${name}`);
  return name;
}

async function withPg(fn) {
  const { Client } = appRequire('pg');
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const commands = {
  async seed(schema, rows) {
    const s = ident(schema);
    const createTable = readFileSync(
      join(process.cwd(), 'src/quick-start/users.sql'),
      'utf8',
    );
    await withPg(async (c) => {
      await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      await c.query(`CREATE SCHEMA ${s}`);
      await c.query(`SET search_path TO ${s}`);
      await c.query(createTable);
      await c.query(
        `INSERT INTO users (id) SELECT generate_series(1, $1::int)`,
        [Number(rows)],
      );
    });
  },
  async verify(schema, rows) {
    const s = ident(schema);
    const n = Number(rows);
    const r = await withPg(
      async (c) =>
        (
          await c.query(
            `SELECT COUNT(*)::int AS total,
              COUNT(*) FILTER (WHERE updated = 1)::int AS once,
              COUNT(*) FILTER (WHERE updated = 0)::int AS missed,
              COUNT(*) FILTER (WHERE updated > 1)::int AS twice,
              MIN(id) FILTER (WHERE updated <> 1) AS first_bad
         FROM ${s}.users`,
          )
        ).rows[0],
    );
    console.log(
      `rows=${r.total} once=${r.once} missed=${r.missed} more_than_once=${r.twice}${r.first_bad == null ? '' : ` first_bad_id=${r.first_bad}`}`,
    );
    if (r.total !== n || r.once !== n) process.exitCode = 1;
  },
  async drop(schema) {
    await withPg((c) =>
      c.query(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`),
    );
  },
  async 'redis-clean'(url, job) {
    const mod = appRequire('ioredis');
    const Redis = mod.default ?? mod.Redis ?? mod;
    const redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    });
    await redis.connect();
    try {
      let cursor = '0';
      let deleted = 0;
      do {
        const [next, keys] = await redis.scan(
          cursor,
          'MATCH',
          `{*:${job}}*`,
          'COUNT',
          1000,
        );
        cursor = next;
        if (keys.length) deleted += await redis.del(...keys);
      } while (cursor !== '0');
      if (deleted)
        console.log(`redis-clean: deleted ${deleted} keys of job ${job}`);
    } finally {
      redis.disconnect();
    }
  },
};

const fn = commands[command];
if (!fn) {
  console.error(`usage: node fixture.js seed|verify|drop|redis-clean …`);
  process.exit(2);
}
fn(...args).catch((err) => {
  console.error(`fixture.js ${command}: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
