import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { HttpApiError } from '../../http/errors.js';
import {
  errorResponses,
  jsonSchema,
  type RecordParams,
  recordParams,
  revertBody,
  writeResult,
} from '../../http/schemas.js';
import { formatDeviceId, parseDeviceId } from '../../transport/device-id.js';
import {
  backupMade,
  device,
  deviceDetail,
  deviceParams,
  devicePatch,
  type DevicePatch,
  devices,
  devicesQuery,
  type DevicesQuery,
  fileTransfers,
  group,
  groupParams,
  groupPut,
  type GroupPut,
  groups,
  hubStatus,
  pairingCodeIssued,
  pairingCodeRequest,
  type PairingCodeRequest,
  pairingCodes,
  settings,
  settingsPut,
  type SettingsPut,
} from './schemas.js';
import type { ErrorCode } from '../../error-codes.js';
import { BackupError } from '../../ops/backup.js';
import type { DeviceId } from '../../store/types.js';
import type { DeviceRecord } from '../registry-backend.js';
import { RegistryError } from '../registry.js';
import type { AdminPort } from './port.js';

/** What the admin routes share with the app that serves them. */
export interface AdminRoutesOptions {
  logger: Logger;
}

/**
 * The hub-specific admin routes: status, devices, pairing codes and groups (the
 * events are event-routes.ts), each a call on the AdminPort, so every change is recorded and
 * published the same way whoever asks for it.
 */
