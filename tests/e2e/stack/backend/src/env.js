// Environment validation as in the reference's lib/env.ts: a missing or invalid variable
// stops the process at start, naming the variable (never its value).
const { z } = require('zod');

const base = {
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().positive().default(4000),
  DATABASE_URL: z.string().url(),
  ANTHROPIC_API_KEY: z.string().min(1),
  OPENAI_API_KEY: z.string().optional(),
  APP_VARIANT: z.enum(['good', 'bad', 'newenv', 'slow', 'crash']).default('good'),
};

// The "newenv" release needs a variable the releases before it did not.
const newenv = { ...base, FEATURE_STORE_URL: z.string().url() };

function validateEnv(source) {
  const schema = z.object(source.APP_VARIANT === 'newenv' ? newenv : base);
  const parsed = schema.safeParse(source);
  if (!parsed.success) {
    console.error('Invalid environment variables:');
    console.error(JSON.stringify(parsed.error.format(), null, 2));
    throw new Error('Invalid environment variables');
  }
  return parsed.data;
}

module.exports = { validateEnv };
