/**
 * Ingest: one device message in, canonical readings and events out.
 *
 *   topic → device (DeviceDirectory) → model decoder → schema (compiled once) → timestamps → dedupe (events)
 *         → enrich (placement, drill from the DeviceRecord) → Bus (`readings`, `event`) + time-series `write(points)`
 *
 * Everything here is synchronous on purpose: `handle()` runs inside the broker's publish event for every message,
 * so it must not await, must not throw, and must not let one device's bad payload touch another device. A rejected
 * message gets an error reply on `<base>/<deviceId>/error`, a counter, a `rejected` bus event and a rate-limited log
 * line; nothing of it reaches the bus or the store.
 */
import { DeviceRateLimiter } from './rate-limit.ts';
import { performance } from 'node:perf_hooks';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { Bus } from '../bus.ts';
import type { Clock } from '../clock/clock.ts';
import type { Config } from '../config/schema.ts';
import {
  type CanonicalEvent,
  EVENT_TYPES,
  EventSchema,
  type ErrorReply,
  type EventType,
  isCommandAck,
  NUMERIC_FIELDS,
  type RejectReason,
  type Telemetry,
  type TelemetryField,
  TelemetryMessageSchema,
  TelemetrySchema,
} from '../contracts/canonical.ts';
import { deviceTopic, type InboundKind, type OutboundKind, parseDeviceTopic } from '../contracts/topics.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { DeviceDirectory, DeviceRecord } from '../registry/types.ts';
import type { Point, PointTags, TimeSeriesStore } from '../timeseries/port.ts';
import type { DeviceModel } from '../../devices/types.ts';
import type { DeviceEventRecord, Reading } from './types.ts';

// ---------------------------------------------------------------------------------------------------------------
// Recent rejections per device (the console's device page)

/** One rejected message, as kept for the device page. */
export interface RecentReject {
  /** epoch ms, when it arrived */
  ts: number;
  /** the inbound topic kind; absent for a topic that is none of them */
  kind?: InboundKind;
  topic: string;
  reason: RejectReason;
  message: string;
}

/** Rejections kept per device. */
export const RECENT_REJECTS_PER_DEVICE = 20;
/** Devices with kept rejections; beyond it the device whose rejections are the stalest is forgotten. */
export const RECENT_REJECTS_MAX_DEVICES = 5_000;
const REJECT_MESSAGE_MAX = 300;

interface Ring {
  items: RecentReject[];
  /** where the next item goes once the ring is full */
  next: number;
}

/**
 * A fixed-size ring of the latest rejections per device, in memory on this node only. Bounded twice: 20 per
 * device, and at most `maxDevices` devices (a Map keeps insertion order and a device is moved to the end when it
 * is rejected again, so the head is the device that has been quiet the longest, and it goes first).
 */
export class RecentRejects {
  private readonly rings = new Map<string, Ring>();

  constructor(
    private readonly perDevice = RECENT_REJECTS_PER_DEVICE,
    private readonly maxDevices = RECENT_REJECTS_MAX_DEVICES,
  ) {}

  add(deviceId: string, r: RecentReject): void {
    let ring = this.rings.get(deviceId);
    if (ring) {
      this.rings.delete(deviceId);
    } else {
      ring = { items: [], next: 0 };
      if (this.rings.size >= this.maxDevices) {
        const oldest = this.rings.keys().next().value;
        if (oldest !== undefined) this.rings.delete(oldest);
      }
    }
    this.rings.set(deviceId, ring);
    if (ring.items.length < this.perDevice) {
      ring.items.push(r);
    } else {
      ring.items[ring.next] = r;
      ring.next = (ring.next + 1) % this.perDevice;
    }
  }

  /** The device's kept rejections, newest first. */
  recent(deviceId: string): RecentReject[] {
    const ring = this.rings.get(deviceId);
    if (!ring) return [];
    const { items, next } = ring;
    // oldest first is items[next..] then items[..next] (next is 0 until the ring is full)
    const ordered = next === 0 ? items.slice() : [...items.slice(next), ...items.slice(0, next)];
    return ordered.reverse();
  }

