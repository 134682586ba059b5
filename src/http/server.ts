import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';

/** Listens with the built app; stop() stops accepting and lets in-flight requests finish. */
export class HttpServer implements Module {
  readonly name = 'http';
  constructor(
    readonly app: FastifyInstance,
    private readonly cfg: Config['http'],
    private readonly log: Logger,
  ) {}

  /** The bound port (useful when configured as 0). */
  get port(): number {
    const addr = this.app.server.address();
    return typeof addr === 'object' && addr ? addr.port : this.cfg.port;
  }

  async start(): Promise<void> {
    await this.app.listen({ host: this.cfg.host, port: this.cfg.port });
    this.log.info({ port: this.port }, 'HTTP API listening');
  }

  async stop(): Promise<void> {
    await this.app.close();
  }
}
