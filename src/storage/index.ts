// Public surface of the storage layer (image stores, signed URLs, TTL sweeper) for the server and CLI.
// Import from here rather than from the individual files.

export { createFsImageStore, DEFAULT_LEFTOVER_GRACE_MS, FsImageStore, type FsImageStoreOptions, type StoreFs } from './fs-store.js';
export { type ImagesSettings, MAX_PRESIGN_SECONDS, type OpenedStore, type OpenImageStoreOptions, openImageStore } from './open.js';
export type { S3ImageStore, S3ImageStoreOptions } from './s3.js';
export { parseS3StoreUrl, S3_STORE_RULE, type S3Location } from './s3-url.js';
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
