// The backend of the e2e stack: Express, pg and zod, with /api/health and /api/ready shaped
// like the reference's. APP_VARIANT (baked into each image) picks the release's behaviour:
//   good    healthy
//   bad     /api/health throws: 500 {"error":"Internal Server Error"}; db and /api/ready fine
//   newenv  needs FEATURE_STORE_URL; without it, exits at start naming it
//   slow    starts slowly and answers every request slowly
//   crash   throws at start (a crash loop under `restart: always`)
const express = require('express');
const { Pool } = require('pg');
const { validateEnv } = require('./env');

let env;
try {
  env = validateEnv(process.env);
} catch (err) {
  console.error(`[Startup] ${err.message}`);
  process.exit(1);
}

if (env.APP_VARIANT === 'crash') {
  throw new TypeError("Cannot read properties of undefined (reading 'agents')");
}

const SLOW_MS = Number(process.env.SLOW_RESPONSE_MS || 2500);
const SLOW_START_MS = Number(process.env.SLOW_START_MS || 2500);
const pool = new Pool({ connectionString: env.DATABASE_URL, max: 4, connectionTimeoutMillis: 2000 });
pool.on('error', (err) => console.error(`[DB] idle client error: ${err.message}`));

async function checkDatabase() {
  try {
    await pool.query('SELECT 1');
    return 'ok';
  } catch {
    return 'error';
  }
}

const app = express();

if (env.APP_VARIANT === 'slow') {
  app.use((req, res, next) => setTimeout(next, SLOW_MS));
}

app.get('/api/health', async (req, res) => {
  if (env.APP_VARIANT === 'bad') {
    throw new Error('agent registry not initialised');
  }
  const checks = {
    status: 'ok',
    timestamp: new Date().toISOString(),
    services: { database: await checkDatabase(), mastra: 'ok' },
  };
  const allHealthy = Object.values(checks.services).every((s) => s === 'ok');
  if (!allHealthy) checks.status = 'degraded';
  res.status(allHealthy ? 200 : 503).json(checks);
});

app.get('/api/ready', async (req, res) => {
  const ready = (await checkDatabase()) === 'ok';
  res.status(ready ? 200 : 503).json({ ready });
});

// Express 4 passes a rejected async handler's error here only when called; wrap them.
for (const layer of app._router.stack) {
  if (layer.route) {
    for (const h of layer.route.stack) {
      const fn = h.handle;
      h.handle = (req, res, next) => Promise.resolve(fn(req, res, next)).catch(next);
    }
  }
}

// The ordinary Express error handler of an API: log, answer a generic 500.
app.use((err, req, res, next) => {
  console.error(JSON.stringify({ level: 'error', component: 'API', message: err.message }));
  res.status(500).json({ error: 'Internal Server Error' });
});

function listen() {
  const server = app.listen(env.PORT, '127.0.0.1', () => {
    console.log(`[Startup] backend ${env.APP_VARIANT} listening on 127.0.0.1:${env.PORT}`);
  });
  const stop = () => server.close(() => pool.end().finally(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (env.APP_VARIANT === 'slow') {
  console.log(`[Startup] warming caches for ${SLOW_START_MS} ms`);
  setTimeout(listen, SLOW_START_MS);
} else {
  listen();
}
