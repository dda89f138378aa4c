// Browser safety for a server that often runs without auth on loopback: the Host must name this server (no DNS
// rebinding), and a browser's cross-site POST is refused (no CSRF). Server-to-server clients send neither header.
import type { FastifyRequest } from 'fastify';
import ipaddr from 'ipaddr.js';
import type { Config } from '../config/config.js';
import { type ApiError, badRequest, forbidden } from '../contract/errors.js';

/** Probed by load balancers and orchestrators with whatever Host they use; they reveal nothing. */
const PROBE_PATHS = new Set(['/healthz', '/readyz']);
/** Methods a page can send cross-site without changing anything (no route of ours writes on them). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** host or [v6] then an optional port: anything else (paths, userinfo, spaces) never names a server. */
const HOST_HEADER = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(\d{1,5}))?$/i;

/** The name a Host header gives, lowercased without the port; undefined when it is not a host[:port] at all. */
export function hostName(header: string): string | undefined {
  const m = HOST_HEADER.exec(header.trim());
  return m ? m[1].toLowerCase().replace(/\.$/, '') : undefined;
}

/**
 * An IP literal cannot be rebound: DNS rebinding needs a name the attacker controls, so any address is accepted
 * (LAN addresses, container and pod IPs, health checks) and only names are checked.
 */
function isIpLiteral(name: string): boolean {
  if (name.startsWith('[')) return ipaddr.IPv6.isValid(name.slice(1, -1));
  return ipaddr.IPv4.isValidFourPartDecimal(name);
}

/** Names the server answers to: localhost (and *.localhost, which browsers resolve to loopback), host, publicBaseUrl's host, allowedHosts. */
function servedNames(config: Readonly<Config>): Set<string> {
  const names = new Set(['localhost', config.host.toLowerCase(), ...config.server.allowedHosts]);
  if (config.publicBaseUrl) names.add(new URL(config.publicBaseUrl).hostname.toLowerCase());
  return names;
}

function shown(value: string): string {
  return value.length > 100 ? `${value.slice(0, 100)}...` : value;
}

/** (Easel wording) 403: a Host that does not name this server; a 421 would invite clients to retry elsewhere. */
function hostNotAllowed(host: string): ApiError {
  const name = hostName(host);
  const fix = name
    ? `To serve it under this name, add "${name}" to server.allowedHosts in the config (or set publicBaseUrl).`
    : 'Send the host name (and port) the server is reached at, nothing else.';
  return forbidden(`The Host header '${shown(host)}' does not name this server. ${fix}`, 'host_not_allowed');
}

/** (Easel wording) 403: a page on another site tried to make this server work. */
function crossSiteRefused(origin: string | undefined): ApiError {
  const from = origin ? ` (Origin '${shown(origin)}')` : '';
  return forbidden(
    `Cross-site requests from web pages are refused${from}. To allow a page on that origin, add it to server.allowedOrigins in the config.`,
    'cross_site_request',
  );
}

/** The origin of a URL-ish value as browsers write it ("https://a.example:8443"), or undefined ("null", junk). */
function originOf(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined;
  const origin = new URL(value).origin;
  return origin === 'null' ? undefined : origin;
}

export interface BrowserPolicy {
  /** Throws a 403 for an unknown Host, or a browser's cross-site request on a method that does work. */
  check(req: FastifyRequest): void;
}

export function browserPolicy(config: Readonly<Config>): BrowserPolicy {
  const names = servedNames(config);
  const anyHost = names.has('*');
  const origins = new Set(config.server.allowedOrigins);
  const anyOrigin = origins.has('*');
  const publicOrigin = config.publicBaseUrl ? originOf(config.publicBaseUrl) : undefined;
  if (publicOrigin) origins.add(publicOrigin);

  const hostAllowed = (host: string): boolean => {
    const name = hostName(host);
    if (name === undefined) return false;
    return anyHost || isIpLiteral(name) || names.has(name) || name.endsWith('.localhost');
  };

  /** Sec-Fetch-Site decides when the browser sends it; otherwise an Origin must be ours or allowed. */
  const originAllowed = (req: FastifyRequest): boolean => {
    const origin = header(req, 'origin');
    if (anyOrigin || (origin !== undefined && origins.has(originOf(origin) ?? ''))) return true;
    const site = header(req, 'sec-fetch-site');
    if (site !== undefined) return site.toLowerCase() !== 'cross-site';
    if (origin === undefined) return true;
    return originOf(origin) === originOf(`${req.protocol}://${req.host}`);
  };

  return {
    check(req) {
      if (PROBE_PATHS.has(req.url.split('?')[0])) return;
      if (!req.host)
        throw badRequest('The request has no Host header. Send the host name (and port) the server is reached at.', null, 'missing_host');
      if (!hostAllowed(req.host)) throw hostNotAllowed(req.host);
      if (!SAFE_METHODS.has(req.method) && !originAllowed(req)) throw crossSiteRefused(header(req, 'origin'));
    },
  };
}

function header(req: FastifyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}
