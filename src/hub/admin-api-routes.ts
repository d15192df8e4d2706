import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { HttpApiError } from '../http/errors.js';
import { errorResponses, jsonSchema } from '../http/schemas.js';
import type { EventStreams } from '../http/sse.js';
import type { DeviceId } from '../store/types.js';
import { NotStartedError } from '../sync/errors.js';
import { formatDeviceId, parseDeviceId } from '../transport/device-id.js';
import {
  deviceDetail,
  deviceParams,
  devicePatch,
  type DevicePatch,
  devices,
  devicesQuery,
  type DevicesQuery,
  eventsQuery,
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
} from './admin-api-schemas.js';
import type { HubEvent } from './events.js';
import type { Hub } from './hub.js';
import { type DeviceRecord, RegistryError } from './registry.js';

/** What the admin routes share with the app that serves them. */
export interface AdminRoutesOptions {
  streams: EventStreams;
  eventHeartbeatMs: number;
  logger: Logger;
}

/**
 * The hub-specific admin routes: status, devices, pairing codes, groups and the
 * live event stream. Device changes go through the Hub (not the registry), so its
 * events are published and revoked or moved devices are disconnected.
 */
export function adminRoutes(hub: Hub, options: AdminRoutesOptions): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const view = (d: DeviceRecord) => {
      const connected = hub.connectedChildren().some((s) => s.deviceId === d.deviceId);
      return { ...d, readableId: formatDeviceId(d.deviceId), connected };
    };
    const requireDevice = (id: string): DeviceRecord => {
      const deviceId = parseDeviceId(id);
      const found = hub.registry.get(deviceId);
      if (!found)
        throw new RegistryError('DEVICE_NOT_FOUND', `no device ${deviceId} is registered`, { deviceId });
      return found;
    };

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
        const list = hub.registry.list({ ...(state && { state }), ...(groupName && { group: groupName }) });
        return { devices: list.map(view) };
      },
    );

    app.get<{ Params: { id: string } }>(
      '/devices/:id',
      {
        schema: {
          tags: ['devices'],
          summary: 'One device, with its live sync session if connected',
          params: jsonSchema(deviceParams),
          response: { 200: jsonSchema(deviceDetail), ...errorResponses(400, 401, 404, 503) },
        },
      },
      async (request) => {
        const d = requireDevice(request.params.id);
        const session = hub.connectedChildren().find((s) => s.deviceId === d.deviceId) ?? null;
        return { ...view(d), session };
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
            200: jsonSchema(deviceDetail.omit({ session: true })),
            ...errorResponses(400, 401, 404, 409, 503),
          },
        },
      },
      async (request) => view(hub.approve(requireDevice(request.params.id).deviceId)),
    );

    app.post<{ Params: { id: string } }>(
      '/devices/:id/revoke',
      {
        schema: {
          tags: ['devices'],
          summary: 'Revokes a device for good and disconnects it at once',
          params: jsonSchema(deviceParams),
          response: {
            200: jsonSchema(deviceDetail.omit({ session: true })),
            ...errorResponses(400, 401, 404, 503),
          },
        },
      },
      async (request) => {
        const revoked = hub.revoke(requireDevice(request.params.id).deviceId);
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
            200: jsonSchema(deviceDetail.omit({ session: true })),
            ...errorResponses(400, 401, 404, 503),
          },
        },
      },
      async (request) => {
        const { name, group: groupName } = request.body;
        if (name === undefined && groupName === undefined) {
          throw new HttpApiError('INVALID_REQUEST', 'send "name", "group" or both');
        }
        const current = requireDevice(request.params.id);
        // Check everything before changing anything, so a bad group does not leave a half-done rename.
        if (groupName !== undefined && !hub.registry.getGroup(groupName)) {
          throw new RegistryError(
            'GROUP_NOT_FOUND',
            `no group ${JSON.stringify(groupName)}; create it first`,
            {
              group: groupName,
            },
          );
        }
        const trimmed = name?.trim();
        if (trimmed !== undefined && (trimmed.length === 0 || trimmed.length > 128)) {
          throw new RegistryError('INVALID_NAME', 'a device name has 1 to 128 characters');
        }
        let updated = current;
        if (trimmed !== undefined && trimmed !== current.name)
          updated = hub.rename(current.deviceId, trimmed);
        // Moving disconnects the device; a no-op move must not.
        if (groupName !== undefined && groupName !== current.group)
          updated = hub.setGroup(current.deviceId, groupName);
        return view(updated);
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
        const issued = hub.registry.issueCode({
          ...(ttlMinutes !== undefined && { ttlMs: ttlMinutes * 60_000 }),
          ...(groupName !== undefined && { group: groupName }),
        });
        const qr = pairingUri(issued.code, hub.deviceId, hub.port);
        options.logger.info({ group: issued.group, expiresAt: issued.expiresAt }, 'pairing code issued');
        return reply.code(201).send({ ...issued, qr });
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
      async () => ({ codes: hub.registry.listCodes() }),
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
      async () => ({ groups: hub.registry.listGroups() }),
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

    // --- live events ------------------------------------------------------------------------

    app.get(
      '/events',
      {
        config: { queryToken: true },
        schema: {
          tags: ['events'],
          summary: 'Live hub events as Server-Sent Events: `event: <type>` and `data: <HubEvent JSON>`',
          querystring: jsonSchema(eventsQuery),
          response: {
            200: {
              description: 'an endless text/event-stream; a `: heartbeat` comment every 15 s',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...errorResponses(401, 429, 503),
          },
        },
      },
      async (_request, reply) => {
        // Refused before the stream opens, while an error response can still be sent.
        if (!hub.isStarted()) throw new NotStartedError('the hub');
        const listener = (event: HubEvent) => stream.send(event.type, event);
        const stream = options.streams.start(
          reply,
          { heartbeatMs: options.eventHeartbeatMs, logger: options.logger },
          () => hub.off('event', listener),
        );
        hub.on('event', listener);
      },
    );
  };
}

/**
 * What a pairing QR code encodes: the code, the hub's device ID (so the child can
 * check it is pairing with the right hub) and its sync port.
 */
export function pairingUri(code: string, hubId: DeviceId, syncPort: number): string {
  const query = new URLSearchParams({ code, hub: hubId, port: String(syncPort) });
  return `trosyn-sync://pair?${query.toString()}`;
}
