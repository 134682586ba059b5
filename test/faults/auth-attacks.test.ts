/**
 * Fault 7 (issue 8): authentication attacks on the device side, against the real embedded broker with real MQTT
 * clients on loopback. An attacker uses a second loopback source address (127.0.0.2).
 *
 * - Wrong secrets are throttled per source address. Someone who knows an SOS button's id guesses secrets from one
 *   address. After `authFailuresPerMinute` failures that address is refused, even with the right secret. The real
 *   button, on its own address, still connects and its SOS still gets through.
 * - A device publishing as another is disconnected, and nothing reaches ingest.
 *
 * The other attacks the issue lists are proven where the code that stops them is tested:
 * - a console session used from another origin: test/integration/console-auth.test.ts;
 * - forged Twilio webhooks, 403: test/integration/twilio-webhooks.test.ts;
 * - a grid worker reaching another grid's data through the API: test/browser/console.test.ts and
 *   test/integration/console-ws.test.ts.
 */
import net from 'node:net';
import mqtt, { type IClientOptions, MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDevice, recordBus, startTestSystem, type TestSystem, waitFor } from '../../src/ingest/test-helpers.ts';

const LIMIT = 30;
let sys: TestSystem;
let rec: ReturnType<typeof recordBus>;
let buttonSecret: string;
let otherSecret: string;

/** Connects from a chosen loopback source address; resolves with the CONNACK outcome. */
function connectFrom(
  localAddress: string,
  opts: IClientOptions,
): Promise<{ ok: boolean; code?: number; client: MqttClient }> {
  const client = new MqttClient(() => net.connect({ host: '127.0.0.1', port: sys.mqtt.port, localAddress }), {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
  });
  return new Promise((resolve) => {
    client.once('connect', () => resolve({ ok: true, client }));
    client.once('error', (err) => {
      client.end(true);
      resolve({ ok: false, code: (err as { code?: number }).code, client });
    });
  });
}

beforeAll(async () => {
  const button = await makeDevice('sos-btn-1');
  const other = await makeDevice('sos-btn-2');
  buttonSecret = button.secret;
  otherSecret = other.secret;
  sys = await startTestSystem([button.record, other.record], { mqtt: { authFailuresPerMinute: LIMIT } });
  rec = recordBus(sys.bus);
});

afterAll(async () => sys?.stop());

describe('fault 7: authentication attacks on devices', () => {
  it('guessing a button’s secret locks out the guesser’s address, never the button', async () => {
    const guesses: (number | undefined)[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const r = await connectFrom('127.0.0.2', {
        clientId: 'sos-btn-1',
        username: 'sos-btn-1',
        password: `guess-${i}`,
      });
      expect(r.ok).toBe(false);
      guesses.push(r.code);
    }
    expect(new Set(guesses)).toEqual(new Set([4])); // bad user name or password, each checked
    // the guesser's address is now refused, even with the right secret: 3 = server unavailable, try later
    const locked = await connectFrom('127.0.0.2', {
      clientId: 'sos-btn-1',
      username: 'sos-btn-1',
      password: buttonSecret,
    });
    expect(locked).toMatchObject({ ok: false, code: 3 });

    // the real button, from its own address, connects and its SOS gets through
    const real = await connectFrom('127.0.0.1', {
      clientId: 'sos-btn-1',
      username: 'sos-btn-1',
      password: buttonSecret,
    });
    expect(real.ok).toBe(true);
    await real.client.publishAsync('gridwatch/sos-btn-1/event', JSON.stringify({ type: 'sos', id: 'real-1' }), {
      qos: 1,
    });
    await waitFor(() => rec.event.some((e) => e.deviceId === 'sos-btn-1' && e.event.id === 'real-1'));
    await real.client.endAsync();
    const refused = await sys.metrics.registry.getSingleMetric('gridwatch_mqtt_auth_failures_total')!.get();
    const byReason = Object.fromEntries(refused.values.map((v) => [v.labels.reason, v.value]));
    console.log(
      `fault 7: ${LIMIT} guesses refused, then the guesser locked out; auth failures ${JSON.stringify(byReason)}`,
    );
    expect(byReason.throttled).toBeGreaterThanOrEqual(1);
    expect(byReason.bad_secret).toBe(LIMIT);
  });

  it('a device publishing as another is disconnected and nothing reaches ingest', async () => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${sys.mqtt.port}`, {
      clientId: 'sos-btn-2',
      username: 'sos-btn-2',
      password: otherSecret,
      reconnectPeriod: 0,
    });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('gridwatch/sos-btn-1/event', JSON.stringify({ type: 'sos', id: 'forged-1' }), { qos: 1 });
    await closed;
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.event.some((e) => e.event.id === 'forged-1')).toBe(false);
    c.end(true);
  });
});
