import type { FastifyInstance, FastifyPluginAsync, onRequestAsyncHookHandler } from 'fastify';
import { METRICS_CONTENT_TYPE } from '../observability/metrics.js';
import { errorResponses } from './schemas.js';

/**
 * `GET /metrics`: a Prometheus scrape, outside `/api` as Prometheus expects. The
 * hooks run first (readiness, the bearer guard); a scraper on a trusted network
 * gets the route with none (see the hub's metrics listener).
 */
export function metricsRoute(
  scrape: () => Promise<string>,
  options: { onRequest?: onRequestAsyncHookHandler[]; errors?: number[] } = {},
): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get(
      '/metrics',
      {
        ...(options.onRequest && { onRequest: options.onRequest }),
        schema: {
          tags: ['metrics'],
          summary: 'Prometheus metrics of this agent, in the text exposition format 0.0.4',
          response: {
            200: {
              description: 'the `trosyn_*` metrics, then the process metrics (`process_*`, `nodejs_*`)',
              content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } },
            },
            ...errorResponses(...(options.errors ?? [])),
          },
        },
      },
      async (_request, reply) => {
        const text = await scrape();
        return reply.type(METRICS_CONTENT_TYPE).send(text);
      },
    );
  };
}
