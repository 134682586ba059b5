/**
 * Commands to devices (issue 5): staff send a command from the console, the service publishes it on the device's
 * `<base>/<deviceId>/cmd` topic (ARCHITECTURE.md section 2: `{"id", "name", "args"}`, QoS 1) and keeps a record;
 * the device answers on its event topic with `{"type": "cmd_ack", "ref": <command id>, "ok", "message"?}`.
 *
 * - The record is written BEFORE the publish, so an answer that comes back within a millisecond finds it.
 * - Only the device the command was sent to can answer it, and only while it is `sent`: an unknown `ref`, another
 *   device's command or a second answer is ignored (logged at debug).
 * - A command without an answer after `timeoutMs` (60 s) is `timeout`. That is decided when it is read (lazily,
 *   one UPDATE per read), so it holds across nodes and restarts without timers; an answer arriving after the
 *   timeout is too late and ignored, so `timeout` is final.
 * - Every command is logged (staff id, device id, command name and id; never the args, which may carry anything).
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, type Migration, type Selectable, sql } from 'kysely';
import type { Bus } from '../bus.ts';
import type { Clock } from '../clock/clock.ts';
import type { CommandAck } from '../contracts/canonical.ts';
import type { OutboundKind } from '../contracts/topics.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import { type Page, type PageOpts, RegistryError } from '../registry/port.ts';
import { encodeCursor, pageArgs } from '../registry/registry.ts';
import type { Database } from '../store/db.ts';

export const COMMAND_STATUSES = ['sent', 'acknowledged', 'failed', 'timeout'] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

/** How long a device has to answer a command. */
export const COMMAND_TIMEOUT_MS = 60_000;
/** The args of one command, as JSON text, at most this long. */
export const MAX_ARGS_JSON = 4096;

/** A command as the API shows it; times ISO-8601. */
export interface DeviceCommand {
  id: string;
  deviceId: string;
  name: string;
  args: Record<string, unknown>;
  /** staff id of who sent it */
  by: string;
  sentAt: string;
  status: CommandStatus;
  /** the device's message, if it gave one */
  answer?: string;
  /** when the device answered (acknowledged or failed) */
  answeredAt?: string;
}

export interface DeviceCommandTable {
  id: string;
  device_id: string;
  name: string;
  /** JSON object text */
  args: string;
  /** staff id */
  by: string;
  sent_at: number;
  status: CommandStatus;
  answer: string | null;
  answered_at: number | null;
}

interface CommandDB {
  device_command: DeviceCommandTable;
}

/** Migration 008 (registered in src/store/migrations.ts). */
export const deviceCommands008: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    // No foreign key to device: the log of what was sent must outlive a device that is replaced.
    await db.schema
      .createTable('device_command')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('args', 'text', (c) => c.notNull())
      .addColumn('by', 'text', (c) => c.notNull())
      .addColumn('sent_at', 'bigint', (c) => c.notNull())
      .addColumn('status', 'text', (c) =>
        c.notNull().check(sql`status in ('sent', 'acknowledged', 'failed', 'timeout')`),
      )
      .addColumn('answer', 'text')
      .addColumn('answered_at', 'bigint')
      .execute();
    // the device page lists a device's commands newest first; the lazy timeout looks for its `sent` ones
    await db.schema
      .createIndex('device_command_device_sent_idx')
      .on('device_command')
      .columns(['device_id', 'sent_at', 'id'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('device_command').ifExists().execute();
  },
};

/** Sends on a device's own topics (the embedded broker implements it). */
export interface CommandPublisher {
  publishToDevice(deviceId: string, kind: OutboundKind, payload: string | Buffer, qos?: 0 | 1): void;
}

export interface CommandServiceOptions {
  database: Database;
  /** Devices' answers arrive as `cmd_ack` events on the bus (ingest routes them from any model). */
  bus?: Bus;
  clock: Clock;
  logger: Logger;
  publisher: CommandPublisher;
  /** The commands a device model accepts (devices/: `DeviceModel.commands`); undefined for an unknown model. */
  commandsOf: (modelId: string) => readonly string[] | undefined;
  timeoutMs?: number;
  /** Told after every change (sent, answered, timed out): for a live view. Must not throw (it is guarded). */
  onChange?: (cmd: DeviceCommand) => void;
}

