/** Request and response schemas of the hub's admin API (zod; see src/http/schemas.ts). */
import { z } from 'zod';
import { contentProgress, refusedRevision } from '../../http/schemas.js';

const ms = z.number().int().describe('milliseconds since 1970-01-01 UTC');
const deviceIdHex = z.string().regex(/^[0-9a-f]{64}$/);
const groupName = z.string().min(1).max(64);

/** Path parameter naming a device, in either form. */
export const deviceParams = z.object({
  id: z
    .string()
    .min(1)
    .max(128)
    .describe('device ID: 64 hex characters or the readable XXXXXXX-XXXXXXX-... form'),
});

/** A child's live sync session. */
export const childSession = z.object({
  deviceId: deviceIdHex,
  address: z.string(),
  name: z.string(),
  appVersion: z.string(),
  connectedAt: ms,
  caughtUp: z.boolean(),
  stats: z.record(z.string(), z.unknown()).describe('sync session counters'),
  bytesIn: z.number().int().describe('bytes received on this connection (frames, after compression)'),
  bytesOut: z.number().int().describe('bytes sent on this connection (frames, after compression)'),
});

/** A device's clock against the hub's. */
const clockOffset = z
  .object({
    offsetMs: z
      .number()
      .int()
      .describe("the device's clock minus the hub's (ms): positive when the device's clock is ahead"),
    rttMs: z
      .number()
      .int()
      .describe('the round trip of the measurement (ms); the offset is within half of it'),
    at: ms.describe('when it was measured (hub clock)'),
  })
  .nullable()
  .describe(
    "the device's clock against the hub's, as last measured (at connect and every heartbeat); null when never measured. A device whose clock is off writes revisions that win or lose conflicts unfairly",
  );

/** A registered device, with its readable ID and whether it is connected. */
export const device = z.object({
  deviceId: deviceIdHex,
  readableId: z.string().describe('the device ID in its readable, check-summed form'),
  name: z.string(),
  group: z.string(),
  state: z.enum(['pending', 'approved', 'revoked']),
  firstSeen: ms,
  lastSeen: ms.nullable(),
  lastAddress: z.string().nullable(),
  appVersion: z.string().nullable(),
  pairedAt: ms,
  revokedAt: ms.nullable(),
  connected: z.boolean().describe('has a live sync connection now'),
  clock: clockOffset,
});

const refusedWrites = z
  .object({
    at: ms.describe('when the latest refusal happened'),
    total: z.number().int().describe('refusals counted (kept across restarts)'),
    latest: z.array(refusedRevision).describe('the latest refused revisions (at most 10), oldest first'),
  })
  .nullable();

/** How far behind a device is each way, and what went wrong last with its sync (kept across hub restarts). */
export const deviceSync = z.object({
  hubLatestSeq: z.number().int().describe("the latest position of the hub's change log"),
  caughtUp: z.boolean().nullable().describe('connected and caught up both ways; null when not connected'),
  toDevice: z.object({
    ackedUpTo: z
      .number()
      .int()
      .nullable()
      .describe("the last position of the hub's log the device acknowledged; null if it never connected"),
    behind: z
      .number()
      .int()
      .nullable()
      .describe(
        "positions of the hub's log not acknowledged yet (an upper bound: some are outside its read scope)",
      ),
  }),
  fromDevice: z.object({
    appliedUpTo: z.number().int().describe("the last position of the device's log the hub applied"),
    deviceLatest: z
      .number()
      .int()
      .nullable()
      .describe(
        "the device's latest position, as it reported when its session opened; null when not connected",
      ),
    behind: z
      .number()
      .int()
      .nullable()
      .describe("positions of the device's log still to come in its initial sync; null when not connected"),
  }),
  lastError: z
    .object({ at: ms, code: z.string(), message: z.string() })
    .nullable()
    .describe('the last session that ended in a failure'),
  refusedByHub: refusedWrites.describe("the device's writes the hub refused (e.g. outside its write scope)"),
  refusedByDevice: refusedWrites.describe("the hub's revisions the device refused"),
  lastSessionEndedAt: ms.nullable().describe("when the device's last session ended"),
  clock: clockOffset,
  throttled: z
    .object({
      since: ms.describe('when the first hold of the stretch began'),
      until: ms.describe('when the latest hold ends or ended: later than now while a batch is held'),
      batches: z.number().int().describe('batches held in the stretch'),
      revisions: z.number().int().describe('revisions in those batches'),
      heldMs: z.number().int().describe('time they were held, in all (ms)'),
    })
    .nullable()
    .describe(
      "the latest stretch of holds of the device's batches by the per-device write limit (a new stretch begins after a minute without one); null when it never wrote faster than the limit",
    ),
});

