/** Protocol constants shared by every layer. PROTOCOL.md documents each one. */

/** Name carried in `hello`, so a stray connection from another program is recognised. */
export const PROTOCOL_NAME = 'trosyn-sync';

/** Protocol versions this build speaks, newest last. The handshake picks the highest common one. */
export const PROTOCOL_VERSIONS: readonly number[] = [1, 2];

/**
 * The change log identity a version 1 peer's log is known by: version 1 had no
 * identities, so its cursors are kept under this one.
 */
export const V1_PEER_LOG = '00000000000000000000000000000001';

/** TCP port of the hub's sync service (mutual TLS). */
export const DEFAULT_SYNC_PORT = 17700;
/** TCP port of the hub's admin HTTP API. */
export const DEFAULT_ADMIN_PORT = 17701;
/** Where the admin API listens unless told otherwise: this machine only. */
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
/** Days the hub keeps its event log unless told otherwise. */
export const DEFAULT_EVENT_RETENTION_DAYS = 30;
/** UDP port of hub discovery (announcements and queries). */
export const DEFAULT_DISCOVERY_PORT = 17702;
/** TCP port of a child agent's local REST API (127.0.0.1 only). */
export const DEFAULT_CHILD_API_PORT = 17710;

/** IPv4 discovery group: administratively scoped (RFC 2365), stays inside the site. */
export const DISCOVERY_GROUP_V4 = '239.255.77.2';
/** IPv6 discovery groups: link-local and site-local scope. */
export const DISCOVERY_GROUP_V6_LINK = 'ff02::7702';
export const DISCOVERY_GROUP_V6_SITE = 'ff05::7702';

/** DNS-SD service type under which hubs register (`_trosyn-sync._tcp.local`). */
export const DNS_SD_TYPE = 'trosyn-sync';

/** Largest frame accepted unless configured otherwise (16 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * The feature a peer announces in `hello`/`welcome` when it exchanges file content
 * (`files.want` and chunk frames; PROTOCOL.md, "File content"). Content is fetched
 * only over connections where both sides announce it.
 */
export const FILES_FEATURE = 'files';

/**
 * The feature a peer announces when it takes the hub's collection policy
 * (`policy.set`; PROTOCOL.md, "Collection policy"). The hub sends it at every
 * connection and whenever it changes.
 */
export const POLICY_FEATURE = 'policy';
