// Public surface of the database layer (Db interface, embedded SQLite implementation) for the server and CLI.
// Import from here rather than from the individual files.

export { type Migration, sqliteMigrations } from './migrations/sqlite.js';
export { hashApiKey, openSqliteDb, SqliteDb, type SqliteDbOptions } from './sqlite.js';
export * from './types.js';
