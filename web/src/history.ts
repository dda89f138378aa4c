// Recent results kept in the browser's IndexedDB (images as Blobs), so they survive a reload; the newest
// KEEP entries stay, older ones are dropped as new ones arrive. Nothing here is sent anywhere.

export interface HistoryEntry {
  id: string;
  createdAt: number;
  mode: string;
  model: string;
  prompt: string;
  size: string;
  format: string;
  blob: Blob;
  requestId: string | null;
  seed: string | null;
}

const DB_NAME = 'easel-playground';
const STORE = 'results';
const KEEP = 60;

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function withStore<T>(mode: IDBTransactionMode, run: (store: IDBObjectStore) => IDBRequest<T> | undefined): Promise<T | undefined> {
  const db = await open();
  try {
    return await new Promise<T | undefined>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = run(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Newest first. */
export async function listHistory(): Promise<HistoryEntry[]> {
  const all = (await withStore<HistoryEntry[]>('readonly', (s) => s.getAll())) ?? [];
  return all.sort((a, b) => b.createdAt - a.createdAt);
}

export async function addHistory(entries: HistoryEntry[]): Promise<void> {
  await withStore('readwrite', (s) => {
    for (const e of entries) s.put(e);
    return undefined;
  });
  const all = await listHistory();
  const old = all.slice(KEEP);
  if (old.length) {
    await withStore('readwrite', (s) => {
      for (const e of old) s.delete(e.id);
      return undefined;
    });
  }
}

export async function clearHistory(): Promise<void> {
  await withStore('readwrite', (s) => s.clear());
}
