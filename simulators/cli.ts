/**
 * Runs a simulated fleet against a broker:
 *
 *   npm run simulate -- --url mqtt://127.0.0.1:1883 --secrets data/demo-secrets.json --speed 60
 *
 * The secrets file is a JSON array of {deviceId, model, secret, householdId?, buildingId?, unitId?, areaId?}, as
 * written when the demo community is provisioned. Ctrl-C stops cleanly (every device says `offline`).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { getModel, modelIds } from '../devices/index.ts';
import { isValidDeviceId } from '../src/contracts/topics.ts';
import { createLogger } from '../src/logger.ts';
import { canSimulate } from './devices.ts';
import { type FleetDevice, SimulatedFleet } from './fleet.ts';

const USAGE = `usage: npm run simulate -- [options]
  --url <mqtt://host:port>   broker (default mqtt://127.0.0.1:1883, or MQTT_URL)
  --secrets <file>           JSON array of {deviceId, model, secret, householdId?, buildingId?, unitId?, areaId?}
                             (default data/demo-secrets.json)
  --base <topic>             base topic (default gridwatch)
  --speed <n>                time acceleration, simulated seconds per real second (default 60)
  --interval <s>             telemetry interval in simulated seconds (default 60)
  --start <ISO time>         simulated start time (default now)
  --only <n>                 simulate only the first n devices
  --sos                      let residents occasionally press SOS (off by default)
  --fall                     let residents occasionally fall (off by default)
  --simulated-timestamps     write simulated instead of wall-clock time into payloads
  --log-level <level>        info (default), debug, warn…
  --help`;

class UsageError extends Error {}

function positive(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got ${v}`);
  return n;
}

/** Checks one secrets entry; pushes the device and returns nothing, or returns what is wrong with it. */
function checkDevice(d: unknown, devices: FleetDevice[]): string | undefined {
  if (typeof d !== 'object' || d === null) return 'not an object';
  const e = d as Record<string, unknown>;
  if (typeof e.deviceId !== 'string' || !isValidDeviceId(e.deviceId)) {
    return `deviceId must be letters, digits, - or _ (got ${JSON.stringify(e.deviceId)})`;
  }
  if (typeof e.secret !== 'string' || e.secret.length === 0) return 'secret missing';
  const model = typeof e.model === 'string' ? getModel(e.model) : undefined;
  if (!model) return `unknown model ${JSON.stringify(e.model)} (known: ${modelIds().join(', ')})`;
  if (!canSimulate(model)) return `model ${model.id} has no simulator`;
  const device: FleetDevice = { deviceId: e.deviceId, model: model.id, secret: e.secret };
  for (const k of ['householdId', 'buildingId', 'unitId', 'areaId'] as const) {
    const v = e[k];
    if (v === undefined) continue;
    if (typeof v !== 'string') return `${k} must be a string`;
    device[k] = v;
  }
  devices.push(device);
  return undefined;
}

/** Reads and checks the secrets file, naming every bad entry rather than failing on the first. */
export function loadDevices(file: string): FleetDevice[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read secrets file ${file}: ${(err as Error).message}`);
  }
  // `npm start` writes {deviceSecrets, staffPasswords}; `npm run import` and hand-written files may be a plain array
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'deviceSecrets' in raw) {
    raw = (raw as { deviceSecrets: unknown }).deviceSecrets;
  }
  if (!Array.isArray(raw))
    throw new UsageError(`${file} must hold a JSON array of devices, or {"deviceSecrets": [...]}`);
  const problems: string[] = [];
  const devices: FleetDevice[] = [];
  for (const [i, d] of (raw as unknown[]).entries()) {
    const problem = checkDevice(d, devices);
    if (problem) problems.push(`${file}[${i}]: ${problem}`);
  }
  if (problems.length > 0) throw new UsageError(`bad secrets file:\n  ${problems.join('\n  ')}`);
  return devices;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      secrets: { type: 'string' },
      base: { type: 'string' },
      speed: { type: 'string' },
      interval: { type: 'string' },
      start: { type: 'string' },
      only: { type: 'string' },
      sos: { type: 'boolean' },
      fall: { type: 'boolean' },
      'simulated-timestamps': { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const log = createLogger(values['log-level'] ?? 'info', Boolean(process.stdout.isTTY));
  const url = values.url ?? process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
  if (!/^(mqtt|mqtts|tcp|ws|wss):\/\//.test(url)) throw new UsageError(`--url must be mqtt://host:port, got ${url}`);
  let devices = loadDevices(values.secrets ?? 'data/demo-secrets.json');
  if (values.only !== undefined) devices = devices.slice(0, positive('only', values.only, devices.length));
  let startTime: number | undefined;
  if (values.start !== undefined) {
    startTime = Date.parse(values.start);
    if (Number.isNaN(startTime)) throw new UsageError(`--start must be an ISO time, got ${values.start}`);
  }
  const fleet = new SimulatedFleet({
    url,
    baseTopic: values.base ?? 'gridwatch',
    devices,
    speed: positive('speed', values.speed, 60),
    intervalS: positive('interval', values.interval, 60),
    ...(startTime !== undefined ? { startTime } : {}),
    log,
    events: { sos: Boolean(values.sos), fall: Boolean(values.fall) },
    timestamps: values['simulated-timestamps'] ? 'simulated' : 'wall',
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the simulated fleet');
    clearInterval(report);
    await fleet.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  const report = setInterval(() => {
    const { byDevice: _, ...s } = fleet.stats();
    log.info({ ...s, simTime: new Date(s.simTime).toISOString() }, 'fleet stats');
  }, 30_000);
  await fleet.start();
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(`${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
