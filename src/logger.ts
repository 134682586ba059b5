/** pino, structured. Personal data is masked at the source (maskName); phone numbers only at debug level. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, pretty = false): Logger {
  return pino({
    level,
    base: { service: 'gridwatch' },
    redact: {
      paths: [
        'password',
        '*.password',
        'secret',
        '*.secret',
        'token',
        '*.token',
        'req.headers.authorization',
        'req.headers.cookie',
      ],
      censor: '[redacted]',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
}

/** 张秀兰 → 张*兰, 王五 → 王*, Li Wei → L*i. Used wherever a name reaches a log line or an SMS. */
export function maskName(name: string): string {
  const chars = [...name.trim()];
  if (chars.length <= 1) return '*';
  if (chars.length === 2) return `${chars[0]}*`;
  return `${chars[0]}${'*'.repeat(chars.length - 2)}${chars[chars.length - 1]}`;
}

/** +8613812345678 → +86138****5678 */
export function maskPhone(phone: string): string {
  return phone.length > 8 ? `${phone.slice(0, phone.length - 8)}****${phone.slice(-4)}` : '****';
}