export interface SendCommand {
  deviceId: string;
  model: string;
  name: string;
  args?: Record<string, unknown>;
  /** staff id */
  by: string;
}

type Row = Selectable<DeviceCommandTable>;

export class CommandService implements Module {
  readonly name = 'device-commands';
  readonly timeoutMs: number;
  private readonly log: Logger;
  private detach: (() => void) | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly opts: CommandServiceOptions) {
    this.timeoutMs = opts.timeoutMs ?? COMMAND_TIMEOUT_MS;
    this.log = opts.logger;
  }

  /** Listens for devices' answers on the bus. */
  async start(): Promise<void> {
    const bus = this.opts.bus;
    if (!bus || this.detach) return;
    this.detach = bus.on('event', (e) => {
      if (e.event.type !== 'cmd_ack') return;
      const { ref, ok, message } = e.event;
      const p = this.answer(e.deviceId, { ref, ok, message }, e.receivedAt).catch((err: unknown) =>
        this.log.error({ err, deviceId: e.deviceId, ref }, 'command answer not recorded'),
      );
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    });
  }

  /** Stops listening and lets the answers being recorded finish. */
  async stop(): Promise<void> {
    this.detach?.();
    this.detach = undefined;
    await Promise.allSettled([...this.inFlight]);
  }

  private get db(): Kysely<CommandDB> {
    return this.opts.database.db as unknown as Kysely<CommandDB>;
  }

  /** The commands a model accepts ([] when it accepts none, undefined for an unknown model). */
  commandsOf(modelId: string): readonly string[] | undefined {
    return this.opts.commandsOf(modelId);
  }

  /**
   * Records the command and publishes `{id, name, args}` on the device's cmd topic (QoS 1). The caller has checked
   * who may send it; this checks what is sent: a name the model accepts, args that are a small JSON object.
   */
  async send(input: SendCommand): Promise<DeviceCommand> {
    const accepted = this.commandsOf(input.model);
    if (!accepted?.includes(input.name)) {
      throw new RegistryError(
        'invalid',
        `name: ${input.model} accepts ${accepted && accepted.length > 0 ? accepted.join(', ') : 'no commands'}`,
        [{ field: 'name', message: 'not a command of this device model' }],
      );
    }
    const args = input.args ?? {};
    const argsJson = JSON.stringify(args);
    if (typeof args !== 'object' || args === null || Array.isArray(args) || argsJson.length > MAX_ARGS_JSON) {
      throw new RegistryError('invalid', `args: must be a JSON object of at most ${MAX_ARGS_JSON} characters`, [
        { field: 'args', message: `must be a JSON object of at most ${MAX_ARGS_JSON} characters` },
      ]);
    }
    const row: DeviceCommandTable = {
      id: randomUUID(),
      device_id: input.deviceId,
      name: input.name,
      args: argsJson,
      by: input.by,
      sent_at: this.opts.clock.now(),
      status: 'sent',
      answer: null,
      answered_at: null,
    };
    await this.db.insertInto('device_command').values(row).execute();
    this.opts.publisher.publishToDevice(input.deviceId, 'cmd', JSON.stringify({ id: row.id, name: row.name, args }), 1);
    this.log.info(
      { event: 'device_command_sent', commandId: row.id, deviceId: row.device_id, name: row.name, by: row.by },
      'command sent to device',
    );
    const cmd = toCommand(row);
    this.changed(cmd);
    return cmd;
  }

  /**
   * A device's `cmd_ack`: marks the command acknowledged (`ok`) or failed, with the device's message. Ignored (and
   * false) unless the command exists, was sent to this very device, is still `sent` and within its timeout.
   */
  async answer(deviceId: string, ack: Pick<CommandAck, 'ref' | 'ok' | 'message'>, ts: number): Promise<boolean> {
    const now = this.opts.clock.now();
    const status: CommandStatus = ack.ok ? 'acknowledged' : 'failed';
    const r = await this.db
      .updateTable('device_command')
      .set({ status, answer: ack.message ?? null, answered_at: ts })
      .where('id', '=', ack.ref)
      .where('device_id', '=', deviceId)
      .where('status', '=', 'sent')
      .where('sent_at', '>', now - this.timeoutMs)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      this.log.debug({ deviceId, ref: ack.ref }, 'command answer ignored (unknown, not this device’s, or too late)');
      return false;
    }
    this.log.info(
      { event: 'device_command_answered', commandId: ack.ref, deviceId, status },
      ack.ok ? 'device acknowledged a command' : 'device refused a command',
    );
    const row = await this.db.selectFrom('device_command').selectAll().where('id', '=', ack.ref).executeTakeFirst();
    if (row) this.changed(toCommand(row));
    return true;
  }

  /** One command (after marking it timed out if its time is up). */
  async get(id: string): Promise<DeviceCommand | undefined> {
    const row = await this.db.selectFrom('device_command').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    if (row.status === 'sent' && Number(row.sent_at) <= this.opts.clock.now() - this.timeoutMs) {
      await this.expire(row.device_id);
      return this.get(id);
    }
    return toCommand(row);
  }

  /** A device's commands, newest first (keyset pages on sent_at, id). */
  async list(deviceId: string, page: Partial<PageOpts> = {}): Promise<Page<DeviceCommand>> {
    const { limit, after } = pageArgs(page);
    const position = after === undefined ? undefined : parsePosition(after);
    if (after !== undefined && !position) {
      throw new RegistryError('invalid', 'cursor: is not a valid cursor', [
        { field: 'cursor', message: 'is not a valid cursor' },
      ]);
    }
    await this.expire(deviceId);
    let q = this.db
      .selectFrom('device_command')
      .selectAll()
      .where('device_id', '=', deviceId)
      .orderBy('sent_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit + 1);
    if (position) {
      const { ts, id } = position;
      q = q.where((eb) => eb.or([eb('sent_at', '<', ts), eb.and([eb('sent_at', '=', ts), eb('id', '<', id)])]));
    }
    const rows = await q.execute();
    const kept = rows.slice(0, limit);
    const items = kept.map(toCommand);
    if (rows.length <= limit) return { items };
    const last = kept[kept.length - 1]!;
    return { items, nextCursor: encodeCursor(`${Number(last.sent_at)}:${last.id}`) };
  }

  /** Marks the device's unanswered commands whose time is up as `timeout`. */
  private async expire(deviceId: string): Promise<void> {
    const cutoff = this.opts.clock.now() - this.timeoutMs;
    const expired = await this.db
      .selectFrom('device_command')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('status', '=', 'sent')
      .where('sent_at', '<=', cutoff)
      .execute();
    if (expired.length === 0) return;
    await this.db
      .updateTable('device_command')
      .set({ status: 'timeout' })
      .where('device_id', '=', deviceId)
      .where('status', '=', 'sent')
      .where('sent_at', '<=', cutoff)
      .execute();
    for (const row of expired) {
      this.log.info(
        { event: 'device_command_timeout', commandId: row.id, deviceId, name: row.name },
        'device did not answer a command in time',
      );
      this.changed(toCommand({ ...row, status: 'timeout' }));
    }
  }

  private changed(cmd: DeviceCommand): void {
    if (!this.opts.onChange) return;
    try {
      this.opts.onChange(cmd);
    } catch (err) {
      this.log.error({ err, commandId: cmd.id }, 'command change listener failed');
    }
  }
}

/** A cursor's position: `<sent_at>:<id>`. */
function parsePosition(text: string): { ts: number; id: string } | undefined {
  const m = /^(\d{1,16}):(.{1,200})$/.exec(text);
  return m ? { ts: Number(m[1]), id: m[2]! } : undefined;
}

function parseArgs(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function toCommand(r: Row): DeviceCommand {
  const c: DeviceCommand = {
    id: r.id,
    deviceId: r.device_id,
    name: r.name,
    args: parseArgs(r.args),
    by: r.by,
    sentAt: new Date(Number(r.sent_at)).toISOString(),
    status: r.status,
  };
  if (r.answer !== null) c.answer = r.answer;
  if (r.answered_at !== null) c.answeredAt = new Date(Number(r.answered_at)).toISOString();
  return c;
}