/** One device with its live session and where its sync stands. */
export const deviceDetail = device.extend({
  session: childSession.nullable().describe('the live sync session, when connected'),
  sync: deviceSync,
});

/** Filters of the device list. */
export const devicesQuery = z.object({
  state: z.enum(['pending', 'approved', 'revoked']).optional(),
  group: groupName.optional(),
});

/** The device list. */
export const devices = z.object({ devices: z.array(device) });

/** A rename and/or a move to another group. */
export const devicePatch = z.object({
  name: z.string().min(1).max(128).optional(),
  group: groupName.optional(),
});

/** The hub's status. */
export const hubStatus = z.object({
  deviceId: deviceIdHex,
  readableId: z.string(),
  name: z.string(),
  version: z.string(),
  startedAt: ms,
  syncPort: z.number().int(),
  adminPort: z.number().int().optional(),
  devices: z.object({ approved: z.number().int(), pending: z.number().int(), revoked: z.number().int() }),
  connected: z.array(childSession),
  store: z.record(z.string(), z.unknown()).describe('store counters'),
  storeBytes: z
    .number()
    .int()
    .optional()
    .describe("bytes of the store's files on disk (database and write-ahead log), when it has files"),
  discovery: z.array(z.record(z.string(), z.unknown())).describe('LAN announcement diagnostics'),
  backups: z
    .object({
      dir: z.string(),
      everyHours: z.number(),
      keep: z.number().int(),
      last: z.object({ at: ms, dir: z.string(), bytes: z.number().int() }).nullable(),
      lastError: z.object({ at: ms, code: z.string(), message: z.string() }).nullable(),
      nextAt: ms.nullable(),
      running: z.boolean(),
    })
    .optional()
    .describe('scheduled backups (--backup-dir): the newest, the last failure since it, the next'),
  recovery: z
    .object({ reason: z.string(), at: ms, until: ms })
    .optional()
    .describe('while the hub takes back revisions it lost'),
});

/** A backup made through the admin API. */
export const backupMade = z.object({
  at: ms.describe('when it began'),
  dir: z.string().describe('its directory, inside the --backup-dir of the hub'),
  bytes: z.number().int().describe('its size'),
  durationMs: z.number().int(),
});

/** Options of a new pairing code. */
export const pairingCodeRequest = z.object({
  ttlMinutes: z.number().int().min(1).max(1440).optional().describe('lifetime; default 10 minutes'),
  group: groupName.optional().describe('group the paired device joins; default "default"'),
});

/** A new pairing code, shown once, and the text of its QR code. */
export const pairingCodeIssued = z.object({
  code: z.string().describe('XXXX-XXXX-XXXX, single use; show it to the person pairing the device'),
  expiresAt: ms,
  group: z.string(),
  qr: z
    .string()
    .describe('the text a QR code for this code encodes: trosyn-sync://pair?code=...&hub=...&port=...'),
});

/** A pairing code as listed: never the secret part. */
export const pairingCodeEntry = z.object({
  codeId: z.number().int(),
  lookup: z.string().describe('the first group of the code (the rest is never shown again)'),
  group: z.string(),
  createdAt: ms,
  expiresAt: ms,
  failedAttempts: z.number().int(),
  state: z.enum(['active', 'used', 'burned', 'expired']),
  usedBy: deviceIdHex.nullable(),
});

/** The pairing code list. */
export const pairingCodes = z.object({
  codes: z.array(pairingCodeEntry).describe('newest first, at most 100'),
});

/** A device group and its scopes. */
export const group = z.object({
  name: z.string(),
  description: z.string(),
  read: z.array(z.string()),
  write: z.array(z.string()),
});

