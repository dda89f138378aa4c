// Public surface of the storage layer (image stores, signed URLs, TTL sweeper) for the server and CLI.
// Import from here rather than from the individual files.

export { createFsImageStore, DEFAULT_LEFTOVER_GRACE_MS, FsImageStore, type FsImageStoreOptions, type StoreFs } from './fs-store.js';
export {
  imageFilePath,
  type SignImageUrlParams,
  signImageUrl,
  type VerifyImageUrlParams,
  type VerifyResult,
  verifyImageUrl,
} from './signing.js';
export { type Sweeper, type SweeperLogger, type SweeperOptions, startSweeper } from './sweeper.js';
export * from './types.js';
