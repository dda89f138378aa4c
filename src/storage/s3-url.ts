// `--store s3://BUCKET[/PREFIX]` parsed and checked in one place, for the config schema and the store it opens.
// Bucket names follow S3's rules (3-63 lowercase letters, digits, dots, hyphens); the prefix is plain key characters.

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash; '' for the bucket's root. */
  prefix: string;
}

export const S3_STORE_RULE =
  "expected s3://BUCKET[/PREFIX]: a bucket name of 3-63 lowercase letters, digits, dots and hyphens, and a prefix of letters, digits and ! - _ . * ' ( ) /";

const STORE_URL = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/([A-Za-z0-9!\-_.*'()/]*))?$/;

/** The bucket and prefix of an s3:// store URL, or undefined when it is not one (see S3_STORE_RULE). */
export function parseS3StoreUrl(text: string): S3Location | undefined {
  const m = STORE_URL.exec(text);
  if (!m || m[1].includes('..')) return undefined;
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((part) => part === '.' || part === '..') || prefix.includes('//')) return undefined;
  return { bucket: m[1], prefix };
}
