/**
 * The names of the hub's event types, with no imports: the dashboard shares this
 * list with the hub (events.ts checks it names every HubEvent type).
 */
export const HUB_EVENT_TYPES = [
  'device-paired',
  'device-approved',
  'device-revoked',
  'device-updated',
  'device-connected',
  'device-disconnected',
  'sync-started',
  'sync-progress',
  'sync-completed',
  'sync-failed',
  'writes-refused',
  'conflict-opened',
  'conflict-resolved',
  'scopes-changed',
  'settings-changed',
  'sync-restarted',
  'recovery-started',
  'backup-completed',
  'backup-failed',
  'files-progress',
  'error',
] as const;

/**
 * Events sent live only, never kept: they come several times a second while a
 * sync or a transfer runs, and each says only where it stands now.
 */
export const LIVE_ONLY_EVENT_TYPES = ['sync-progress', 'files-progress'] as const;
