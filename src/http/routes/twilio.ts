/**
 * Twilio webhooks: delivery status and SMS replies. Both check `X-Twilio-Signature` against the configured PUBLIC
 * URL (what Twilio signed, not what this server sees behind a proxy) and refuse anything else with 403. Twilio
 * retries webhooks: a repeated `I-Twilio-Idempotency-Token` is answered without doing anything again.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { StoredAlert } from '../../alerts/service.ts';
import type { EventDedupe } from '../../ingest/pipeline.ts';
import type { NotificationStatus, NotificationStore } from '../../notify/store.ts';
import { verifyTwilioSignature } from '../../notify/sms/twilio.ts';
import { alertCode, render } from '../../notify/templates.ts';
import type { Registry, Staff } from '../../registry/port.ts';
import type { HttpDeps } from '../app.ts';

export interface TwilioWebhookDeps {
  authToken: string;
  /** e.g. https://gridwatch.example.org — the webhook paths are appended */
  publicUrl: string;
  store: Pick<NotificationStore, 'statusFromProvider'>;
  /** remembers webhook idempotency tokens (shared by all nodes) */
  tokens: EventDedupe;
  registry: Pick<Registry, 'listStaff' | 'scopeOf'>;
  lang?: 'zh' | 'en';
  /** a failed / undelivered critical notification escalates at once */
  deliveryFailed?: (notificationId: string) => Promise<unknown>;
}

/** Twilio's message statuses → ours. */
const STATUS: Record<string, NotificationStatus> = {
  accepted: 'queued',
  scheduled: 'queued',
  queued: 'queued',
  sending: 'sent',
  sent: 'sent',
  delivered: 'delivered',
  read: 'delivered',
  undelivered: 'undelivered',
  failed: 'failed',
};

const ACK = /^(1|ok|收到|确认)\s*([A-Za-z0-9]{4})?$/i;
const RESOLVE = /^(2|已处理|处理完毕|done)\s*([A-Za-z0-9]{4})?$/i;

function twiml(message?: string): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<?xml version="1.0" encoding="UTF-8"?><Response>${message ? `<Message>${esc(message)}</Message>` : ''}</Response>`;
}

export const twilioWebhookRoutes: FastifyPluginAsync<{ deps: HttpDeps; twilio: TwilioWebhookDeps }> = async (
  app,
  { deps, twilio },
) => {
  // Twilio posts application/x-www-form-urlencoded
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 65_536 },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );

  const verified = async (req: FastifyRequest, reply: FastifyReply): Promise<Record<string, string> | undefined> => {
    const params = (req.body ?? {}) as Record<string, string>;
    const url = `${twilio.publicUrl.replace(/\/$/, '')}${req.url}`;
    if (!verifyTwilioSignature(twilio.authToken, url, params, req.headers['x-twilio-signature'])) {
      req.log.warn({ event: 'twilio_signature_rejected', path: req.url }, 'webhook with a bad or missing signature');
      await reply.code(403).send({ error: 'forbidden', message: 'bad or missing X-Twilio-Signature' });
      return undefined;
    }
    const token = req.headers['i-twilio-idempotency-token'];
    if (typeof token === 'string' && token && (await twilio.tokens.seen('twilio-webhook', token, Date.now()))) {
      await reply.code(200).type('text/xml').send(twiml());
      return undefined;
    }
    return params;
  };

  app.post('/webhooks/twilio/status', { schema: { hide: true } }, async (req, reply) => {
    const p = await verified(req, reply);
    if (!p) return reply;
    const status = STATUS[(p.MessageStatus ?? '').toLowerCase()];
    if (p.MessageSid && status) {
      const n = await twilio.store.statusFromProvider(p.MessageSid, status, p.ErrorCode || undefined);
      if (n && (n.status === 'failed' || n.status === 'undelivered')) {
        // the idempotency token is recorded already: a 500 here would make Twilio's retry be ignored, so log instead
        await twilio
          .deliveryFailed?.(n.id)
          .catch((err: unknown) => req.log.error({ err }, 'escalating an undelivered SMS failed'));
      }
    }
    return reply.code(200).type('text/xml').send(twiml());
  });

  app.post('/webhooks/twilio/inbound', { schema: { hide: true } }, async (req, reply) => {
    const p = await verified(req, reply);
    if (!p) return reply;
    const lang = twilio.lang ?? 'zh';
    const body = (p.Body ?? '').trim();
    const staff = await staffByPhone(twilio.registry, p.From ?? '');
    const ack = ACK.exec(body);
    const resolve = ack ? undefined : RESOLVE.exec(body);
    if (!staff || (!ack && !resolve)) {
      req.log.info({ event: 'sms_reply_not_understood', known: Boolean(staff) }, 'SMS reply not understood');
      return reply.type('text/xml').send(twiml(render('reply_unknown', {}, lang)));
    }
    const code = (ack ?? resolve)![2]?.toUpperCase();
    // acknowledge an open alert; resolve one that is open or already acknowledged
    const alert = await pickAlert(deps, staff, twilio.registry, code, ack ? ['open'] : ['open', 'acknowledged']);
    if (!alert) return reply.type('text/xml').send(twiml(render('reply_unknown', {}, lang)));
    if (ack) {
      const a = await deps.alerts.acknowledge(alert.id, staff.id, 'sms');
      req.log.info(
        { event: 'alert_acknowledged', alertId: a.id, by: staff.id, via: 'sms' },
        'alert acknowledged by SMS',
      );
      return reply
        .type('text/xml')
        .send(twiml(render('ack_confirm', { alertId: a.id, alertType: a.type, drill: a.drill }, lang)));
    }
    const a = await deps.alerts.resolve(alert.id, staff.id, 'other', 'sms', 'resolved by SMS reply');
    req.log.info({ event: 'alert_resolved', alertId: a.id, by: staff.id, via: 'sms' }, 'alert resolved by SMS');
    return reply
      .type('text/xml')
      .send(twiml(render('resolve_confirm', { alertId: a.id, alertType: a.type, drill: a.drill }, lang)));
  });
};

async function staffByPhone(registry: Pick<Registry, 'listStaff'>, phone: string): Promise<Staff | undefined> {
  let cursor: string | undefined;
  do {
    const page = await registry.listStaff({ limit: 1000, cursor });
    const hit = page.items.find((s) => s.phone === phone && !s.disabled);
    if (hit) return hit;
    cursor = page.nextCursor;
  } while (cursor);
  return undefined;
}

/** The sender's alert with this code, or — without a code — their only one, among alerts in these states. */
async function pickAlert(
  deps: HttpDeps,
  staff: Staff,
  registry: Pick<Registry, 'scopeOf'>,
  code: string | undefined,
  statuses: readonly ('open' | 'acknowledged')[],
): Promise<StoredAlert | undefined> {
  const open: StoredAlert[] = [];
  for (const status of statuses) {
    open.push(...(await deps.alerts.list({ status }, registry.scopeOf(staff), { limit: 1000 })).items);
  }
  if (code) return open.find((a) => alertCode(a.id) === code);
  return open.length === 1 ? open[0] : undefined;
}
