// Postgres schema migrations, the same tables as ./sqlite.ts in Postgres's dialect, applied in array order by
// src/db/postgres.ts under an advisory lock and recorded in `schema_migrations`. Append only, as for SQLite.

import type { Migration } from './sqlite.js';

export const postgresMigrations: readonly Migration[] = Object.freeze([
  {
    id: '001_init',
    sql: `
CREATE TABLE api_keys (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  key_hash      TEXT NOT NULL UNIQUE,
  created_at    BIGINT NOT NULL,
  last_used_at  BIGINT,
  revoked_at    BIGINT
);

CREATE TABLE usage_records (
  id             BIGSERIAL PRIMARY KEY,
  request_id     TEXT NOT NULL,
  key_id         TEXT REFERENCES api_keys(id),
  endpoint       TEXT NOT NULL,
  model          TEXT NOT NULL,
  served_model   TEXT NOT NULL,
  size           TEXT NOT NULL,
  n              INTEGER NOT NULL,
  quality        TEXT,
  input_tokens   INTEGER NOT NULL,
  output_tokens  INTEGER NOT NULL,
  end_user       TEXT,
  duration_ms    INTEGER NOT NULL,
  status         INTEGER NOT NULL,
  prompt         TEXT,
  created_at     BIGINT NOT NULL
);

CREATE INDEX usage_records_created_at ON usage_records (created_at);
CREATE INDEX usage_records_request_id ON usage_records (request_id);
CREATE INDEX usage_records_key_id ON usage_records (key_id);
`,
  },
  {
    id: '002_key_admin_limits',
    sql: `
ALTER TABLE api_keys ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_keys ADD COLUMN rpm INTEGER;
ALTER TABLE api_keys ADD COLUMN tpm INTEGER;
`,
  },
  {
    id: '003_usage_outcomes',
    sql: `
ALTER TABLE usage_records ADD COLUMN source TEXT;
ALTER TABLE usage_records ADD COLUMN images INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN error_code TEXT;
UPDATE usage_records SET
  source = CASE endpoint WHEN '/v1/images/edits' THEN 'image.edit' WHEN '/v1/images/variations' THEN 'image.variation'
    ELSE 'image.generation' END,
  images = CASE WHEN status = 200 THEN n ELSE 0 END;
`,
  },
]);
