/**
 * Every error code Trosyn Sync reports on purpose: the one table. Each code has its
 * area (a section of docs/ERRORS.md), its HTTP status where an HTTP API can return
 * it, what it means and what to do. TrosynError takes only these codes, so a new
 * code is added here or the build fails; docs/ERRORS.md is generated from this
 * file (`npm run docs:errors`), and a test keeps the two the same.
 */

/** One code's entry. */
export interface ErrorInfo {
  /** The section of docs/ERRORS.md it is listed in. */
  area: ErrorArea;
  /** The HTTP status an API answers it with; absent for codes no API returns. */
  status?: number;
  /** What happened, for the person who meets it. */
  meaning: string;
  /** What to do about it. */
  fix: string;
}

/** The sections of docs/ERRORS.md, in order, with the text before each table. */
export const ERROR_AREAS = [
  { name: 'Records and the engine', intro: '' },
  { name: 'Sync between replicas', intro: '' },
  { name: 'Store', intro: '' },
  {
    name: 'Files',
    intro:
      'File content is kept as chunks named by the SHA-256 of their bytes, in `<dataDir>/chunks`. A chunk there is always complete and verified: a crash or a full disk leaves it absent, never half.',
  },
  { name: 'Wire protocol', intro: '' },
  { name: 'Identity and transport', intro: '' },
  { name: 'Discovery', intro: '' },
  { name: 'Pairing and devices', intro: '' },
  { name: 'Scopes', intro: '' },
  { name: 'Command line and configuration', intro: '' },
  {
    name: 'Backup and restore',
    intro:
      '`trosyn-sync backup --out DIR` copies a node while its agent runs; `trosyn-sync restore DIR --data D` puts it back. See [OPERATIONS.md](OPERATIONS.md).',
  },
  {
    name: 'HTTP APIs',
    intro:
      'The hub\'s admin API and the child\'s local API (see [API.md](API.md)) answer every error as JSON `{ "code", "message", "details"? }` with the HTTP status of the tables\' status column; a code without one is never an API\'s answer, and an unexpected failure is 500 `INTERNAL_ERROR`. The codes only the HTTP APIs return:',
  },
] as const;

export type ErrorArea = (typeof ERROR_AREAS)[number]['name'];

