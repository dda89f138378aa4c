// How the page talks to the server: the API key (sessionStorage only), the model list, and requests whose
// failures become RequestError with OpenAI's message, param and code, so the form can show them by their control.

const KEY_NAME = 'easel.apiKey';

export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY_NAME),
  set: (key: string): void => sessionStorage.setItem(KEY_NAME, key),
  clear: (): void => sessionStorage.removeItem(KEY_NAME),
};

/** One entry of GET /v1/models, with Easel's additions the page reads. */
export interface ModelInfo {
  id: string;
  family: 'dall-e-2' | 'dall-e-3' | 'gpt-image';
  served_by: string;
  extensions: string[];
  capabilities: { native_sizes: string[]; transparent_background: boolean; image_to_image: boolean };
}

export class RequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly requestId: string | null = null,
  ) {
    super(message);
  }
}

interface ErrorBody {
  error?: { message?: string; param?: string | null; code?: string | null };
}

export function authHeaders(): Record<string, string> {
  const key = apiKey.get();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** OpenAI's error body of a failed response, or a plain sentence when the body is not one. */
async function errorOf(res: Response): Promise<RequestError> {
  const requestId = res.headers.get('x-request-id');
  let body: ErrorBody = {};
  try {
    body = (await res.json()) as ErrorBody;
  } catch {
    // not JSON: a proxy's page, say
  }
  const e = body.error;
  const message = e?.message ?? `The server answered ${res.status} ${res.statusText}.`;
  return new RequestError(message, res.status, e?.param ?? null, e?.code ?? null, requestId);
}

/** fetch with the key; a response that is not 2xx throws its RequestError, a network failure a plain one. */
export async function call(path: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) } });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new RequestError(`The server could not be reached (${(err as Error).message}).`, 0);
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function listModels(): Promise<ModelInfo[]> {
  const res = await call('/v1/models');
  return ((await res.json()) as { data: ModelInfo[] }).data;
}
