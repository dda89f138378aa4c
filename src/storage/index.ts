// Public surface of the storage layer (image stores, signed URLs, TTL sweeper) for the server and CLI.
// Import from here rather than from the individual files.

export * from './types.js';
export { FsImageStore, createFsImageStore, type FsImageStoreOptions } from './fs-store.js';
export {
  signImageUrl,
  verifyImageUrl,
  imageFilePath,
  type SignImageUrlParams,
  type VerifyImageUrlParams,
  type VerifyResult,
} from './signing.js';
export { startSweeper, type Sweeper, type SweeperLogger, type SweeperOptions } from './sweeper.js';
