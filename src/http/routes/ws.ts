/**
 * `WS /ws`: the console's live channel (protocol in src/contracts/console.ts). The upgrade is refused unless the
 * request is signed in (session cookie or bearer token) and, when it carries an Origin (every browser does), that
 * origin is the console's own: another site cannot open a socket with the user's cookie (cross-site WebSocket
 * hijacking). Each message is validated against the contract; the first must be `hello`.
 */
import websocket from '@fastify/websocket';
import { Ajv } from 'ajv';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { ConsoleHub } from '../../console/hub.ts';
import {
  CLOSE_BAD_MESSAGE,
  CLOSE_UNAUTHENTICATED,
  type ClientMessage,
  ClientMessageSchema,
  CONSOLE_PROTOCOL_VERSION,
  type ServerMessage,
} from '../../contracts/console.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, sessionToken } from '../app.ts';

const validate = new Ajv({ allErrors: false, strict: false }).compile<ClientMessage>(ClientMessageSchema);

/** How long a socket may stay without saying hello. */
const HELLO_TIMEOUT_MS = 10_000;
/** How often a socket's session is checked again (revoked, expired, account disabled). */
const SESSION_RECHECK_MS = 30_000;
const PING_EVERY_MS = 25_000;

export interface WsRouteOptions {
  deps: HttpDeps;
  hub: ConsoleHub;
  /** the same-origin test for the upgrade request; default: the Origin's host is the request's Host */
  originAllowed?: (req: FastifyRequest) => boolean;
}

export function sameHost(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (!origin) return false;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

export async function wsRoutes(
  app: FastifyInstance,
  { deps, hub, originAllowed = sameHost }: WsRouteOptions,
): Promise<void> {
  await app.register(websocket, { options: { maxPayload: 16 * 1024 } });

  app.get(
    '/ws',
    {
      websocket: true,
      schema: { hide: true },
      preValidation: async (req, reply) => {
        if (req.headers.origin !== undefined && !originAllowed(req))
          throw new HttpError(403, 'origin', 'this console is not served from that origin');
        await app.authenticate(req, reply);
      },
    },
    (socket: WebSocket, req: FastifyRequest) => {
      const staff = req.staff!;
      const scope = req.scope!;
      const token = sessionToken(req)!;
      const send = (msg: ServerMessage) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(msg));
      };
      let unregister: (() => void) | undefined;
      let greeted = false;
      const timers: NodeJS.Timeout[] = [];
      const cleanup = () => {
        for (const t of timers) clearInterval(t);
        unregister?.();
        unregister = undefined;
      };
      const helloTimer = setTimeout(() => socket.close(CLOSE_BAD_MESSAGE, 'say hello first'), HELLO_TIMEOUT_MS);
      timers.push(helloTimer);
      timers.push(
        setInterval(() => {
          deps.registry.resolveSession(token).then(
            (s) => {
              if (!s || s.disabled) socket.close(CLOSE_UNAUTHENTICATED, 'session ended');
            },
            () => {},
          );
        }, SESSION_RECHECK_MS),
      );
      let alive = true;
      socket.on('pong', () => {
        alive = true;
      });
      timers.push(
        setInterval(() => {
          if (!alive) return socket.terminate();
          alive = false;
          socket.ping();
        }, PING_EVERY_MS),
      );
      socket.on('close', cleanup);
      socket.on('error', () => socket.terminate());

      socket.on('message', (data, isBinary) => {
        let msg: unknown;
        try {
          msg = isBinary ? undefined : JSON.parse(String(data));
        } catch {
          msg = undefined;
        }
        if (!validate(msg)) {
          send({ type: 'error', code: 'bad_message', message: 'not a message of this protocol (see /docs)' });
          socket.close(CLOSE_BAD_MESSAGE, 'bad message');
          return;
        }
        if (msg.type === 'ping') return send({ type: 'pong' });
        // hello
        if (greeted) return send({ type: 'error', code: 'already_greeted', message: 'hello once per connection' });
        if (msg.v !== CONSOLE_PROTOCOL_VERSION) {
          send({ type: 'error', code: 'version', message: `this server speaks v${CONSOLE_PROTOCOL_VERSION}` });
          socket.close(CLOSE_BAD_MESSAGE, 'unsupported version');
          return;
        }
        greeted = true;
        clearTimeout(helloTimer);
        hub
          .connect(
            {
              staff,
              scope,
              send,
              sendText: (text) => {
                if (socket.readyState === socket.OPEN) socket.send(text);
              },
              close: (code, reason) => socket.close(code, reason),
              buffered: () => socket.bufferedAmount,
            },
            msg.since,
          )
          .then(
            (remove) => {
              // the socket may have gone while the snapshot was read
              if (socket.readyState === socket.OPEN) unregister = remove;
              else remove();
            },
            (err: unknown) => {
              req.log.warn({ err }, 'console connect failed');
              socket.close(1011, 'try again');
            },
          );
      });
      req.log.info({ event: 'console_connected', staffId: staff.id }, 'console connected');
    },
  );
}
