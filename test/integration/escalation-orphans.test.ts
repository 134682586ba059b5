/**
 * An alert committed by a process that died before it could start the alert's escalation (the window between the
 * alert's transaction and `opened`, or an event replayed from the ingest journal after such a crash) is found by
 * the escalation auditor and escalated: nobody was told, nothing was frozen, so it is started then, once.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertService } from '../../src/alerts/service.ts';
import { systemClock } from '../../src/clock/clock.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the API; the test asserts on them
type Json = any;

let node: TestNode;
let token: string;

beforeAll(async () => {
  node = await startNode();
  token = await node.login('admin', ADMIN_PASSWORD);
}, 120_000);

afterAll(async () => node?.stop());

describe('the escalation auditor adopts alerts whose escalation never started', () => {
  it('escalates an open SOS nobody was told about, once', async () => {
    const h = (await node.api('GET', '/api/v1/households?limit=1', undefined, token)).body.items[0] as Json;
    const household = (await node.api('GET', `/api/v1/households/${h.id}`, undefined, token)).body as Json;
    // as the dead process left it: the alert row, with no `opened` hook having run
    const bare = new AlertService(node.system.database, { clock: systemClock, logger: pino({ level: 'silent' }) });
    const ts = Date.now() - 60_000;
    const { alert } = await bare.raise({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      subject: {
        householdId: h.id,
        buildingId: household.buildingId,
        gridId: household.gridId,
        communityId: household.communityId,
      },
      keyOn: 'household',
      drill: false,
      ts,
      evidence: [{ ts, kind: 'event', deviceId: 'orphan-btn', eventType: 'sos', eventId: 'o-1' }],
      summary: 'SOS: emergency call button pressed',
    });
    const escalator = node.system.escalator!;
    expect(await escalator.frozen(alert.id)).toBeUndefined();

    expect(await escalator.audit()).toBeGreaterThanOrEqual(1);
    expect(await escalator.frozen(alert.id)).toBeDefined();
    const sms = async () =>
      ((await node.api('GET', `/api/v1/notifications?alertId=${alert.id}`, undefined, token)).body.items as Json[]) ??
      [];
    await waitFor('the first step’s SMS', async () => (await sms()).length > 0);
    // a second audit changes nothing: the escalation is frozen now
    await escalator.audit();
    await new Promise((r) => setTimeout(r, 500));
    const sent = await sms();
    const perRecipient = new Set(sent.map((n) => `${n.step}|${n.recipient}`));
    expect(perRecipient.size).toBe(sent.length);
  }, 60_000);
});
