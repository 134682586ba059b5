/**
 * The ingest module: wires a device transport (the embedded broker today, an external-broker connector later) to
 * the pipeline, and the transport's connection events to the status tracker. The transport port is defined here,
 * by its consumer, so a second transport only has to satisfy this small interface.
 */
import type { InboundKind, OutboundKind } from '../contracts/topics.ts';
import type { Module } from '../lifecycle/module.ts';
import type { DisconnectInfo } from '../broker/status.ts';
import type { IngestPipeline } from './pipeline.ts';

/** Called for every message a device published on its own inbound topic (positional: no object per message). */
export type DeviceMessageHandler = (
  deviceId: string,
  kind: InboundKind,
  payload: Buffer,
  /** published by the broker as the device's Last Will */
  viaLastWill: boolean,
) => void;

export type DeviceConnectionHandler = (deviceId: string, connected: boolean, info?: DisconnectInfo) => void;

export interface DeviceTransport {
  /** Registers the message sink; returns a function that removes it. */
  onMessage(handler: DeviceMessageHandler): () => void;
  /** Connection events, where the transport knows them (an external broker only has the status topic). */
  onConnection(handler: DeviceConnectionHandler): () => void;
  publishToDevice(deviceId: string, kind: OutboundKind, payload: string | Buffer): void;
}

/** What the ingest module needs from the status tracker (DeviceStatusTracker satisfies it). */
export interface ConnectionStatusSink {
  connected(deviceId: string, ts?: number): void;
  disconnected(deviceId: string, info: DisconnectInfo, ts?: number): void;
}

export interface IngestModuleDeps {
  transport: DeviceTransport;
  pipeline: IngestPipeline;
  status?: ConnectionStatusSink;
}

export class IngestModule implements Module {
  readonly name = 'ingest';
  private detach: (() => void)[] = [];

  constructor(private readonly deps: IngestModuleDeps) {}

  async start(): Promise<void> {
    const { transport, pipeline, status } = this.deps;
    // The handler calls straight into the pipeline: no queue, no await, nothing allocated here per message.
    this.detach.push(
      transport.onMessage((deviceId, kind, payload, viaLastWill) =>
        pipeline.handle(deviceId, kind, payload, undefined, viaLastWill),
      ),
    );
    if (status) {
      this.detach.push(
        transport.onConnection((deviceId, connected, info) => {
          if (connected) status.connected(deviceId);
          else status.disconnected(deviceId, info ?? { clean: false, statusWill: false });
        }),
      );
    }
  }

  async stop(): Promise<void> {
    for (const d of this.detach) d();
    this.detach = [];
  }
}
