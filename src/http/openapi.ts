/** The OpenAPI 3 description of the admin API, served at `/api/v1/openapi.json`. */
import { MIDGE_VERSION } from '../broker/options.js';

const error = { $ref: '#/components/responses/Error' };
const json = (schema: object): object => ({ content: { 'application/json': { schema } } });
const obj = { type: 'object' };
const clientId = { name: 'clientId', in: 'path', required: true, schema: { type: 'string' }, description: 'the client id (percent-encoded)' };
const limit = { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } };
const offset = { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } };
const search = { name: 'search', in: 'query', schema: { type: 'string' }, description: 'case-insensitive substring of the client id or user name' };
const topic = { name: 'topic', in: 'query', required: true, schema: { type: 'string' }, description: 'a topic name (no wildcards)' };
const pageOf = (ref: string): object => ({
  type: 'object', required: ['total', 'offset', 'limit', 'items'],
  properties: { total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' }, items: { type: 'array', items: { $ref: ref } } },
});
const answer = (description: string, schema: object = obj): object => ({ description, ...json(schema) });

export const OPENAPI = {
  openapi: '3.0.3',
  info: {
    title: 'Midge admin API',
    version: `1 (midge ${MIDGE_VERSION})`,
    description: 'Clients, sessions, subscriptions, retained messages, publishing, broker information and configuration. ' +
      'Bound beyond loopback, every route needs HTTP Basic (an admin user of the password file) or a bearer token (docs/http.md).',
  },
  servers: [{ url: '/' }],
  security: [{ basic: [] }, { bearer: [] }, {}],
  paths: {
    '/metrics': {
      get: { summary: 'Prometheus metrics (text exposition format)', responses: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, 401: error } },
    },
    '/api/v1/openapi.json': {
      get: { summary: 'This description', responses: { 200: answer('the OpenAPI document') } },
    },
    '/api/v1/broker': {
      get: { summary: 'Version, uptime and listeners', responses: { 200: answer('broker information', { $ref: '#/components/schemas/BrokerInfo' }), 401: error } },
    },
    '/api/v1/config': {
      get: { summary: 'The configuration in force, secrets masked ("***")', responses: { 200: answer('configuration'), 401: error } },
    },
    '/api/v1/bridges': {
      get: { summary: 'The bridges (connection blocks) with their state, remote address and message counts', responses: { 200: answer('{ items: [{ name, state, address, connects, messagesOut, messagesIn, dropped }] }'), 401: error } },
    },
    '/api/v1/clients': {
      get: { summary: 'Connected clients', parameters: [limit, offset, search], responses: { 200: answer('a page of clients', pageOf('#/components/schemas/Client')), 400: error, 401: error } },
    },
    '/api/v1/clients/{clientId}': {
      get: { summary: 'One connected client', parameters: [clientId], responses: { 200: answer('the client', { $ref: '#/components/schemas/Client' }), 404: error } },
      delete: { summary: 'Disconnect a client (MQTT 5: DISCONNECT 0x98); its will is published', parameters: [clientId], responses: { 200: answer('disconnected'), 404: error } },
    },
    '/api/v1/clients/{clientId}/subscriptions': {
      get: { summary: "A session's subscriptions", parameters: [clientId], responses: { 200: answer('subscriptions'), 404: error } },
      post: {
        summary: 'Subscribe a session to a filter', parameters: [clientId],
        requestBody: { required: true, ...json({ $ref: '#/components/schemas/NewSubscription' }) },
        responses: { 200: answer('replaced an existing subscription'), 201: answer('subscribed'), 400: error, 404: error },
      },
      delete: {
        summary: 'Remove a subscription',
        parameters: [clientId, { name: 'filter', in: 'query', required: true, schema: { type: 'string' } }],
        responses: { 200: answer('removed'), 400: error, 404: error },
      },
    },
    '/api/v1/sessions': {
      get: { summary: 'Sessions (connected and offline)', parameters: [limit, offset, search], responses: { 200: answer('a page of sessions', pageOf('#/components/schemas/Session')), 400: error } },
    },
    '/api/v1/sessions/{clientId}': {
      get: { summary: 'One session with its subscriptions', parameters: [clientId], responses: { 200: answer('the session', { $ref: '#/components/schemas/Session' }), 404: error } },
      delete: { summary: 'Delete a session (its client is disconnected first)', parameters: [clientId], responses: { 200: answer('deleted'), 404: error } },
    },
    '/api/v1/retained': {
      get: {
        summary: 'Retained messages matching a topic filter, sorted by topic',
        parameters: [{ name: 'filter', in: 'query', schema: { type: 'string', default: '#' } }, limit, offset],
        responses: { 200: answer('a page of retained messages', pageOf('#/components/schemas/Message')), 400: error },
      },
    },
    '/api/v1/retained/message': {
      get: { summary: 'The retained message of one topic', parameters: [topic], responses: { 200: answer('the message', { $ref: '#/components/schemas/Message' }), 400: error, 404: error } },
      delete: { summary: "Delete one topic's retained message", parameters: [topic], responses: { 200: answer('deleted'), 400: error, 404: error } },
    },
    '/api/v1/publish': {
      post: {
        summary: 'Publish a message', requestBody: { required: true, ...json({ $ref: '#/components/schemas/Publish' }) },
        responses: { 200: answer('published; matched tells whether any subscription matched'), 400: error, 413: error },
      },
    },
  },
  components: {
    securitySchemes: { basic: { type: 'http', scheme: 'basic' }, bearer: { type: 'http', scheme: 'bearer' } },
    responses: { Error: { description: 'an error', ...json({ type: 'object', required: ['error'], properties: { error: { type: 'string' } } }) } },
    schemas: {
      BrokerInfo: {
        type: 'object',
        properties: {
          version: { type: 'string' }, uptimeSeconds: { type: 'integer' }, startedAt: { type: 'string', format: 'date-time' },
          listeners: { type: 'array', items: obj }, httpListeners: { type: 'array', items: obj },
        },
      },
      Client: {
        type: 'object',
        properties: {
          id: { type: 'string' }, username: { type: 'string' }, remoteAddress: { type: 'string' }, remotePort: { type: 'integer' },
          listenerPort: { type: 'integer' }, protocolVersion: { type: 'integer', enum: [3, 4, 5] }, connectedAt: { type: 'integer' },
          keepalive: { type: 'integer' }, subscriptions: { type: 'integer' }, queued: { type: 'integer' }, inflight: { type: 'integer' },
        },
      },
      Session: {
        type: 'object',
        properties: {
          clientId: { type: 'string' }, username: { type: 'string' }, connected: { type: 'boolean' }, protocolVersion: { type: 'integer' },
          expiryInterval: { type: 'integer' }, disconnectedAt: { type: 'integer' }, subscriptionCount: { type: 'integer' },
          queued: { type: 'integer' }, queuedBytes: { type: 'integer' }, inflight: { type: 'integer' }, inflightBytes: { type: 'integer' },
          subscriptions: { type: 'array', items: { $ref: '#/components/schemas/NewSubscription' } },
        },
      },
      NewSubscription: {
        type: 'object', required: ['filter'],
        properties: {
          filter: { type: 'string' }, qos: { type: 'integer', enum: [0, 1, 2] }, noLocal: { type: 'boolean' },
          retainAsPublished: { type: 'boolean' }, retainHandling: { type: 'integer', enum: [0, 1, 2] },
        },
      },
      Message: {
        type: 'object',
        properties: {
          topic: { type: 'string' }, qos: { type: 'integer' }, payload: { type: 'string', nullable: true, description: 'UTF-8 text, null when not valid UTF-8' },
          payloadBase64: { type: 'string' }, bytes: { type: 'integer' }, expiresAt: { type: 'string', format: 'date-time' }, properties: obj,
        },
      },
      Publish: {
        type: 'object', required: ['topic'],
        properties: {
          topic: { type: 'string' }, payload: { type: 'string' }, encoding: { type: 'string', enum: ['utf8', 'base64'], default: 'utf8' },
          qos: { type: 'integer', enum: [0, 1, 2], default: 0 }, retain: { type: 'boolean', default: false },
        },
      },
    },
  },
} as const;