export const ERROR_CODES = {
  INVALID_COLLECTION: {
    area: 'Records and the engine',
    status: 400,
    meaning:
      'A collection name is empty, longer than 64 characters, uses characters outside `A-Z a-z 0-9 _ . -`, starts with `.` or `-`, or starts with `_` (reserved for Trosyn Sync).',
    fix: 'Use a name like `requests` or `hr.policies`.',
  },
  INVALID_RECORD_ID: {
    area: 'Records and the engine',
    status: 400,
    meaning: 'A record id is empty, longer than 256 characters, or contains control characters.',
    fix: 'Use a printable id, or let Trosyn Sync create a ULID.',
  },
  INVALID_BODY: {
    area: 'Records and the engine',
    status: 400,
    meaning:
      'A record body is not a JSON object (an array, a string, `null`), or holds values JSON cannot carry (`NaN`, `Infinity`, dates, functions, class instances).',
    fix: 'Send a plain JSON object; convert dates to ISO strings. To delete, use delete, not a `null` body.',
  },
  RECORD_TOO_LARGE: {
    area: 'Records and the engine',
    status: 413,
    meaning: "The body's canonical JSON is larger than `maxRecordBytes` (default 1 MiB).",
    fix: 'Store large content as a file, or raise `maxRecordBytes` on every replica.',
  },
  RECORD_NOT_FOUND: {
    area: 'Records and the engine',
    status: 404,
    meaning: 'No record with that collection and id.',
    fix: 'Check the collection and id.',
  },
  REVISION_NOT_FOUND: {
    area: 'Records and the engine',
    status: 404,
    meaning: 'The record has no revision with that hash or prefix (prefixes need at least 4 characters).',
    fix: "List the record's history and copy a revision hash.",
  },
  AMBIGUOUS_REVISION: {
    area: 'Records and the engine',
    status: 400,
    meaning: 'A revision prefix matches several revisions.',
    fix: 'Give more characters of the hash.',
  },
  REVISION_PRUNED: {
    area: 'Records and the engine',
    status: 410,
    meaning: "History retention dropped that revision's body, so it cannot be restored.",
    fix: 'Choose a newer revision, or keep more history (`retention`).',
  },
  NO_CONFLICT: {
    area: 'Records and the engine',
    status: 409,
    meaning: 'Resolve was asked for a record that has no conflict.',
    fix: 'List open conflicts first.',
  },
  CONFLICT_NOT_FOUND: {
    area: 'Records and the engine',
    status: 404,
    meaning: 'No conflict entry with that number on this node (conflict numbers are local to each node).',
    fix: 'Take the `conflictId` from the conflict list of the same node.',
  },
  INVALID_OPTION: {
    area: 'Records and the engine',
    meaning:
      "An option is invalid or conflicts with another (also: a store opened with another device's ID).",
    fix: 'The message names the option and what to change.',
  },
  NOT_STARTED: {
    area: 'Records and the engine',
    status: 503,
    meaning: 'A replica or component was used before `start()` or after `stop()`.',
    fix: 'Call `start()` first.',
  },
  INVALID_REVISION: {
    area: 'Sync between replicas',
    meaning:
      'A revision from a peer is malformed, or its hash does not match its content (corruption or tampering). Refused alone; the rest of the batch applies.',
    fix: "Nothing on this side; the sending device's log names the revision.",
  },
  UNKNOWN_ANCESTOR: {
    area: 'Sync between replicas',
    meaning: 'A revision names a parent this node has never received. Refused alone.',
    fix: 'Usually a sender bug; a full resync of that device repairs it.',
  },
  CLOCK_SKEW: {
    area: 'Sync between replicas',
    meaning:
      "A revision's timestamp is further in the future than `maxClockSkewMs` (default 24 h). Refused alone.",
    fix: "Fix the writing device's system clock (enable NTP).",
  },
  LOCAL_ONLY_COLLECTION: {
    area: 'Sync between replicas',
    meaning: 'A peer sent a revision of a collection that is local-only here. Refused alone.',
    fix: 'Local-only is a collection policy set on the hub (dashboard Settings, `trosyn-sync settings`, `PUT /api/settings`) and sent to every child; a device that still sends the collection wrote it before the policy reached it. Those writes stay on that device.',
  },
  INVALID_POLICY: {
    area: 'Sync between replicas',
    status: 400,
    meaning:
      'A collection policy (conflict strategy, local-only, hub-only, retention) was refused: an unknown strategy, a bad collection name or pattern, a retention limit out of range. Nothing changed.',
    fix: 'The message names the setting; strategies are lww, hub-wins, merge and manual.',
  },
  CHILD_POLICY_SETTING: {
    area: 'Command line and configuration',
    meaning:
      "A child's `config.json` sets a conflict strategy, retention, hub-only collections or approval mode: those are the hub's to set, and reach every child over sync. A child may only add local-only collections (and choose its files collections' transfer policy).",
    fix: "Remove the setting from the child's config.json and set it on the hub (dashboard Settings, `trosyn-sync settings`).",
  },
  SYNC_GAP: {
    area: 'Sync between replicas',
    meaning:
      "A batch starts after the receiver's cursor: applying it would skip changes. The session closes and restarts from the cursor.",
    fix: 'Nothing; reconnecting resumes from the cursor. Repeated gaps point to a sender bug.',
  },
  UNEXPECTED_MESSAGE: {
    area: 'Sync between replicas',
    meaning: "A peer sent a message that does not fit the session's state. The session closes.",
    fix: 'Upgrade the older side; see PROTOCOL.md.',
  },
  CHANGE_LOG_ROLLED_BACK: {
    area: 'Sync between replicas',
    meaning:
      "A peer announced a change log identity it had already replaced by another: its store was restored from an older copy. The error carries the sender's cursor for the newer log; the node that receives it checks that it gave that position (a peer cannot make it up), then gives its log a new identity and reconnects; every peer then gets its log from the beginning (already held revisions are skipped). Without such a position the node keeps its log and logs a warning.",
    fix: "Nothing; it repairs itself. If it repeats, two copies of one device's data directory may be running on two machines: stop one. If the node logs that the peer showed no position of a newer log, the peer runs a release from before that check, or is not behaving: upgrade it, or revoke it.",
  },
  SESSION_CLOSED: {
    area: 'Sync between replicas',
    meaning: 'A sync session closed before it caught up.',
    fix: 'Reconnects happen on their own; check the connection.',
  },
  STORE_CLOSED: {
    area: 'Store',
    status: 503,
    meaning: 'The store was used before `start()` or after `stop()`.',
    fix: 'Start the replica first.',
  },
  STORE_OPEN_FAILED: {
    area: 'Store',
    meaning:
      'The database file could not be opened (missing permission, not a database, locked by another program), or a PostgreSQL database could not be set up (a role without the right to create its schema, a connection string that is not one). Unreachable servers, refused sign-ins and missing databases have codes of their own.',
    fix: 'The message gives the path (for PostgreSQL the connection, without its password) and cause.',
  },
  STORE_CORRUPT: {
    area: 'Store',
    meaning:
      'SQLite found the store file damaged, or it is not a database at all. Damage in the middle of a file shows when a command reads that part.',
    fix: 'Restore a backup; or move the file away and start the agent with `--recover`, which gets back from the network what this node had (writes that never left it are lost).',
  },
  STORE_MISSING: {
    area: 'Store',
    meaning:
      'The store file (`trosyn.db`) is missing or empty, but the data directory belongs to a node that has run (a hub with `hub.db`, a paired child). Starting afresh would hide the loss, so the agent and the CLI refuse. For a hub on PostgreSQL: the database its `config.json` names holds no store or registry schema (`trosyn_store`, `trosyn_hub`), dropped or replaced since the hub ran on it.',
    fix: 'If the store was lost, start the agent with `--recover`: it begins with an empty store and gets back from the network what this node had (writes that never left it are lost). Or restore a backup. A lost PostgreSQL registry comes back only from a backup of the database.',
  },
  STORE_SCHEMA_TOO_NEW: {
    area: 'Store',
    meaning:
      'The database was written by a newer Trosyn Sync (its schema version is above what this build knows). Nothing was changed.',
    fix: 'Upgrade Trosyn Sync, or go back to the copy the upgrade made before migrating (`<file>.v<N>.bak` beside the database), or restore a backup made by this version.',
  },
  STORE_WRITE_FAILED: {
    area: 'Store',
    status: 503,
    meaning:
      'The disk is full or refused a write. Nothing of that write was kept; earlier acknowledged writes are intact.',
    fix: 'Free disk space; the operation can be retried.',
  },
  STORE_UNREACHABLE: {
    area: 'Store',
    meaning:
      "The hub's PostgreSQL server could not be reached: connection refused, no such host or socket, or no answer within 10 s. The message names the server (never the password) and the cause.",
    fix: 'Check that PostgreSQL runs and listens at that address (`listen_addresses`, the port, the socket directory) and that no firewall is in between.',
  },
  STORE_AUTH_FAILED: {
    area: 'Store',
    meaning:
      "PostgreSQL refused to sign the hub's role in: a wrong password, none given where the server asks for one, an unknown role, or no `pg_hba.conf` line that lets it in.",
    fix: 'Give the password with `PGPASSWORD`, `--store-password-file FILE` or `TROSYN_STORE_PASSWORD_FILE` (see DEPLOY.md), and check the role and `pg_hba.conf`.',
  },
  STORE_DATABASE_MISSING: {
    area: 'Store',
    meaning: 'The PostgreSQL server is there, but the database named in the connection does not exist.',
    fix: 'Create it (`createdb -O trosyn trosyn`, see DEPLOY.md), or correct its name in `--store`.',
  },
  STORE_PASSWORD_UNREADABLE: {
    area: 'Store',
    meaning:
      "The file holding the PostgreSQL password (`--store-password-file`, `TROSYN_STORE_PASSWORD_FILE`, or the one the data directory's `config.json` remembers) cannot be read, or is empty.",
    fix: 'Give a readable file holding the password on its first line; run as the user the hub runs as.',
  },
  STORE_SQLITE_ONLY: {
    area: 'Store',
    meaning:
      'The command works on the SQLite files of a data directory (backup, restore, scheduled backups, migrate-store), and this hub keeps its records and registry in PostgreSQL.',
    fix: "Back the database up with PostgreSQL's tools (`pg_dump`, base backups), and the data directory (identity, `config.json`, `chunks/`) with a file copy: see DEPLOY.md.",
  },
  STORE_TARGET_NOT_EMPTY: {
    area: 'Store',
    meaning:
      '`migrate-store` was given a PostgreSQL database whose hub schemas (`trosyn_store`, `trosyn_hub`) already hold tables: a hub runs on it, or a move was made before. Nothing was copied or changed.',
    fix: 'Move into a database without those schemas (`CREATE DATABASE`), or drop them if what they hold is not needed (`DROP SCHEMA trosyn_store, trosyn_hub CASCADE`).',
  },
  FILE_UNREADABLE: {
    area: 'Files',
    meaning:
      'The path given to record a file is missing, a folder, a named pipe or another non-file, or cannot be opened or read (permission denied, a link loop, an I/O error). Nothing was recorded.',
    fix: 'Give the path of a regular file this user can read.',
  },
  FILE_CHANGED_WHILE_READING: {
    area: 'Files',
    meaning:
      'The file changed while it was read (its size or times moved, or it read differently a second time), so its content may mix two states: no version was recorded.',
    fix: 'Record it again once the program writing it has finished.',
  },
  INVALID_FILE_NAME: {
    area: 'Files',
    status: 400,
    meaning:
      'A file name is empty, longer than 255 characters, has control characters (as record ids), a lone surrogate or a backslash, starts or ends with `/`, has `//`, or a `.` or `..` folder.',
    fix: 'Use a name like `report.pdf` or `projects/2026/plan.docx`.',
  },
  NOT_A_FILE: {
    area: 'Files',
    status: 409,
    meaning: 'The record named is a plain record, not a file version.',
    fix: 'Use the records commands for it, or give the name of a file.',
  },
  FILE_CONTENT_MISSING: {
    area: 'Files',
    status: 409,
    meaning:
      "A file version's content is not all on this device yet: it is still arriving from the hub (or from the child that wrote it, on the hub).",
    fix: 'Wait while the agent syncs (its status shows the progress), or read an older version that is here.',
  },
  FILE_CONTENT_UNAVAILABLE: {
    area: 'Files',
    status: 503,
    meaning:
      "A file version's content is not on this device and could not be fetched now: its collection fetches content on demand and the hub is not connected, or the hub does not have it yet.",
    fix: 'Connect the device to its hub (see `trosyn-sync status`) and open the file again.',
  },
  FILE_CONTENT_ABSENT: {
    area: 'Files',
    meaning:
      "The device a file's content is fetched from (the hub; on the hub, the writer) does not have some of its chunks. The version stays incomplete (`FILE_CONTENT_MISSING`) and is asked for again, less often while nothing arrives.",
    fix: 'Nothing while the content is on its way. If it stays, connect the device that wrote the file to the hub, or record the file again there.',
  },
  FILE_FETCH_STALLED: {
    area: 'Files',
    meaning:
      'A peer took a request for chunks and then sent none of them for a minute (default): the fetch gives up instead of holding the transfer. Chunks that arrive late are dropped quietly; the content is asked for again on the next round.',
    fix: 'Nothing: the transfer goes on by itself. If it keeps stalling, look at the peer (`trosyn-sync status`, its log) for a disk or network problem.',
  },
  FILE_CONTENT_CORRUPT: {
    area: 'Files',
    meaning:
      "A file version's content, read back whole, does not hash to the SHA-256 its record gives: a chunk was damaged after it was checked.",
    fix: 'Report it; the damaged chunk is fetched again from the hub at the next sync.',
  },
  FILE_MANIFEST_INVALID: {
    area: 'Files',
    meaning:
      "A file version's chunk list does not decode, or does not add up to the version's size and chunk count: the device that wrote it recorded a wrong list.",
    fix: 'Record the file again on the device that has it; this version cannot be read anywhere.',
  },
  INVALID_CHUNK_HASH: {
    area: 'Files',
    meaning: 'A chunk name is not a SHA-256 digest written as 64 lowercase hexadecimal characters.',
    fix: 'A bug in the caller or a damaged message from a peer; the message shows the name given.',
  },
  CHUNK_HASH_MISMATCH: {
    area: 'Files',
    meaning:
      "A chunk's bytes do not hash to the name they were offered under (damaged in transit, or a faulty peer). Nothing was stored.",
    fix: 'Nothing; the chunk is fetched again. If it repeats for one peer, check that device.',
  },
  CHUNK_NOT_FOUND: {
    area: 'Files',
    meaning: 'The chunk store has no chunk with that hash.',
    fix: 'Fetch the chunk from a peer that has it; `missing()` lists which chunks of a file are absent.',
  },
  CHUNK_CORRUPT: {
    area: 'Files',
    meaning:
      "A stored chunk's bytes no longer hash to its name: the disk damaged it, or the file was changed by hand. The damaged chunk has been removed, so it is missing now.",
    fix: "Nothing for one chunk: it is fetched again from a peer. If it repeats, check the disk (SMART, the filesystem's check).",
  },
  CHUNK_STORE_FULL: {
    area: 'Files',
    meaning:
      'The disk holding the chunk store is full (ENOSPC) or the disk quota is used up (EDQUOT). Nothing of the chunk being written was kept; chunks stored before are intact.',
    fix: 'Free disk space (or raise the quota); storing the chunk again then succeeds.',
  },
  CHUNK_STORE_FAILED: {
    area: 'Files',
    meaning:
      'The chunk directory could not be read or written for another reason than a full disk: missing permission, a read-only filesystem, an I/O error. The message names the path and the cause.',
    fix: 'Fix the cause the message gives: the data directory must be writable by the user the agent runs as.',
  },
  INVALID_CHUNKER_OPTIONS: {
    area: 'Files',
    meaning:
      'A chunker size option is out of range or contradicts another: `minSize` at least 64, `avgSize` a power of two from 256 B to 16 MiB, `maxSize` at most 64 MiB, `minSize` < `avgSize` < `maxSize`, `normalization` 0 to 3. The message names the option.',
    fix: 'Correct the option, or leave it out to get its default. Every device must chunk with the same settings for identical files to share chunks.',
  },
  FRAME_TOO_LARGE: {
    area: 'Wire protocol',
    meaning:
      "A frame's length field is over the maximum frame size (default 16 MiB), or a message to send would not fit in one frame. Refused from the length alone; the connection closes.",
    fix: 'Raise `maxFrameBytes` on both sides, or send less per message (smaller sync batches).',
  },
  BAD_FRAME: {
    area: 'Wire protocol',
    meaning:
      'A frame header is malformed: length below 2, an unknown kind, reserved flag bits set, or the reserved compression value 3. The byte stream cannot be cut reliably any more, so the connection closes.',
    fix: 'The peer is not a Trosyn Sync build of a known version (or something rewrites the stream); check what is listening on the port.',
  },
  INVALID_MESSAGE: {
    area: 'Wire protocol',
    meaning:
      'A message is not UTF-8 JSON, not an object with a string `type`, or a field fails its schema (the message names the field). The connection closes.',
    fix: 'A bug in the sending build; upgrade it. See PROTOCOL.md for the fields and limits.',
  },
  UNKNOWN_MESSAGE_TYPE: {
    area: 'Wire protocol',
    meaning:
      "A message's `type` is not one this build knows for the negotiated version. The connection closes.",
    fix: 'Upgrade the older side; a newer peer should not send new types to a version that lacks them.',
  },
  UNSUPPORTED_VERSION: {
    area: 'Wire protocol',
    meaning: 'Hello and welcome share no protocol version. The server answers with this error and closes.',
    fix: "Upgrade the older side so both speak a common version (the error's details list the versions offered and spoken).",
  },
  UNSUPPORTED_COMPRESSION: {
    area: 'Wire protocol',
    meaning:
      'A frame (or a configuration) uses a compression codec this build does not have, e.g. `zstd` where its native module did not load.',
    fix: 'Reinstall so the native module builds, or let the handshake negotiate another codec.',
  },
  DECOMPRESSION_FAILED: {
    area: 'Wire protocol',
    meaning:
      'A compressed payload is corrupt or truncated, or would inflate beyond the maximum frame size (a decompression bomb is refused before it is allocated). The connection closes.',
    fix: 'Usually a corrupted stream or a hostile peer; check the peer. Raise `maxFrameBytes` on both sides only if legitimate payloads are that large.',
  },
  INVALID_DEVICE_ID: {
    area: 'Identity and transport',
    status: 400,
    meaning:
      'A device ID is not 64 hex characters nor the readable `XXXXXXX-...` form, or a check character does not match (a typo).',
    fix: "Copy the ID again from the device's `status`.",
  },
  NO_CLIENT_CERTIFICATE: {
    area: 'Identity and transport',
    meaning: 'A client connected without a certificate; every device authenticates with its own.',
    fix: "Use Trosyn Sync's child agent, which presents its identity; other TLS clients need `-cert` and `-key`.",
  },
  NO_SERVER_CERTIFICATE: {
    area: 'Identity and transport',
    meaning: 'The server presented no certificate.',
    fix: 'The address does not belong to a Trosyn Sync hub.',
  },
  HUB_IDENTITY_MISMATCH: {
    area: 'Identity and transport',
    meaning:
      "The server at the hub's address presented another certificate than the pinned hub's: another machine answers there (a man in the middle, or a reinstalled hub). Nothing was sent to it.",
    fix: 'If the hub was reinstalled with a new identity, pair the device again; otherwise investigate the network.',
  },
  DEVICE_NOT_ALLOWED: {
    area: 'Identity and transport',
    meaning: "The hub does not know this device's certificate.",
    fix: 'Pair the device with a code from the hub.',
  },
  DEVICE_PENDING_APPROVAL: {
    area: 'Identity and transport',
    meaning: "The device is paired but the hub requires an admin's approval first.",
    fix: 'Approve it: `trosyn-sync devices approve <id>` on the hub, or `POST /api/devices/<id>/approve` on the admin API.',
  },
  DEVICE_REVOKED: {
    area: 'Identity and transport',
    status: 409,
    meaning:
      'The admin revoked this device; it is disconnected and refused for good, and cannot pair again with the same identity.',
    fix: 'Nothing on the device; the admin decides.',
  },
  TLS_HANDSHAKE_FAILED: {
    area: 'Identity and transport',
    meaning:
      'A client failed the TLS handshake (plaintext, TLS 1.2 or older, or a broken client). Recorded by the hub; the client sees a TLS alert.',
    fix: 'Use a TLS 1.3 client.',
  },
  RATE_LIMITED: {
    area: 'Identity and transport',
    status: 429,
    meaning:
      'On a connection: the hub dropped a TCP connection: too many from that address. Over HTTP: too many wrong tokens from this address (admin API: 10, then 10 a minute; wrong tokens and used or expired links at the dashboard sign-in form count too). Until an attempt refills, the address is refused even with the right token (a dashboard already signed in stays in); `Retry-After` says how many seconds.',
    fix: 'Wait; a device reconnecting normally never hits this. Over HTTP: wait the given seconds and fix the token. Repeated hits from an unknown address mean someone is guessing.',
  },

  SCOPES_CHANGED: {
    area: 'Identity and transport',
    meaning:
      "The hub closed a child's connection because the device moved to another group or its group's scopes changed; the child reconnects at once and syncs under its new scopes.",
    fix: 'Nothing; it is the hub applying an admin change.',
  },
  PEER_ERROR: {
    area: 'Identity and transport',
    meaning:
      "The peer ended the connection or a request with an error code this build does not know (a newer peer); `details.peerCode` holds the peer's code.",
    fix: "Upgrade this side; the peer's log explains the code.",
  },
  HANDSHAKE_TIMEOUT: {
    area: 'Identity and transport',
    meaning: 'The peer did not complete `hello`/`welcome` in time.',
    fix: 'Check the peer is a Trosyn Sync device and the network is not dropping packets.',
  },
  HANDSHAKE_FAILED: {
    area: 'Identity and transport',
    meaning: 'The handshake failed for another reason (the connection dropped).',
    fix: 'Retries happen on their own.',
  },
  HEARTBEAT_TIMEOUT: {
    area: 'Identity and transport',
    meaning:
      'Nothing arrived from the peer for three heartbeat intervals; the connection was presumed dead and closed.',
    fix: 'The device reconnects when the network is back.',
  },
  CONNECT_TIMEOUT: {
    area: 'Identity and transport',
    meaning: 'No TLS session with the hub within the time limit.',
    fix: 'Check the address and that the hub runs; a firewall may drop the packets.',
  },
  CONNECT_REFUSED: {
    area: 'Identity and transport',
    meaning: "Nothing listens on the hub's address and port.",
    fix: 'Start the hub or fix the address.',
  },
  CONNECT_FAILED: {
    area: 'Identity and transport',
    meaning: 'The connection to the hub failed (unreachable network, DNS).',
    fix: 'The message names the cause.',
  },
  CONNECTION_CLOSED: {
    area: 'Identity and transport',
    meaning: 'The connection closed while an operation waited on it.',
    fix: 'Retries happen on their own.',
  },
  ABORTED: {
    area: 'Identity and transport',
    meaning: 'A connection attempt was cancelled (the agent is stopping).',
    fix: 'Nothing.',
  },
  CONNECTION_RESET: {
    area: 'Identity and transport',
    meaning:
      'The other side or the network reset the connection (`ECONNRESET`, `EPIPE`, `ECONNABORTED`). A hub also drops a connection this way before TLS when it is `RATE_LIMITED`.',
    fix: "Reconnects happen on their own; if it repeats, check the hub's log and the network.",
  },
  CONNECTION_FAILED: {
    area: 'Identity and transport',
    meaning:
      "An open connection failed with a socket error that has no code of its own; `details.syscallCode` holds the system's code.",
    fix: 'The message names the cause; reconnects happen on their own.',
  },
  NETWORK_TIMEOUT: {
    area: 'Identity and transport',
    meaning: 'The system gave up on an open connection: the peer stopped acknowledging data (`ETIMEDOUT`).',
    fix: 'Check the network between the device and the hub; the device reconnects when it is back.',
  },
  HOST_UNREACHABLE: {
    area: 'Identity and transport',
    meaning:
      "No route to the hub's machine (`EHOSTUNREACH`, `EHOSTDOWN`): it is off, or on a network this device cannot reach.",
    fix: 'Check that the hub runs and its address; a firewall may block the route.',
  },
  NETWORK_UNREACHABLE: {
    area: 'Identity and transport',
    meaning:
      "This device has no network leading to the hub's address (`ENETUNREACH`, `ENETDOWN`): no link, or an IPv6 address on an IPv4-only network.",
    fix: 'Join the office network, or give an address of the hub that this network reaches.',
  },
  ADDRESS_UNAVAILABLE: {
    area: 'Identity and transport',
    meaning:
      'The local address the connection needs cannot be used (`EADDRNOTAVAIL`), e.g. an IPv6 link-local address without its interface.',
    fix: 'Give the address with its zone (`fe80::1%eth0`), or another address of the hub.',
  },
  HOST_NOT_FOUND: {
    area: 'Identity and transport',
    meaning: "The hub's host name does not resolve (`ENOTFOUND`, `EAI_AGAIN`).",
    fix: "Check the name, or give the hub's IP address.",
  },
  NOT_A_TROSYN_HUB: {
    area: 'Identity and transport',
    meaning:
      "What answers at the hub's address is not a Trosyn Sync hub: its TLS handshake failed (a plain HTTP server), or it answered with bytes that are not Trosyn Sync frames (HTTPS).",
    fix: "Check the address and port: the hub's sync port is 17700 by default, not its admin API port (17701).",
  },
  REQUEST_TIMEOUT: {
    area: 'Identity and transport',
    status: 408,
    meaning:
      'On a connection: a request got no response in time. Over HTTP: The request line and headers did not all arrive in time (60 s), so the connection was closed.',
    fix: 'The peer is overloaded or gone; retry. Over HTTP: send the request again; if it keeps happening, check the network between the client and the API.',
  },

  UNKNOWN_METHOD: {
    area: 'Identity and transport',
    meaning: 'The peer asked for a request method this side does not offer.',
    fix: 'Upgrade the older side.',
  },
  REPLACED: {
    area: 'Identity and transport',
    meaning: 'The hub closed an older connection of a device that connected again.',
    fix: 'Nothing; the newest connection carries on.',
  },
  SERVER_SHUTTING_DOWN: {
    area: 'Identity and transport',
    meaning: 'The hub is stopping.',
    fix: 'Devices reconnect when it is back.',
  },
  INTERNAL_ERROR: {
    area: 'Identity and transport',
    status: 500,
    meaning:
      "On a connection: something failed inside this node while serving the peer; the node's log has the details. The connection closes; nothing acknowledged is lost. Over HTTP: the server failed in a way it does not report to clients; `details.requestId` finds the log line.",
    fix: "Report the log lines. Over HTTP: report the hub's or agent's log lines with that request ID.",
  },

  IDENTITY_KEY_UNREADABLE: {
    area: 'Identity and transport',
    meaning:
      "The hub's identity key file (`--identity-key-file`, `TROSYN_IDENTITY_KEY_FILE`, or the one the data directory's `config.json` remembers) cannot be read, or holds fewer than 32 bytes.",
    fix: 'Give a readable file holding the secret: make one with `openssl rand -base64 32 > FILE`, and give every hub process on the database the same file.',
  },
  HUB_IDENTITY_KEY_WRONG: {
    area: 'Identity and transport',
    meaning:
      'The hub identity sealed in the PostgreSQL database cannot be opened with the identity key file given: another file sealed it, or the sealed text was altered.',
    fix: 'Give this process the same identity key file as the hub process that first sealed the identity.',
  },
  HUB_IDENTITY_CONFLICT: {
    area: 'Identity and transport',
    meaning:
      "This data directory holds another hub's identity than the one the PostgreSQL database is served by: children pin the hub's certificate, and would refuse this process.",
    fix: "Start the process with a data directory without `identity/` and the hub's identity key file; it then takes the hub's identity from the database.",
  },
  HUB_IDENTITY_NOT_SHARED: {
    area: 'Identity and transport',
    meaning:
      "The PostgreSQL database is already served by a hub, and this process, with a data directory of its own, has no way to present that hub's identity: no identity key file was given, or the hub never sealed its identity into the database.",
    fix: 'Start (or restart) a process of the hub once with `--identity-key-file FILE`, then start this one with the same file (docs/DEPLOY.md, several hub processes).',
  },
  IDENTITY_INVALID: {
    area: 'Identity and transport',
    meaning: 'The identity files in the data directory are missing in part or unreadable.',
    fix: 'Restore `identity/` from backup; or remove it to make a new identity (the device must then pair again).',
  },
  INVALID_STATIC_ADDRESS: {
    area: 'Discovery',
    meaning:
      'A static hub address is not `IPv4:port`, `[IPv6]:port` or `hostname:port` (the port may be left out: 17700). The message says what is wrong, e.g. an IPv6 address with a port but without brackets, a port outside 1-65535, a scheme such as `tls://`.',
    fix: 'Write it like `192.168.1.10:17700`, `[fd00::10]:17700` or `hub.office.lan:17700`.',
  },
  DISCOVERY_BIND_FAILED: {
    area: 'Discovery',
    meaning:
      "Discovery could not bind its UDP port (17702, or 5353 for DNS-SD) for IPv4 nor for IPv6: another program holds the port without sharing it (SO_REUSEADDR), or neither address family is available. When one family binds, discovery runs on it and the other's failure only shows in the diagnostics.",
    fix: "Find the program holding the port (`ss -ulpn 'sport = :17702'`) and stop it, or configure another discovery port on the hub and every child alike. Children can still connect through a static address.",
  },
  LAST_ADDRESS_SAVE_FAILED: {
    area: 'Discovery',
    meaning:
      "The child could not write the hub's last good address to its data directory (disk full, read-only, missing permission). Nothing else is affected; the next start just does not try that address first.",
    fix: "Free disk space or fix the data directory's permissions.",
  },
  PAIRING_CODE_MALFORMED: {
    area: 'Pairing and devices',
    meaning: 'A pairing code is not 12 letters and digits (like `7K2M-QX4P-9TZB`).',
    fix: 'Type the code again; case and dashes do not matter.',
  },
  PAIRING_CODE_INVALID: {
    area: 'Pairing and devices',
    meaning:
      'The hub has no active code starting with those four characters: it was used, burned after wrong guesses, expired (10 minutes by default), or never issued.',
    fix: 'Issue a new code on the hub (`trosyn-sync pairing-code`).',
  },
  PAIRING_FAILED: {
    area: 'Pairing and devices',
    meaning:
      'The code did not match, or someone intercepts the connection with another certificate. The device pinned nothing; the hub counted a wrong guess.',
    fix: 'Check the code; if it is right, the network path to the hub is not trustworthy.',
  },
  PAIRING_RATE_LIMITED: {
    area: 'Pairing and devices',
    meaning: 'Too many pairing attempts from this address, or from everyone together.',
    fix: 'Wait a minute.',
  },
  PAIRING_TIMEOUT: {
    area: 'Pairing and devices',
    meaning: 'A pairing connection did not finish in time.',
    fix: 'Try again.',
  },
  PAIRING_UNAVAILABLE: {
    area: 'Pairing and devices',
    meaning: 'This hub does not accept pairing.',
    fix: 'Pair with the office hub.',
  },
  DEVICE_NOT_FOUND: {
    area: 'Pairing and devices',
    status: 404,
    meaning: 'The hub has no device with that ID.',
    fix: 'List devices (`trosyn-sync devices`) and copy the ID.',
  },
  INVALID_NAME: {
    area: 'Pairing and devices',
    status: 400,
    meaning: 'A device name must have 1 to 128 characters.',
    fix: 'Choose another name.',
  },
  GROUP_NOT_FOUND: {
    area: 'Pairing and devices',
    status: 404,
    meaning: 'No device group with that name.',
    fix: 'Create the group first.',
  },
  GROUP_IN_USE: {
    area: 'Pairing and devices',
    status: 409,
    meaning:
      'A group is not deleted while a device that is not revoked is in it, or while an active pairing code would put a device in it; `details` counts both. Nothing was deleted.',
    fix: 'Move its devices to another group and let its codes expire (or use them), then delete it.',
  },
  GROUP_IS_DEFAULT: {
    area: 'Pairing and devices',
    status: 409,
    meaning: 'The `default` group cannot be deleted: devices paired without a group join it.',
    fix: 'Narrow its scopes instead, if devices should not get every collection by default.',
  },
  INVALID_GROUP: {
    area: 'Pairing and devices',
    status: 400,
    meaning: 'A group name uses characters outside `A-Z a-z 0-9 _ . -` or is longer than 64.',
    fix: 'Choose another name.',
  },
  INVALID_SCOPE_PATTERN: {
    area: 'Pairing and devices',
    status: 400,
    meaning:
      "A group's scope has a pattern that is not a collection name, `*`, or a name's start and one `*` (`sales.*`, `sales*`), like `../x` or `*x`. HTTP 400.",
    fix: 'Fix the pattern that `details.pattern` names; nothing was saved.',
  },
  NOT_PAIRED: {
    area: 'Pairing and devices',
    meaning: "The child's data directory has no paired hub yet.",
    fix: 'Run `trosyn-sync pair CODE` with a code from the hub.',
  },
  PAIRED_HUB_INVALID: {
    area: 'Pairing and devices',
    meaning: "The child's `hub.json` is damaged.",
    fix: 'Pair again (the local data is kept).',
  },
  SCOPE_WRITE_DENIED: {
    area: 'Scopes',
    meaning:
      "The device's group may not write that collection (or it is hub-only). The write was refused alone and stays on the device; the rest of its batch synced. The hub counts it, sends it in the event stream (`writes-refused`) and shows it in the device's sync details (dashboard, `GET /api/devices/{id}`).",
    fix: "Ask the admin to add the collection to the group's write scope, or stop writing it from this device.",
  },
  AUTHOR_MISMATCH: {
    area: 'Scopes',
    meaning: "A device sent a revision it did not write itself, or one marked as a hub's. Refused alone.",
    fix: 'A device only ever sends its own writes; this points to a modified or broken client.',
  },
  USAGE: {
    area: 'Command line and configuration',
    meaning:
      'The command was called wrongly (a missing or conflicting option, JSON that does not parse). Exit status 2.',
    fix: 'See `trosyn-sync <command> --help`.',
  },
  NO_NODE: {
    area: 'Command line and configuration',
    meaning: 'The data directory holds no node (no identity).',
    fix: 'Start a hub there, or pair a child with `trosyn-sync pair CODE --data DIR`.',
  },
  NOT_A_HUB: {
    area: 'Command line and configuration',
    meaning: "A hub command was given a data directory that is not a hub's.",
    fix: "Pass the hub's `--data`.",
  },
  HUB_NOT_FOUND: {
    area: 'Command line and configuration',
    meaning: '`pair` found no hub on the LAN.',
    fix: "Give the hub's address with `--hub HOST:PORT`; `trosyn-sync discover` says why discovery found nothing.",
  },
  DATA_DIR_NOT_A_DIRECTORY: {
    area: 'Command line and configuration',
    meaning: '`--data` (or `$TROSYN_DATA`) names a file, not a directory.',
    fix: 'Pass a directory; it is created if missing.',
  },
  DATA_DIR_NOT_WRITABLE: {
    area: 'Command line and configuration',
    meaning: 'The data directory cannot be created or written (permissions, a read-only disk).',
    fix: 'Run as the user that owns it, or choose another with `--data`.',
  },
  DATA_DIR_LOCKED: {
    area: 'Command line and configuration',
    meaning:
      "Another agent (hub or child) already runs on this data directory; the message names its process. Two agents on one directory would announce the same device and undo each other's files.",
    fix: 'Stop the running one first, or use another data directory. One-shot commands (`put`, `get`, `status` ...) work beside a running agent.',
  },
  PORT_IN_USE: {
    area: 'Command line and configuration',
    meaning:
      'The sync port, or the admin or local API port, is used by another program (often a hub already running).',
    fix: 'Stop the other program, or choose another port (`--port`, `--http-port`, `--api-port`).',
  },
  LISTEN_FAILED: {
    area: 'Command line and configuration',
    meaning:
      "The sync service could not listen for another reason: the address is not this machine's, or the port needs privileges.",
    fix: 'The message names the cause; choose another `--host` or `--port`.',
  },
  DESCRIPTORS_EXHAUSTED: {
    area: 'Command line and configuration',
    meaning:
      'Logged (not returned) when the agent holds 90 % or more of the file descriptors it may open (`ulimit -n`): the system then refuses new connections and files, and incoming connections are dropped without an answer. Said once a minute while it lasts, and "file descriptors available again" once it ends.',
    fix: 'Raise the limit (`ulimit -n`, or `LimitNOFILE=` in the service unit), or find what holds so many connections (`ss -tnp`): a flood from one address is also cut by the connection rate limit.',
  },
  DESCRIPTORS_TOO_FEW: {
    area: 'Command line and configuration',
    meaning:
      'A command ran out of file descriptors (EMFILE) before it could finish, most often while Node loads the program under a very low `ulimit -n` (it reads a few hundred module files, many at once).',
    fix: 'Raise the limit to at least 1024 (`ulimit -n 1024`, or `LimitNOFILE=` in the service unit); a hub needs one more for each device connected to it.',
  },
  ADMIN_CERTIFICATE_INVALID: {
    area: 'Command line and configuration',
    meaning:
      'The certificate or key given for the admin port (`--http-cert`, `--http-key`) cannot be read, is not PEM, or the key does not belong to the certificate. The hub does not start.',
    fix: 'Give the PEM certificate (with its chain, if any) and its own private key; the message names which one is wrong.',
  },
  BACKUPS_NOT_SCHEDULED: {
    area: 'Backup and restore',
    status: 409,
    meaning: 'A backup was asked of the hub through its admin API, but the hub makes no scheduled backups.',
    fix: 'Start the hub with `--backup-dir DIR` (and `--backup-every-hours`, `--backup-keep`), or back it up with `trosyn-sync backup --out DIR`.',
  },
  BACKUP_TARGET_NOT_EMPTY: {
    area: 'Backup and restore',
    meaning: 'The directory given to `backup --out` exists and holds files. Nothing was written.',
    fix: 'Back up into a new (or empty) directory, e.g. one named by the date.',
  },
  BACKUP_SOURCE_CHANGED: {
    area: 'Backup and restore',
    meaning:
      'A chunk pack the backup was copying was compacted by a garbage collection meanwhile. The unfinished backup (`<out>.partial`) is not a backup.',
    fix: 'Run the backup again; collections run rarely.',
  },
  BACKUP_NOT_FOUND: {
    area: 'Backup and restore',
    meaning: 'The backup directory given to `restore` does not exist.',
    fix: 'Give the directory `backup --out` made.',
  },
  BACKUP_INCOMPLETE: {
    area: 'Backup and restore',
    meaning:
      'The directory is a backup that did not finish (no `manifest.json`), or lacks a file its manifest lists. Nothing was restored.',
    fix: 'Use another backup; an interrupted backup leaves `<out>.partial`, never a directory that looks complete.',
  },
  BACKUP_CORRUPT: {
    area: 'Backup and restore',
    meaning:
      "A file of the backup is not what was backed up (its size or SHA-256 differ from the manifest's), or a copied database failed `PRAGMA integrity_check` while it was made. Nothing was restored.",
    fix: 'Use another backup, and check the disk that holds this one.',
  },
  BACKUP_FOREIGN: {
    area: 'Backup and restore',
    meaning:
      "The directory is not a Trosyn Sync backup, or one of a format this version does not read (the manifest's `format`).",
    fix: 'Give the directory `backup --out` made; restore a newer format with the version that made it.',
  },
  RESTORE_TARGET_NOT_EMPTY: {
    area: 'Backup and restore',
    meaning: 'The data directory to restore into holds files. Nothing was changed.',
    fix: "Restore into an empty directory, or give `--force` to replace the node in it (its own device's files only: the backup's identity must be that directory's).",
  },
  RESTORE_OTHER_DEVICE: {
    area: 'Backup and restore',
    meaning:
      "The data directory holds another device's identity than the backup's: restoring would replace one device with another. Nothing was changed.",
    fix: 'Restore into an empty directory.',
  },
  INVALID_CONFIG: {
    area: 'Command line and configuration',
    meaning: "The data directory's `config.json` is not valid JSON or has an unknown or wrong setting.",
    fix: "The message names the setting; see the README's configuration section.",
  },
  UNAUTHORIZED: {
    area: 'HTTP APIs',
    status: 401,
    meaning:
      "The request has no `Authorization: Bearer <token>` header, or the token is wrong (the admin token was reset, or the child's `api-token` file was replaced). Admin API: also a dashboard session that expired (after 12 hours) or was signed out, and a sign-in link used already, expired (after 10 minutes) or not this hub's.",
    fix: 'Admin API: use the token shown when the hub first started, or make a new one (`trosyn-sync admin-token --reset`); in the dashboard, sign in again (`trosyn-sync dashboard-link` makes a new link). Local API: read the token from `<dataDir>/api-token` again.',
  },
  CSRF_REJECTED: {
    area: 'HTTP APIs',
    status: 403,
    meaning:
      "Admin API: a request signed in by the dashboard's session cookie wants to change something (or sign in) without the `X-Trosyn-CSRF` header, or its `Origin` is another site. Another page in the browser may be trying to act as the admin.",
    fix: 'Nothing when it comes from elsewhere. A script should send `Authorization: Bearer <admin token>` rather than the cookie; the dashboard sends the header itself.',
  },
  HOST_NOT_ALLOWED: {
    area: 'HTTP APIs',
    status: 403,
    meaning:
      "Admin API on loopback: the request's `Host` is not a loopback name (`localhost`, 127.0.0.0/8, `[::1]`). A web page from another name that resolves to this machine (DNS rebinding) may be trying to reach the dashboard.",
    fix: 'Open the dashboard as http://127.0.0.1:PORT/ or http://localhost:PORT/. To reach it from another machine, start the hub with `--http-host` (HTTPS).',
  },

  INVALID_REQUEST: {
    area: 'HTTP APIs',
    status: 400,
    meaning:
      'The request does not match the route: a missing or wrongly typed field, a query parameter out of range, malformed JSON, or (resolve) both or neither of `rev` and `body`. `details.issues` lists each problem with where it is.',
    fix: 'Fix the request; the OpenAPI document (`/api/openapi.json`) describes every route.',
  },
  ROUTE_NOT_FOUND: {
    area: 'HTTP APIs',
    status: 404,
    meaning: 'No route has that method and path.',
    fix: 'Check the path (all routes start with `/api/`) and the method.',
  },
  REQUEST_TOO_LARGE: {
    area: 'HTTP APIs',
    status: 413,
    meaning:
      "The request body is over the API's limit, before the engine even sees it: 2 MiB for JSON bodies; for a file upload (`PUT /api/files/{name}` on the local API), the upload limit (16 GiB by default), by its `Content-Length` or by the bytes that arrived. Nothing of a refused upload is recorded.",
    fix: 'Send smaller records; store large content as files. A larger file needs a higher `maxUploadBytes` in the local API options.',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    area: 'HTTP APIs',
    status: 415,
    meaning:
      'The body is not JSON (`Content-Type` other than `application/json`), or a file upload is sent with a `Content-Encoding` (it would be stored encoded).',
    fix: 'Send `Content-Type: application/json`; send a file upload as its plain bytes.',
  },
  INVALID_URL: {
    area: 'HTTP APIs',
    status: 400,
    meaning:
      "The URL's path is not validly percent-encoded: a `%` not followed by two hex digits, or escapes that do not decode to UTF-8.",
    fix: "Encode each path segment (`encodeURIComponent` in JavaScript, `urllib.parse.quote(s, safe='')` in Python); a `%` itself is `%25`.",
  },
  METHOD_NOT_ALLOWED: {
    area: 'HTTP APIs',
    status: 405,
    meaning:
      'The path exists but does not take that method (e.g. `GET /api/sync/now`). The `Allow` header and `details.allow` list the methods it takes.',
    fix: "Use one of the listed methods; the OpenAPI document (`/api/openapi.json`) gives each route's method.",
  },

  SYNC_PAUSED: {
    area: 'HTTP APIs',
    status: 409,
    meaning: 'Local API: `POST /api/sync/now` while sync is paused. Nothing was started.',
    fix: 'Resume first with `POST /api/sync/resume` (which also syncs at once), or leave sync paused.',
  },
  URL_TOO_LONG: {
    area: 'HTTP APIs',
    status: 414,
    meaning:
      "A segment of the URL's path is longer than any collection name, record id (256 characters) or device ID can be: over 768 characters as sent.",
    fix: 'Check the id: ids over 256 characters are never valid.',
  },
  RANGE_NOT_SATISFIABLE: {
    area: 'HTTP APIs',
    status: 416,
    meaning:
      "A download asked for a byte range (`Range: bytes=...`) that starts at or after the end of the file, or for its last 0 bytes. `Content-Range: bytes */<size>` and `details.size` give the file's size.",
    fix: 'Ask for a range inside the file, or leave out `Range` for the whole file.',
  },
  HEADERS_TOO_LARGE: {
    area: 'HTTP APIs',
    status: 431,
    meaning:
      "The request line and headers together are over the server's limit (16 KiB): a very long URL or very large headers.",
    fix: 'Send a shorter URL (the token belongs in the `Authorization` header) and fewer or smaller headers.',
  },

  API_LISTEN_FAILED: {
    area: 'HTTP APIs',
    meaning:
      "The admin or local API could not listen: the port is used by another program, the address is not this machine's, or the port needs privileges. The hub or agent does not start the API.",
    fix: 'Stop the other program or choose another port (admin API default 17701, local API default 17710).',
  },
} as const satisfies Record<string, ErrorInfo>;

/** A code from the table: the only kind a TrosynError carries. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `code` is in the table (for codes that arrive from a peer or a file). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}
