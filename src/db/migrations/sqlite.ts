// SQLite schema migrations, applied in array order by src/db/sqlite.ts and recorded in `schema_migrations`.
// They are TypeScript string constants rather than .sql files on purpose: tsc does not copy .sql files into dist/,
// and this way the same migrations are found when tests run src/ through vitest and when dist/ runs after a build.
// Rules: never edit or reorder a released migration; append a new one. Keep SQL portable where it costs nothing
// (BIGINT epoch-ms times, TEXT ids, no SQLite-only functions) so the Postgres dialect stays a close copy.

export interface Migration {
  /** 'NNN_name'; sorted order is application order. */
  id: string;
  sql: string;
}

export const sqliteMigrations: readonly Migration[] = Object.freeze([
  {
    id: '001_init',
    sql: `
CREATE TABLE api_keys (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  key_hash      TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the key; the key itself is never stored
  created_at    BIGINT NOT NULL,
  last_used_at  BIGINT,
  revoked_at    BIGINT
);

CREATE TABLE usage_records (
  id             INTEGER PRIMARY KEY,  -- rowid; Postgres: BIGSERIAL
  request_id     TEXT NOT NULL,        -- not unique: clients may resend their own x-request-id
  key_id         TEXT REFERENCES api_keys(id),
  endpoint       TEXT NOT NULL,
  model          TEXT NOT NULL,
  served_model   TEXT NOT NULL,
  size           TEXT NOT NULL,
  n              INTEGER NOT NULL,
  quality        TEXT,
  input_tokens   INTEGER NOT NULL,
  output_tokens  INTEGER NOT NULL,
  end_user       TEXT,                 -- OpenAI's "user" field ("user" is reserved in Postgres)
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
ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;  -- 1: may read the organization Usage API
ALTER TABLE api_keys ADD COLUMN rpm INTEGER;                       -- requests per minute; NULL: no per-key limit
ALTER TABLE api_keys ADD COLUMN tpm INTEGER;                       -- tokens per minute; NULL: no per-key limit
`,
  },
  {
    id: '003_usage_outcomes',
    sql: `
ALTER TABLE usage_records ADD COLUMN source TEXT;      -- image.generation | image.edit | image.variation (Usage API)
ALTER TABLE usage_records ADD COLUMN images INTEGER NOT NULL DEFAULT 0;  -- images delivered; 0 for a failed request
ALTER TABLE usage_records ADD COLUMN error_code TEXT;  -- the error's code when the request failed (or was cancelled)
UPDATE usage_records SET
  source = CASE endpoint WHEN '/v1/images/edits' THEN 'image.edit' WHEN '/v1/images/variations' THEN 'image.variation'
    ELSE 'image.generation' END,
  images = CASE WHEN status = 200 THEN n ELSE 0 END;
`,
  },
]);
