/**
 * Prometheus metrics (served as text on GET /metrics). One Registry per process, created in the composition root
 * and handed to the modules that count things; modules written later add their own metrics to `metrics.registry`.
 * A registry per instance (rather than prom-client's global one) lets tests build several systems side by side.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { INBOUND_KINDS } from './contracts/topics.ts';
import { EVENT_TYPES, REJECT_REASONS } from './contracts/canonical.ts';
import type { TimeSeriesStats } from './timeseries/port.ts';

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event-loop lag, GC); off in tests that build many registries. */
  defaultMetrics?: boolean;
}

export function createMetrics(opts: MetricsOptions = {}) {
  const registry = new Registry();
  // Default process metrics keep their standard names (no gridwatch_ prefix) so stock dashboards work on them.
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const ingestMessages = new Counter({
    name: 'gridwatch_ingest_messages_total',
    help: 'Messages received from devices, by topic kind (telemetry, event, status)',
    labelNames: ['kind'] as const,
    registers,
  });
  const ingestRejected = new Counter({
    name: 'gridwatch_ingest_rejected_total',
    help: 'Device messages rejected by ingest, by reason (each one also got an error reply on the device error topic)',
    labelNames: ['reason'] as const,
    registers,
  });
  const readingsStored = new Counter({
    name: 'gridwatch_readings_stored_total',
    help: 'Canonical readings handed to the time-series store',
    registers,
  });
  const eventsProcessed = new Counter({
    name: 'gridwatch_events_processed_total',
    help: 'Device events accepted and fanned out, by event type',
    labelNames: ['type'] as const,
    registers,
  });
  const duplicateEvents = new Counter({
    name: 'gridwatch_duplicate_events_total',
    help: 'Device events dropped because the same event id from the same device was already processed',
    registers,
  });
  const devicesOnline = new Gauge({
    name: 'gridwatch_devices_online',
    help: 'Devices currently considered online by the status tracker',
    registers,
  });
  const mqttClients = new Gauge({
    name: 'gridwatch_mqtt_clients',
    help: 'Authenticated MQTT sessions on the embedded broker',
    registers,
  });
  const mqttAuthFailures = new Counter({
    name: 'gridwatch_mqtt_auth_failures_total',
    help: 'Refused MQTT connections, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  const mqttDenied = new Counter({
    name: 'gridwatch_mqtt_denied_total',
    help: 'Publishes and subscriptions refused by the broker ACL (a device outside its own topics)',
    labelNames: ['action'] as const,
    registers,
  });
  const journalFailures = new Counter({
    name: 'gridwatch_ingest_journal_failures_total',
    help: 'QoS 1 events that could not be made durable in time: processed, but not acknowledged (the device resends)',
    registers,
  });
  const ingestLatency = new Histogram({
    name: 'gridwatch_ingest_latency_seconds',
    help: 'Time spent in the ingest pipeline per message (decode, validate, fan out), seconds',
    // The pipeline is synchronous and takes tens of microseconds; the upper buckets catch event-loop stalls.
    buckets: [0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    registers,
  });

  const ruleDeadlineLateness = new Histogram({
    name: 'gridwatch_rule_deadline_lateness_seconds',
    help: 'How late rule deadlines (inactivity, cancel windows, night-exit waits …) fired after their time',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers,
  });

  const escalationStepLateness = new Histogram({
    name: 'gridwatch_escalation_step_lateness_seconds',
    help: 'How late escalation steps fired after their time',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 30, 120],
    registers,
  });

  // Zero-initialise every known label value: a rate() over a series that appears only with its first increment
  // misses that increment, and dashboards and alerts want to see "0 rejected" rather than "no data".
  for (const kind of INBOUND_KINDS) ingestMessages.labels(kind).inc(0);
  for (const reason of REJECT_REASONS) ingestRejected.labels(reason).inc(0);
  for (const type of EVENT_TYPES) eventsProcessed.labels(type).inc(0);
  for (const action of ['publish', 'subscribe']) mqttDenied.labels(action).inc(0);

  return {
    registry,
    ruleDeadlineLateness,
    escalationStepLateness,
    ingestMessages,
    ingestRejected,
    readingsStored,
    eventsProcessed,
    duplicateEvents,
    devicesOnline,
    mqttClients,
    mqttAuthFailures,
    mqttDenied,
    journalFailures,
    ingestLatency,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The time-series store's own accounting, read when /metrics is scraped: what waits in its bounded buffer while the
 * store is slow or away, and what it had to drop when the bound was hit (also logged by the store).
 */
export function watchTimeSeries(metrics: Metrics, stats: () => TimeSeriesStats): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'gridwatch_timeseries_buffered_points',
    help: 'Points waiting to be written to the time-series store (it is slow or unavailable)',
    registers,
    collect() {
      this.set(stats().buffered);
    },
  });
  let counted = 0;
  new Counter({
    name: 'gridwatch_timeseries_dropped_points_total',
    help: 'Points the time-series store dropped: its buffer (and disk spill) bound was hit during an outage, or invalid',
    registers,
    collect() {
      const dropped = stats().dropped;
      if (dropped > counted) this.inc(dropped - counted);
      counted = Math.max(counted, dropped);
    },
  });
  let written = 0;
  new Counter({
    name: 'gridwatch_timeseries_written_points_total',
    help: 'Points the time-series store has written (confirmed by the store)',
    registers,
    collect() {
      const w = stats().written;
      if (w > written) this.inc(w - written);
      written = Math.max(written, w);
    },
  });
  new Gauge({
    name: 'gridwatch_timeseries_spilled_points',
    help: 'Points waiting in the disk spill because the memory buffer was full while the store was away',
    registers,
    collect() {
      this.set(stats().spilled);
    },
  });
  new Gauge({
    name: 'gridwatch_timeseries_spill_bytes',
    help: 'Bytes of the time-series disk spill files',
    registers,
    collect() {
      this.set(stats().spillBytes);
    },
  });
  let flushes = 0;
  new Counter({
    name: 'gridwatch_timeseries_failed_flushes_total',
    help: 'Writes to the time-series store that failed and were kept for a retry',
    registers,
    collect() {
      const failed = stats().failedFlushes;
      if (failed > flushes) this.inc(failed - flushes);
      flushes = Math.max(flushes, failed);
    },
  });
}