  get devices(): number {
    return this.rings.size;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Ports

/**
 * Duplicate-event suppression. The in-memory implementation below serves one node; a Redis-backed one (SET NX EX)
 * can replace it when several ingest nodes share a subscription, which is why an answer may also be a Promise:
 * the pipeline then finishes that one event asynchronously and keeps the telemetry path synchronous.
 */
export interface EventDedupe {
  /** True when `id` from `deviceId` was already processed within the window; otherwise records it and says false. */
  seen(deviceId: string, id: string, ts: number): boolean | Promise<boolean>;
}

/** Sends to a device (the broker implements it): used for error replies. */
export interface DeviceReplier {
  publishToDevice(deviceId: string, kind: OutboundKind, payload: string | Buffer): void;
}

/** Where liveness goes (the device status tracker implements it). */
export interface StatusSink {
  /** Any message from the device: it is alive now. */
  seen(deviceId: string, ts: number): void;
  reportStatus(deviceId: string, status: 'online' | 'offline', ts: number, reason: 'status_topic' | 'last_will'): void;
}

// ---------------------------------------------------------------------------------------------------------------
// In-memory dedupe

/**
 * Remembers `deviceId/id` → expiry in a Map. Maps iterate in insertion order and entries are (re)inserted with
 * non-decreasing expiry, so expired entries sit at the head and eviction is a short walk from the front; the size
 * is capped so a device inventing ids cannot grow it without bound (the oldest ids are forgotten first).
 */
export class MemoryEventDedupe implements EventDedupe {
  private readonly expiry = new Map<string, number>();
  private inserts = 0;

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries = 500_000,
  ) {}

  seen(deviceId: string, id: string, ts: number): boolean {
    // '/' cannot occur in a device id (topics.ts), so the key is unambiguous.
    const key = deviceId + '/' + id;
    const until = this.expiry.get(key);
    if (until !== undefined) {
      if (until > ts) return true;
      this.expiry.delete(key); // re-insert below, at the tail, to keep insertion order ≈ expiry order
    }
    this.expiry.set(key, ts + this.windowMs);
    if (++this.inserts >= 1024 || this.expiry.size > this.maxEntries) this.evict(ts);
    return false;
  }

  get size(): number {
    return this.expiry.size;
  }

  private evict(now: number): void {
    this.inserts = 0;
    for (const [key, until] of this.expiry) {
      if (until > now && this.expiry.size <= this.maxEntries) break;
      this.expiry.delete(key);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Schemas, compiled once per process

interface Validators {
  telemetry: ValidateFunction;
  events: Map<string, ValidateFunction>;
  maxBackfill: number;
}
let validators: Validators | undefined;

function getValidators(): Validators {
  if (validators) return validators;
  // allErrors: false — the first error is enough for the reply and stops validation early (cheaper).
  const ajv = new Ajv({ allErrors: false, strict: false });
  addFormats.default(ajv, ['date-time']);
  const events = new Map<string, ValidateFunction>();
  // One validator per event type instead of the whole union: a union reports every branch's error, whereas
  // picking the branch by `type` gives the device one precise message ("seconds: must be <= 86400").
  for (const member of EventSchema.anyOf as unknown as { properties: { type: { const: string } } }[]) {
    events.set(member.properties.type.const, ajv.compile(member));
  }
  const arraySchema = (TelemetryMessageSchema.anyOf as unknown as { maxItems?: number }[])[1];
  validators = { telemetry: ajv.compile(TelemetrySchema), events, maxBackfill: arraySchema?.maxItems ?? 500 };
  return validators;
}

const RANGE_KEYWORDS = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']);
const EVENT_FIELD: Record<string, string> = Object.fromEntries(EVENT_TYPES.map((t) => [t, `event_${t}`]));
const KNOWN_EVENTS = EVENT_TYPES.join(', ');

interface Fail {
  reason: RejectReason;
  message: string;
}

/** Turns ajv's first error into a reason and a message a device integrator can act on. */
function describeErrors(errors: ErrorObject[] | null | undefined, data: unknown, prefix: string): Fail {
  const first = errors?.[0];
  if (!first) return { reason: 'schema', message: `${prefix}invalid payload` };
  const path = first.instancePath.slice(1).replaceAll('/', '.');
  const where = prefix + (path || 'payload');
  if (RANGE_KEYWORDS.has(first.keyword) && path !== 'ts') {
    const value = path && typeof data === 'object' && data ? (data as Record<string, unknown>)[path] : undefined;
    const unit = path in NUMERIC_FIELDS ? ` ${NUMERIC_FIELDS[path as keyof typeof NUMERIC_FIELDS].unit}` : '';
    return {
      reason: 'out_of_range',
      message: `${where}: ${first.message}${unit}${value === undefined ? '' : ` (got ${String(value)})`}`,
    };
  }
  // A union (anyOf) reports each branch first; describe the union as a whole.
  const union = errors?.find((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath);
  if (union) {
    if (path === 'ts')
      return { reason: 'schema', message: `${where}: must be epoch milliseconds or ISO-8601 with zone` };
    const allowed = errors
      ?.filter((e) => e.keyword === 'const' && e.instancePath === first.instancePath)
      .map((e) => String((e.params as { allowedValue: unknown }).allowedValue));
    return {
      reason: 'schema',
      message: allowed?.length ? `${where}: must be one of ${allowed.join(', ')}` : `${where}: matches no allowed form`,
    };
  }
  switch (first.keyword) {
    case 'additionalProperties':
      return {
        reason: 'schema',
        message: `${where}: unknown field '${(first.params as { additionalProperty: string }).additionalProperty}'`,
      };
    case 'required':
      return {
        reason: 'schema',
        message: `${where}: missing field '${(first.params as { missingProperty: string }).missingProperty}'`,
      };
    case 'minProperties':
      return { reason: 'schema', message: `${where}: no readings in message` };
    case 'type':
      return { reason: 'schema', message: `${where}: ${first.message}${path ? '' : ' (a JSON object)'}` };
    default:
      return { reason: 'schema', message: `${where}: ${first.message}` };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The pipeline

export interface IngestPipelineDeps {
  baseTopic: string;
  config: Config['ingest'];
  directory: DeviceDirectory;
  getModel: (id: string) => DeviceModel | undefined;
  bus: Bus;
  timeseries: Pick<TimeSeriesStore, 'write'>;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  /** Error replies to devices; without it rejections are only counted and logged. */
  replies?: DeviceReplier;
  /** Liveness and the status topic; without it status messages are only counted. */
  status?: StatusSink;
  /** Defaults to a MemoryEventDedupe over `config.dedupeWindowS`. */
  dedupe?: EventDedupe;
  /** Where the latest rejections per device are kept (default: a RecentRejects of 20 per device). */
  recentRejects?: RecentRejects;
}

/** Events the per-device rate limit never refuses: a device in a loop must not silence its resident's alarm. */
const NEVER_RATE_LIMITED: ReadonlySet<string> = new Set<EventType>([
  'sos',
  'fall',
  'smoke',
  'gas_leak',
  'door_forced',
  'ebike_charging_cutoff',
  'overtemp',
  'tamper',
  'cancel',
]);

export class IngestPipeline {
  private readonly v: Validators;
  private readonly dedupe: EventDedupe;
  /** events waiting for the shared dedupe's answer (see settled()) */
  private readonly pendingEvents = new Set<Promise<void>>();
  /** set while handle() processes a message from the ingest journal */
  private replaying = false;
  private readonly backdateMs: number;
  private readonly futureMs: number;
  private readonly maxBytes: number;
  private readonly limiter: DeviceRateLimiter;
  /** Per-device point tags, built once per DeviceRecord object (a directory refresh yields a new object). */
  private readonly tagsCache = new WeakMap<DeviceRecord, PointTags>();
  /** Last warn-level log per `deviceId|reason`. */
  private readonly lastWarn = new Map<string, number>();
  /** Resolved timestamps of the message being handled; reused so a message does not allocate an array. */
  private readonly tsScratch: number[] = [];
  /** The latest rejections per device, for the device page. */
  readonly rejects: RecentRejects;
  // Counter children resolved once: `counter.inc({label})` hashes the labels object on every call.
  private readonly c: {
    messages: Record<InboundKind, { inc(n?: number): void }>;
    rejected: Map<RejectReason, { inc(n?: number): void }>;
    events: Map<string, { inc(n?: number): void }>;
  };

  constructor(private readonly deps: IngestPipelineDeps) {
    this.v = getValidators();
    const cfg = deps.config;
    this.dedupe = deps.dedupe ?? new MemoryEventDedupe(cfg.dedupeWindowS * 1000);
    this.backdateMs = cfg.maxBackdateS * 1000;
    this.futureMs = cfg.maxFutureS * 1000;
    this.maxBytes = cfg.maxPayloadBytes;
    this.limiter = new DeviceRateLimiter(cfg.rateLimit);
    this.rejects = deps.recentRejects ?? new RecentRejects();
    const m = deps.metrics;
    this.c = {
      messages: {
        telemetry: m.ingestMessages.labels('telemetry'),
        event: m.ingestMessages.labels('event'),
        status: m.ingestMessages.labels('status'),
      },
      rejected: new Map(),
      events: new Map(EVENT_TYPES.map((t) => [t, m.eventsProcessed.labels(t)])),
    };
  }

  /**
   * Handles one message that arrived on `<base>/<deviceId>/<kind>`. The broker has already authenticated the
   * device for this topic; an external broker path goes through handleTopic(). Never throws.
   * `viaLastWill` marks a status message that the broker published as the device's Last Will.
   */
  handle(
    deviceId: string,
    kind: InboundKind,
    payload: Buffer,
    receivedAt: number = this.deps.clock.now(),
    viaLastWill = false,
    /** from the ingest journal after a restart: the event-id dedupe is bypassed (see ingest/event-journal.ts) */
    replayed = false,
  ): void {
    const started = performance.now();
    try {
      this.c.messages[kind].inc();
      this.replaying = replayed;
      const fail = this.process(deviceId, kind, payload, receivedAt, viaLastWill);
      if (fail) this.reject(deviceId, kind, fail, receivedAt);
    } catch (err) {
      // Only a bug of ours gets here (decoders and bus listeners are guarded); log it and keep serving others.
      this.deps.logger.error({ err, deviceId, kind }, 'ingest: unexpected error');
    } finally {
      this.replaying = false;
    }
    this.deps.metrics.ingestLatency.observe((performance.now() - started) / 1000);
  }

  /** Resolves when every event handed over so far has been through the dedupe and onto the bus. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pendingEvents]);
  }

  /** Same as handle() for a raw topic, e.g. from an external broker subscription. */
  handleTopic(topic: string, payload: Buffer, receivedAt: number = this.deps.clock.now()): void {
    const parsed = parseDeviceTopic(this.deps.baseTopic, topic);
    if (parsed && (parsed.kind === 'telemetry' || parsed.kind === 'event' || parsed.kind === 'status')) {
      this.handle(parsed.deviceId, parsed.kind, payload, receivedAt);
      return;
    }
    // cmd / error are the service's own outbound topics: seen here when subscribed to `<base>/+/+`, not an error.
    if (parsed) return;
    // A known device with a typo in the last level (`.../telemtry`) gets told; anything else is only counted.
    const prefix = `${this.deps.baseTopic}/`;
    const deviceId = topic.startsWith(prefix) ? topic.slice(prefix.length).split('/', 1)[0] : undefined;
    this.reject(
      deviceId && this.deps.directory.get(deviceId) ? deviceId : undefined,
      undefined,
      { reason: 'bad_topic', message: `topic must be ${this.deps.baseTopic}/<deviceId>/telemetry|event|status` },
      receivedAt,
      topic,
    );
  }

  private process(
    deviceId: string,
    kind: InboundKind,
    payload: Buffer,
    receivedAt: number,
    viaLastWill: boolean,
  ): Fail | undefined {
    const record = this.deps.directory.get(deviceId);
    if (!record) return { reason: 'unknown_device', message: `device ${deviceId} is not provisioned` };
    if (record.disabled) return { reason: 'disabled_device', message: `device ${deviceId} is disabled` };
    if (kind !== 'status') this.deps.status?.seen(deviceId, receivedAt);
    if (payload.length > this.maxBytes) {
      return { reason: 'too_large', message: `payload of ${payload.length} bytes exceeds ${this.maxBytes} bytes` };
    }

    if (kind === 'status') {
      const text = payload.toString('utf8').trim();
      if (text !== 'online' && text !== 'offline') {
        return { reason: 'schema', message: `status must be 'online' or 'offline' (got '${text.slice(0, 32)}')` };
      }
      this.deps.status?.reportStatus(
        deviceId,
        text,
        receivedAt,
        viaLastWill && text === 'offline' ? 'last_will' : 'status_topic',
      );
      return undefined;
    }

    const model = this.deps.getModel(record.model);
    if (!model) {
      // A registry/model mismatch is our problem, not the device's; say so in the log loudly.
      this.deps.logger.error({ deviceId, model: record.model }, 'ingest: device has an unknown model');
      return { reason: 'decode', message: `no decoder for model ${record.model}` };
    }

    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return { reason: 'bad_json', message: `payload is not JSON: ${(err as Error).message}` };
    }

    let decoded: ReturnType<DeviceModel['decode']>;
    if (kind === 'event' && isCommandAck(json)) {
      // A command answer is canonical whatever the model (a vendor decoder would not know it): validated below
      // like any event, it goes to the command log (bus `event`), never to the rules' or the store's concerns.
      decoded = { ok: true, events: [json as CanonicalEvent] };
    } else {
      try {
        decoded = model.decode(kind, json);
      } catch (err) {
        return { reason: 'decode', message: `${model.id} decoder failed: ${(err as Error).message}` };
      }
    }
    if (!decoded.ok) return { reason: decoded.reason, message: decoded.message };

    const telemetry = decoded.telemetry;
    const events = decoded.events;
    if (telemetry !== undefined && !Array.isArray(telemetry)) {
      return { reason: 'decode', message: `${model.id} decoder returned telemetry that is not a list` };
    }
    if (events !== undefined && !Array.isArray(events)) {
      return { reason: 'decode', message: `${model.id} decoder returned events that are not a list` };
    }

    // Validate everything before fanning anything out: a message is accepted or rejected as a whole.
    const tsList = this.tsScratch;
    tsList.length = 0;
    if (telemetry && telemetry.length > 0) {
      if (telemetry.length > this.v.maxBackfill) {
        return {
          reason: 'schema',
          message: `back-fill of ${telemetry.length} readings; at most ${this.v.maxBackfill} per message`,
        };
      }
      const many = telemetry.length > 1;
      for (let i = 0; i < telemetry.length; i++) {
        const t = telemetry[i];
        const prefix = many ? `[${i}].` : '';
        if (!this.v.telemetry(t)) return describeErrors(this.v.telemetry.errors, t, prefix);
        const ts = this.resolveTs((t as Telemetry).ts, receivedAt, prefix);
        if (typeof ts !== 'number') return ts;
        tsList.push(ts);
      }
    }
    const nTelemetry = tsList.length;
    if (events && events.length > 0) {
      const many = events.length > 1;
      for (let i = 0; i < events.length; i++) {
        const e = events[i] as unknown;
        const prefix = many ? `[${i}].` : '';
        const type = typeof e === 'object' && e !== null ? (e as { type?: unknown }).type : undefined;
        if (typeof type !== 'string') {
          return { reason: 'schema', message: `${prefix}event must be a JSON object with a string 'type'` };
        }
        const validate = this.v.events.get(type);
        if (!validate) {
          return { reason: 'unknown_event', message: `${prefix}unknown event type '${type}' (known: ${KNOWN_EVENTS})` };
        }
        if (!validate(e)) return describeErrors(validate.errors, e, prefix);
        const ts = this.resolveTs((e as CanonicalEvent).ts, receivedAt, prefix);
        if (typeof ts !== 'number') return ts;
        tsList.push(ts);
      }
    }

    // The per-device rate, on the message's own time (its newest ts; see rate-limit.ts). Journal replays were
    // within the limit when they were accepted before a restart; life-safety events are never refused.
    if (this.limiter.enabled && !this.replaying) {
      let at = tsList.length > 0 ? Number.NEGATIVE_INFINITY : receivedAt;
      for (const ts of tsList) if (ts > at) at = ts;
      if (!this.limiter.take(deviceId, at) && !events?.some((e) => NEVER_RATE_LIMITED.has(e.type))) {
        const { perSecond, burst } = this.deps.config.rateLimit;
        return { reason: 'rate_limited', message: `over ${perSecond} messages/s (burst ${burst}); message dropped` };
      }
    }

    // Accepted: enrich from the DeviceRecord (never from the payload) and fan out.
    const tags = this.tagsOf(record);
    if (telemetry && nTelemetry > 0) this.emitTelemetry(record, telemetry, tsList, tags);
    if (events) {
      for (let i = 0; i < events.length; i++) {
        this.emitEvent(record, events[i] as CanonicalEvent, tsList[nTelemetry + i] as number, receivedAt, tags);
      }
    }
    return undefined;
  }

  /** `ts` as epoch ms or ISO-8601 (already schema-checked); missing → receivedAt; bounded by backdate / future. */
  private resolveTs(ts: number | string | undefined, receivedAt: number, prefix: string): number | Fail {
    if (ts === undefined) return receivedAt;
    const ms = typeof ts === 'number' ? ts : Date.parse(ts);
    if (Number.isNaN(ms)) return { reason: 'schema', message: `${prefix}ts: not a valid date` };
    if (receivedAt - ms > this.backdateMs) {
      const hours = Math.round((receivedAt - ms) / 3_600_000);
      // An epoch-seconds value looks like a date in January 1970: say so, it is the usual mistake.
      const hint = typeof ts === 'number' && ts < 1e11 ? '; ts must be epoch milliseconds, not seconds' : '';
      return {
        reason: 'backdated',
        message: `${prefix}ts is ${hours} h old; at most ${this.backdateMs / 3_600_000} h accepted${hint}`,
      };
    }
    if (ms - receivedAt > this.futureMs) {
      return {
        reason: 'future',
        message: `${prefix}ts is ${Math.round((ms - receivedAt) / 1000)} s ahead of server time; at most ${this.futureMs / 1000} s accepted`,
      };
    }
    return ms;
  }

  private emitTelemetry(
    record: DeviceRecord,
    telemetry: readonly Telemetry[],
    tsList: readonly number[],
    tags: PointTags,
  ): void {
    const readings: Reading[] = [];
    const points: Point[] = [];
    const { id: deviceId, model, placement, drill } = record;
    for (let i = 0; i < telemetry.length; i++) {
      const t = telemetry[i] as Record<string, number | boolean | string | undefined>;
      const ts = tsList[i] as number;
      for (const field in t) {
        if (field === 'ts') continue;
        const value = t[field];
        if (typeof value !== 'number' && typeof value !== 'boolean') continue;
        readings.push({ deviceId, model, field: field as TelemetryField, ts, value, placement, drill });
        points.push({ deviceId, field, ts, value: typeof value === 'boolean' ? (value ? 1 : 0) : value, tags });
      }
    }
    if (readings.length === 0) return;
    this.deps.timeseries.write(points);
    this.deps.metrics.readingsStored.inc(points.length);
    this.deps.bus.emit('readings', readings);
  }

  private emitEvent(record: DeviceRecord, event: CanonicalEvent, ts: number, receivedAt: number, tags: PointTags) {
    if (event.id !== undefined && !this.replaying) {
      const dup = this.dedupe.seen(record.id, event.id, receivedAt);
      if (typeof dup !== 'boolean') {
        // Shared (async) dedupe: finish this event when it answers; a failing store lets the event through,
        // because a duplicate alarm is better than a lost SOS.
        const pending: Promise<void> = dup.then(
          (d) => this.finishEvent(record, event, ts, receivedAt, tags, d),
          (err) => {
            this.deps.logger.warn({ err, deviceId: record.id }, 'ingest: event dedupe failed; processing anyway');
            this.finishEvent(record, event, ts, receivedAt, tags, false);
          },
        );
        this.pendingEvents.add(pending);
        void pending.finally(() => this.pendingEvents.delete(pending));
        return;
      }
      this.finishEvent(record, event, ts, receivedAt, tags, dup);
      return;
    }
    this.finishEvent(record, event, ts, receivedAt, tags, false);
  }

  private finishEvent(
    record: DeviceRecord,
    event: CanonicalEvent,
    ts: number,
    receivedAt: number,
    tags: PointTags,
    duplicate: boolean,
  ): void {
    if (duplicate) {
      this.deps.metrics.duplicateEvents.inc();
      this.deps.logger.debug({ deviceId: record.id, eventId: event.id, type: event.type }, 'ingest: duplicate event');
      return;
    }
    const rec: DeviceEventRecord = {
      deviceId: record.id,
      model: record.model,
      ts,
      receivedAt,
      event,
      placement: record.placement,
      drill: record.drill,
    };
    // Events are points too (value 1), so e.g. door access can be charted next to the readings; a command answer
    // is not something that happened at the device's place, so it is not charted.
    if (event.type !== 'cmd_ack') {
      this.deps.timeseries.write([
        { deviceId: record.id, field: EVENT_FIELD[event.type] as string, ts, value: 1, tags },
      ]);
    }
    this.c.events.get(event.type)?.inc();
    this.deps.bus.emit('event', rec);
  }

  private tagsOf(record: DeviceRecord): PointTags {
    let tags = this.tagsCache.get(record);
    if (!tags) {
      const p = record.placement;
      tags = { drill: record.drill };
      if (p.householdId) tags.householdId = p.householdId;
      if (p.buildingId) tags.buildingId = p.buildingId;
      if (p.gridId) tags.gridId = p.gridId;
      this.tagsCache.set(record, tags);
    }
    return tags;
  }

  private reject(
    deviceId: string | undefined,
    kind: InboundKind | undefined,
    fail: Fail,
    receivedAt: number,
    rawTopic?: string,
  ): void {
    const { baseTopic, replies, logger, bus, metrics } = this.deps;
    const topic = rawTopic ?? (deviceId && kind ? deviceTopic(baseTopic, deviceId, kind) : '');
    let counter = this.c.rejected.get(fail.reason);
    if (!counter) {
      counter = metrics.ingestRejected.labels(fail.reason);
      this.c.rejected.set(fail.reason, counter);
    }
    counter.inc();
    const warned = this.logRejection(deviceId, topic, fail, receivedAt);
    // a flooder is told once per log interval, not once per refused message (the reply would flood it back)
    if (deviceId && replies && (warned || fail.reason !== 'rate_limited')) {
      const reply: ErrorReply = { topic, error: fail.reason, message: fail.message };
      try {
        replies.publishToDevice(deviceId, 'error', JSON.stringify(reply));
      } catch (err) {
        logger.debug({ err, deviceId }, 'ingest: error reply failed');
      }
    }
    // kept for the device page: only for provisioned devices, so invented ids cannot crowd out real ones
    if (deviceId && this.deps.directory.get(deviceId)) {
      const message =
        fail.message.length > REJECT_MESSAGE_MAX ? `${fail.message.slice(0, REJECT_MESSAGE_MAX - 1)}…` : fail.message;
      const r: RecentReject = { ts: receivedAt, topic, reason: fail.reason, message };
      if (kind) r.kind = kind;
      this.rejects.add(deviceId, r);
    }
    bus.emit('rejected', { deviceId, topic, reason: fail.reason, message: fail.message, ts: receivedAt });
  }

  /** warn at most once per device and reason per interval (a broken device repeats itself), debug otherwise. */
  private logRejection(deviceId: string | undefined, topic: string, fail: Fail, now: number): boolean {
    const key = (deviceId ?? topic) + '|' + fail.reason;
    const last = this.lastWarn.get(key);
    if (last !== undefined && now - last < this.deps.config.rejectLogIntervalMs) {
      if (this.deps.logger.isLevelEnabled('debug'))
        this.deps.logger.debug(
          { deviceId, topic, reason: fail.reason, detail: fail.message },
          'ingest: message rejected',
        );
      return false;
    }
    // Bounded: unknown device ids from an external broker must not grow this map forever.
    if (this.lastWarn.size >= 10_000) this.lastWarn.clear();
    this.lastWarn.set(key, now);
    const fields: Record<string, unknown> = { deviceId, topic, reason: fail.reason, detail: fail.message };
    // how much a flooder sent over its limit since it was last reported
    if (fail.reason === 'rate_limited' && deviceId) fields.refused = this.limiter.takeRefused(deviceId);
    this.deps.logger.warn(fields, 'ingest: message rejected');
    return true;
  }
}