/** The group list. */
export const groups = z.object({ groups: z.array(group) });

/** Path parameter naming a group. */
export const groupParams = z.object({ name: groupName });

const scopePattern = z.string().min(1).max(66).describe('a collection name, `*`, or `prefix.*`');
/** A group's new description and scopes. */
export const groupPut = z.object({
  description: z.string().max(500).optional(),
  read: z.array(scopePattern).max(256),
  write: z.array(scopePattern).max(256),
});

const strategy = z
  .enum(['lww', 'hub-wins', 'merge', 'manual'])
  .describe(
    'how concurrent writes settle: last writer wins, the hub wins, field-level merge, or open for a person',
  );
const collectionPolicy = z.object({
  conflict: strategy.optional(),
  localOnly: z.boolean().optional().describe('never synced: writes stay on the node that made them'),
});
const retention = z.object({
  maxRevisions: z.number().int().min(1).optional().describe('bodies kept per record (heads always)'),
  maxAgeDays: z
    .number()
    .positive()
    .max(36500)
    .optional()
    .describe('bodies older than this are dropped (heads never)'),
});
/** The hub's run-time settings: approval mode and the collection policy every node applies. */
export const settings = z.object({
  requireApproval: z.boolean(),
  policy: z.object({
    version: z
      .number()
      .int()
      .describe('counts the changes; every child holds the same version once connected'),
    updatedAt: z.number(),
    collections: z.record(z.string(), collectionPolicy).describe('collections not listed: lww, synced'),
    hubOnly: z.array(z.string()).describe('scope patterns of collections kept on the hub'),
    retention,
  }),
  resettled: z.number().int().optional().describe('conflicted records settled again by a changed strategy'),
});
/** A change to the settings: each part given replaces that part. */
export const settingsPut = z
  .object({
    requireApproval: z.boolean().optional(),
    collections: z.record(z.string().min(1).max(256), collectionPolicy.strict()).optional(),
    hubOnly: z.array(scopePattern).max(256).optional(),
    retention: retention.strict().optional(),
  })
  .strict();
export type SettingsPut = z.infer<typeof settingsPut>;

/** Query of the event stream. */
export const eventsQuery = z.object({
  lastEventId: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe(
      'resume after this event id, as the `Last-Event-ID` header does (which wins when both are sent): for a first connection that must not miss what happened since a page was loaded',
    ),
});

/** File content arriving at the hub, and what moves over each connection. */
export const fileTransfers = z.object({
  progress: contentProgress,
  devices: z
    .array(
      z.object({
        deviceId: deviceIdHex,
        readableId: z.string(),
        name: z.string().nullable().describe("the connected device's name, null if it just went away"),
        bytesIn: z.number().int().describe('content bytes fetched from it over its current connection'),
        bytesOut: z.number().int().describe('content bytes served to it over its current connection'),
        waiting: z
          .number()
          .int()
          .describe('versions whose content the hub still fetches from it, their author'),
      }),
    )
    .describe('one entry per connected device'),
});

/** Parsed device filters. */
export type DevicesQuery = z.infer<typeof devicesQuery>;
/** Parsed device change. */
export type DevicePatch = z.infer<typeof devicePatch>;
/** Parsed pairing code options. */
export type PairingCodeRequest = z.infer<typeof pairingCodeRequest>;
/** Parsed group change. */
export type GroupPut = z.infer<typeof groupPut>;

/** A sign-in: the admin token typed at the form, or the secret of a one-time link. */
export const signInRequest = z.object({
  token: z.string().min(1).max(512).optional().describe('the admin token'),
  link: z
    .string()
    .min(1)
    .max(512)
    .optional()
    .describe('the secret of a one-time sign-in link (what follows `#signin=` in it)'),
});
export type SignInRequest = z.infer<typeof signInRequest>;

/** The session a request is signed in with. */
export const adminSession = z.object({
  signedIn: z.literal(true),
  via: z
    .enum(['link', 'token', 'bearer'])
    .describe(
      'a one-time link or the admin token at the sign-in form (a cookie session), or the bearer token',
    ),
  expiresAt: ms.nullable().describe('when the cookie session ends; null for the bearer token'),
});
