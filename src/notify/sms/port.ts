// The SMS transport port. Callers (the notification workers) only ever see this interface; adapters: Twilio
// (twilio.ts), the embedded outbox (outbox.ts), and later a domestic template-based provider (Aliyun / Tencent SMS
// style) that reads `template` and ignores `body`, while Twilio reads `body` and ignores `template`.

/** A registered-template reference, for providers that only send pre-approved templates (mainland carriers). */
export interface SmsTemplateRef {
  /** The provider-side template code, e.g. 'SMS_123456789'. */
  readonly code: string;
  /** Template variables, by name. */
  readonly params: Readonly<Record<string, string>>;
  /** The registered signature (签名), when the provider needs one per message. */
  readonly signName?: string;
}

export interface SmsMessage {
  /** Recipient in E.164, e.g. '+8613800138000'. */
  readonly to: string;
  /** The rendered text. Always set (the outbox and the audit trail show it), even for template-based providers. */
  readonly body: string;
  /** Our notification record id (persisted before sending); adapters may use it for correlation. */
  readonly notificationId: string;
  /** Drop the message at the provider if it cannot be handed on within this many seconds. */
  readonly validitySeconds?: number;
  /** Where the provider should POST delivery status updates (our public URL). */
  readonly statusCallbackUrl?: string;
  /** For template-based providers; free-text providers (Twilio) ignore it. */
  readonly template?: SmsTemplateRef;
}

export type SmsAcceptedStatus = 'queued' | 'sent' | 'accepted';

export interface SmsSendOk {
  readonly ok: true;
  /** The provider's message id (Twilio: 'SM…' / 'MM…'; outbox: 'OB…'). */
  readonly providerId: string;
  readonly status: SmsAcceptedStatus;
}

export interface SmsSendFailure {
  readonly ok: false;
  /**
   * true: do not retry this message to this number (invalid number, unsubscribed, blocked, unroutable, bad
   * credentials, rejected request). false: retry with backoff (429, 5xx, timeouts, network errors).
   */
  readonly permanent: boolean;
  /** The provider's error code as a string ('21211', '20003', '20429' …), or 'TIMEOUT', 'NETWORK', 'HTTP_<n>'. */
  readonly code: string;
  readonly message: string;
  /** Suggested wait before retrying (transient failures only). */
  readonly retryAfterMs?: number;
  /**
   * true when the request may have reached the provider and created a message anyway (timeout, connection reset
   * after the request was written). Before sending again, check with `findRecent` (when the transport has it).
   */
  readonly maybeSent?: boolean;
}

export type SendResult = SmsSendOk | SmsSendFailure;

export interface SmsLookupResult {
  /** Provider status, e.g. 'queued', 'sent', 'delivered', 'undelivered', 'failed'. */
  readonly status: string;
  readonly errorCode?: string | null;
}

export interface SmsRecentQuery {
  readonly to: string;
  readonly body: string;
  /** Only messages created at or after this time. */
  readonly since: Date;
}

export interface SmsTransport {
  readonly name: 'twilio' | 'outbox' | (string & {});
  /** false when nothing leaves the machine (the outbox): nobody's phone rings. */
  readonly delivers: boolean;
  send(msg: SmsMessage): Promise<SendResult>;
  /** The provider's view of a message sent earlier; undefined when the provider does not know the id. */
  lookup(providerId: string): Promise<SmsLookupResult | undefined>;
  /**
   * After an ambiguous failure (`maybeSent`), find a message to `to` with this exact body created since `since`,
   * so a retry does not send it twice. Optional: transports that cannot list messages leave it out.
   */
  findRecent?(query: SmsRecentQuery): Promise<({ providerId: string } & SmsLookupResult) | undefined>;
  /** Release sockets/timers. */
  close?(): Promise<void>;
}
