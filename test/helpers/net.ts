// Free TCP ports on 127.0.0.1 for the throwaway servers tests start (redis-server, Postgres, s3rver), which need
// their port chosen before they run so that restart()/resume() can come back on the same one.
import { once } from 'node:events';
import { createServer } from 'node:net';

/** A port of 127.0.0.1 that nothing listened on a moment ago (the OS's pick for port 0). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}