export function adminRoutes(hub: AdminPort, options: AdminRoutesOptions): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const view = (d: DeviceRecord) => {
      const connected = hub.connectedChildren().some((s) => s.deviceId === d.deviceId);
      return { ...d, readableId: formatDeviceId(d.deviceId), connected, clock: hub.deviceClock(d.deviceId) };
    };
    const requireDevice = async (id: string): Promise<DeviceRecord> => {
      const deviceId = parseDeviceId(id);
      const found = await hub.getDevice(deviceId);
      if (!found)
        throw new RegistryError('DEVICE_NOT_FOUND', `no device ${deviceId} is registered`, { deviceId });
      return found;
    };

    app.post(
      '/backups',
      {
        schema: {
          tags: ['status'],
          summary:
            'Makes a scheduled backup now (or waits for the one under way) into the --backup-dir of the hub',
          response: { 201: jsonSchema(backupMade), ...errorResponses(401, 409, 500, 503) },
        },
      },
      async (_request, reply) => {
        const run = await hub.backupNow();
        if (!run.ok) throw new BackupError(run.code as ErrorCode, run.message);
        const { ok: _ok, ...made } = run;
        return reply.code(201).send(made);
      },
    );

    app.get(
      '/status',
      {
        schema: {
          tags: ['status'],
          summary: "The hub's identity, device counts, connected children, store and discovery",
          response: { 200: jsonSchema(hubStatus), ...errorResponses(401, 503) },
        },
      },
      async () => {
        const status = await hub.status();
        return { ...status, readableId: formatDeviceId(status.deviceId) };
      },
    );

    // --- devices ---------------------------------------------------------------------

    app.get<{ Querystring: DevicesQuery }>(
      '/devices',
      {
        schema: {
          tags: ['devices'],
          summary: 'Registered devices, optionally by state or group',
          querystring: jsonSchema(devicesQuery),
          response: { 200: jsonSchema(devices), ...errorResponses(400, 401, 503) },
        },
      },
      async (request) => {
        const { state, group: groupName } = request.query;
        const list = await hub.listDevices({
          ...(state && { state }),
          ...(groupName && { group: groupName }),
        });
        return { devices: list.map(view) };
      },
    );

    app.get<{ Params: { id: string } }>(
      '/devices/:id',
      {
        schema: {
          tags: ['devices'],
          summary:
            'One device, with its live sync session if connected and how far behind it is each way (and why)',
          params: jsonSchema(deviceParams),
          response: { 200: jsonSchema(deviceDetail), ...errorResponses(400, 401, 404, 503) },
        },
      },
      async (request) => {
        const d = await requireDevice(request.params.id);
        const session = hub.connectedChildren().find((s) => s.deviceId === d.deviceId) ?? null;
        return { ...view(d), session, sync: await hub.deviceSync(d.deviceId) };
      },
    );

    app.post<{ Params: { id: string } }>(
      '/devices/:id/approve',
      {
        schema: {
          tags: ['devices'],
          summary: 'Lets a pending device sync',
          params: jsonSchema(deviceParams),
          response: {
            200: jsonSchema(device),
            ...errorResponses(400, 401, 404, 409, 503),
          },
        },
      },
      async (request) => view(await hub.approve((await requireDevice(request.params.id)).deviceId)),
    );

    app.post<{ Params: { id: string } }>(
      '/devices/:id/revoke',
      {
        schema: {
          tags: ['devices'],
          summary: 'Revokes a device for good and disconnects it at once',
          params: jsonSchema(deviceParams),
          response: {
            200: jsonSchema(device),
            ...errorResponses(400, 401, 404, 503),
          },
        },
      },
      async (request) => {
        const revoked = await hub.revoke((await requireDevice(request.params.id)).deviceId);
        options.logger.info({ deviceId: revoked.deviceId }, 'device revoked through the admin API');
        return view(revoked);
      },
    );

    app.patch<{ Params: { id: string }; Body: DevicePatch }>(
      '/devices/:id',
      {
        schema: {
          tags: ['devices'],
          summary: 'Renames a device and/or moves it to another group (it reconnects with the new scopes)',
          params: jsonSchema(deviceParams),
          body: jsonSchema(devicePatch),
          response: {
            200: jsonSchema(device),
            ...errorResponses(400, 401, 404, 503),
          },
        },
      },
      async (request) => {
        const { name, group: groupName } = request.body;
        if (name === undefined && groupName === undefined) {
          throw new HttpApiError('INVALID_REQUEST', 'send "name", "group" or both');
        }
        const current = await requireDevice(request.params.id);
        return view(
          await hub.updateDevice(current.deviceId, {
            ...(name !== undefined && { name }),
            ...(groupName !== undefined && { group: groupName }),
          }),
        );
      },
    );

    // --- pairing codes -----------------------------------------------------------------

    app.post<{ Body: PairingCodeRequest | undefined }>(
      '/pairing-codes',
      {
        // Every field is optional, so no body at all (curl -X POST) means the defaults.
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: {
          tags: ['pairing'],
          summary: 'Issues a single-use pairing code (shown once) and the text of its QR code',
          body: jsonSchema(pairingCodeRequest),
          response: { 201: jsonSchema(pairingCodeIssued), ...errorResponses(400, 401, 404, 503) },
        },
      },
      async (request, reply) => {
        const { ttlMinutes, group: groupName } = request.body ?? {};
        const issued = await hub.issuePairingCode({
          ...(ttlMinutes !== undefined && { ttlMs: ttlMinutes * 60_000 }),
          ...(groupName !== undefined && { group: groupName }),
        });
        options.logger.info({ group: issued.group, expiresAt: issued.expiresAt }, 'pairing code issued');
        return reply.code(201).send(issued);
      },
    );

    app.get(
      '/pairing-codes',
      {
        schema: {
          tags: ['pairing'],
          summary: 'Recent pairing codes and their state (never the code itself)',
          response: { 200: jsonSchema(pairingCodes), ...errorResponses(401, 503) },
        },
      },
      async () => ({ codes: await hub.listPairingCodes() }),
    );

    // --- groups -----------------------------------------------------------------------------

    app.get(
      '/groups',
      {
        schema: {
          tags: ['groups'],
          summary: 'Device groups and the collections each may read and write',
          response: { 200: jsonSchema(groups), ...errorResponses(401, 503) },
        },
      },
      async () => ({ groups: await hub.listGroups() }),
    );

    app.put<{ Params: { name: string }; Body: GroupPut }>(
      '/groups/:name',
      {
        schema: {
          tags: ['groups'],
          summary: "Creates or replaces a group's scopes; its connected devices reconnect under them",
          params: jsonSchema(groupParams),
          body: jsonSchema(groupPut),
          response: { 200: jsonSchema(group), ...errorResponses(400, 401, 503) },
        },
      },
      async (request) =>
        hub.putGroup({
          name: request.params.name,
          description: request.body.description ?? '',
          read: request.body.read,
          write: request.body.write,
        }),
    );

    // --- settings ---------------------------------------------------------------------------

    app.get(
      '/settings',
      {
        schema: {
          tags: ['settings'],
          summary:
            'Approval mode and the collection policy (conflict strategy, local-only, hub-only, retention)',
          response: { 200: jsonSchema(settings), ...errorResponses(401, 503) },
        },
      },
      async () => hub.settings(),
    );

    app.put<{ Body: SettingsPut }>(
      '/settings',
      {
        schema: {
          tags: ['settings'],
          summary:
            'Changes settings: each part given replaces that part; the policy reaches every child, and a changed strategy settles existing conflicts again on every node',
          body: jsonSchema(settingsPut),
          response: { 200: jsonSchema(settings), ...errorResponses(400, 401, 503) },
        },
      },
      async (request) => {
        const result = await hub.updateSettings(request.body);
        options.logger.info(
          { version: result.policy.version, resettled: result.resettled },
          'settings changed through the admin API',
        );
        return result;
      },
    );

    // --- records ----------------------------------------------------------------------------

    app.post<{ Params: RecordParams; Body: { rev: string } }>(
      '/records/:collection/:id/revert',
      {
        schema: {
          tags: ['records'],
          summary:
            "Writes an old revision's content as a new revision by the hub (a tombstone deletes); the write syncs",
          params: jsonSchema(recordParams),
          body: jsonSchema(revertBody),
          response: { 200: jsonSchema(writeResult), ...errorResponses(400, 401, 404, 410, 503) },
        },
      },
      async (request) => {
        const { collection, id } = request.params;
        const result = await hub.records().revert(collection, id, request.body.rev);
        options.logger.info(
          { collection, id, to: request.body.rev, rev: result.rev },
          'record reverted through the admin API',
        );
        return result;
      },
    );

    app.delete<{ Params: { name: string } }>(
      '/groups/:name',
      {
        schema: {
          tags: ['groups'],
          summary:
            'Deletes a group that no device (not revoked) is in and no active pairing code names; never the default group',
          params: jsonSchema(groupParams),
          response: {
            204: { description: 'deleted', type: 'null' },
            ...errorResponses(400, 401, 404, 409, 503),
          },
        },
      },
      async (request, reply) => {
        await hub.deleteGroup(request.params.name);
        options.logger.info({ group: request.params.name }, 'group deleted through the admin API');
        return reply.code(204).send();
      },
    );

    // --- files ------------------------------------------------------------------------------

    app.get(
      '/files/transfers',
      {
        schema: {
          tags: ['files'],
          summary:
            'File content arriving at the hub (versions, bytes here and in all) and the bytes exchanged with each connected device',
          response: { 200: jsonSchema(fileTransfers), ...errorResponses(401, 503) },
        },
      },
      async () => {
        const { progress, devices } = hub.fileTransfers();
        const names = new Map(hub.connectedChildren().map((c) => [c.deviceId as string, c.name]));
        return {
          progress,
          devices: devices.map((d) => ({
            deviceId: d.peer,
            readableId: formatDeviceId(d.peer as DeviceId),
            name: names.get(d.peer) ?? null,
            bytesIn: d.bytesIn,
            bytesOut: d.bytesOut,
            waiting: d.waiting,
          })),
        };
      },
    );
  };
}
