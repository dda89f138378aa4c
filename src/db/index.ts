// Public surface of the database layer (Db interface, embedded SQLite implementation) for the server and CLI.
// Import from here rather than from the individual files.

export * from './types.js';
export { SqliteDb, openSqliteDb, hashApiKey, type SqliteDbOptions } from './sqlite.js';
export { sqliteMigrations, type Migration } from './migrations/sqlite.js';
