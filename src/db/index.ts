// Public surface of the database layer (Db interface, embedded SQLite and Postgres implementations, openDb) for the
// server and CLI. Import from here rather than from the individual files.

export { postgresMigrations } from './migrations/postgres.js';
export { type Migration, sqliteMigrations } from './migrations/sqlite.js';
export { isPostgresUrl, type OpenDbOptions, openDb } from './open.js';
export { openPostgresDb, PostgresDb, type PostgresDbOptions, redactDbUrl } from './postgres.js';
export { hashApiKey } from './rows.js';
export { openSqliteDb, SqliteDb, type SqliteDbOptions } from './sqlite.js';
export * from './types.js';
