/**
 * Named SMS templates (issue 4, "SMS"). Chinese by default, English available. Every message:
 * - addresses the household by building / unit / room (3号楼2单元501) and a masked name (张*兰), never more health
 *   detail than the alert type;
 * - carries a short alert code derived from the alert id (A7K3) and the reply hint (回复1确认 A7K3);
 * - contains no URL (mainland carriers block them): variables are defused, and a rendered text that still looks
 *   like a URL or a domain is a template bug and throws;
 * - fits in two concatenated UCS-2 segments (134 UTF-16 units), variables being clipped to known maxima;
 * - starts with 【演练】 (`[DRILL] ` in English) for drill alerts.
 */
import { maskName } from '../logger.ts';

export type Lang = 'zh' | 'en';

/** Two concatenated UCS-2 segments. */
export const MAX_SMS_UNITS = 134;

/** Alert types raised by the rules, each with its own template. */
export const ALERT_TEMPLATE_NAMES = [
  'sos',
  'fall',
  'smoke',
  'gas_leak',
  'charging_area_fire',
  'night_exit',
  'door_forced',
  'door_held_open',
  'door_denied_repeated',
  'ebike_charging',
  'ebike_charging_repeated',
  'ebike_overtemp',
  'device_tamper',
  'device_offline',
  'low_battery',
  'monitoring_lost',
  'devices_offline_mass',
  'inactivity',
  'not_seen',
  'water_low',
  'water_continuous',
  'gas_left_on',
  'visit_overdue',
] as const;
export type AlertTemplateName = (typeof ALERT_TEMPLATE_NAMES)[number];

/** Templates that are not one alert type. */
export const SPECIAL_TEMPLATE_NAMES = [
  'generic',
  'escalation',
  'bundle',
  'ack_confirm',
  'resolve_confirm',
  'reply_unknown',
  'digest',
  'digest_line',
] as const;
export type SpecialTemplateName = (typeof SPECIAL_TEMPLATE_NAMES)[number];

export const TEMPLATE_NAMES = [...ALERT_TEMPLATE_NAMES, ...SPECIAL_TEMPLATE_NAMES] as const;
export type TemplateName = AlertTemplateName | SpecialTemplateName;

/** One alert inside a bundle or a digest. */
export interface TemplateItem {
  alertId: string;
  alertType: string;
  building?: string;
  unit?: string;
  room?: string;
  place?: string;
  /** epoch ms (shown as HH:MM, Asia/Shanghai) */
  ts?: number;
  /** how many times the alert repeated (digest) */
  count?: number;
}

export interface TemplateVars {
  /** the alert's id; its short code goes into the text */
  alertId?: string;
  /** the alert type, for escalation / ack / generic templates (alert templates know their own) */
  alertType?: string;
  drill?: boolean;
  /** '3' or '3号楼' */
  building?: string;
  /** '2' or '2单元' */
  unit?: string;
  /** '501' or '501室' */
  room?: string;
  /** where, when the alert is not about one household: '2号楼车棚充电区' */
  place?: string;
  /** the resident's full name; masked before it reaches the text */
  name?: string;
  /** short device label: '烟感', 'smoke detector' */
  device?: string;
  /** a duration in minutes (no activity for, held open for, unacknowledged for) */
  minutes?: number;
  /** epoch ms, shown as HH:MM (Asia/Shanghai) */
  ts?: number;
  /** repeats (digest line), devices (devices_offline_mass) */
  count?: number;
  /** bundle / digest contents */
  items?: TemplateItem[];
}

/** Variables are clipped to these lengths (code points) so that every template provably fits. */
export const VAR_LIMITS = {
  building: 6,
  unit: 4,
  room: 6,
  place: 14,
  name: 6,
  device: 8,
  alertType: 24,
} as const;

const SHANGHAI_OFFSET_MS = 8 * 3_600_000;

// ---------------------------------------------------------------------------------------------------------------
// Alert codes

/** Unambiguous characters only: no 0/O, 1/I/L. The first character is always a letter. */
export const ALERT_CODE_LETTERS = 'ABCDEFGHJKMNPQRSTUVWXYZ';
export const ALERT_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final avalanche so that ids differing in the last character spread over the whole code
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/** Short code of an alert for SMS replies: 4 characters, deterministic from the id (e.g. `A7K3`). */
export function alertCode(alertId: string): string {
  let h = fnv1a(alertId);
  let code = ALERT_CODE_LETTERS[h % ALERT_CODE_LETTERS.length]!;
  h = Math.floor(h / ALERT_CODE_LETTERS.length);
  for (let i = 0; i < 3; i++) {
    code += ALERT_CODE_ALPHABET[h % ALERT_CODE_ALPHABET.length]!;
    h = Math.floor(h / ALERT_CODE_ALPHABET.length);
  }
  return code;
}

/** True when `text` (trimmed, any case) has the shape of an alert code. */
export function isAlertCode(text: string): boolean {
  return /^[ABCDEFGHJKMNPQRSTUVWXYZ][23456789ABCDEFGHJKMNPQRSTUVWXYZ]{3}$/.test(text.trim().toUpperCase());
}

// ---------------------------------------------------------------------------------------------------------------
// Segments

/** GSM 03.38 basic character set (the escape character excluded). */
const GSM_BASIC = new Set([
  ...'@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿',
  ...'abcdefghijklmnopqrstuvwxyzäöñüà',
]);
/** GSM 03.38 extension table: each costs two septets (escape + character). */
const GSM_EXTENSION = new Set([...'\f^{}\\[~]|€']);

export interface SegmentInfo {
  encoding: 'GSM-7' | 'UCS-2';
  /** septets (GSM-7, extension characters counting 2) or UTF-16 code units (UCS-2) */
  units: number;
  segments: number;
  /** capacity of one segment in this message: 160/153 (GSM-7) or 70/67 (UCS-2) */
  perSegment: number;
}

/**
 * How many SMS segments `text` takes. GSM-7 when every character is in the GSM 03.38 tables (160 septets single,
 * 153 per part concatenated, extension characters counting 2), else UCS-2 (70 single, 67 per part). A part never
 * splits an escape sequence or a surrogate pair, as real encoders do.
 */
export function smsSegments(text: string): SegmentInfo {
  const chars = [...text];
  const gsm = chars.every((c) => GSM_BASIC.has(c) || GSM_EXTENSION.has(c));
  const costs = gsm ? chars.map((c) => (GSM_EXTENSION.has(c) ? 2 : 1)) : chars.map((c) => c.length);
  const units = costs.reduce((a, b) => a + b, 0);
  const single = gsm ? 160 : 70;
  const part = gsm ? 153 : 67;
  if (units === 0) return { encoding: gsm ? 'GSM-7' : 'UCS-2', units, segments: 0, perSegment: single };
  if (units <= single) return { encoding: gsm ? 'GSM-7' : 'UCS-2', units, segments: 1, perSegment: single };
  let segments = 1;
  let used = 0;
  for (const cost of costs) {
    if (used + cost > part) {
      segments++;
      used = 0;
    }
    used += cost;
  }
  return { encoding: gsm ? 'GSM-7' : 'UCS-2', units, segments, perSegment: part };
}

// ---------------------------------------------------------------------------------------------------------------
// URL guard

const URL_PATTERN = /https?:|www\.|:\/\/|\b[a-z0-9-]+\.(?:[a-z]{2,})\b/i;

/** Throws when `text` contains anything a carrier would take for a URL: a template that produces one is a bug. */
export function assertNoUrl(text: string, where = 'sms'): void {
  const m = URL_PATTERN.exec(text);
  if (m) throw new Error(`${where}: SMS text contains a URL or domain (${JSON.stringify(m[0])}); URLs are forbidden`);
}

/** Clips a variable, removes control characters and defuses anything URL-like that came from the data. */
function clean(value: string | undefined, limit: number): string {
  if (value === undefined) return '';
  let v = [...value]
    .map((c) => (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f ? ' ' : c))
    .join('')
    .replace(/https?:\/*|www\./gi, '')
    .replace(/:\/\//g, '')
    .replace(/\.(?=[a-z])/gi, '·')
    .replace(/\s+/g, ' ')
    .trim();
  const cps = [...v];
  if (cps.length > limit) v = cps.slice(0, limit).join('');
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// Texts per alert type

interface TypeText {
  zh: { title: string; action: string };
  en: { title: string; action: string };
}

const TYPE_TEXT: Record<AlertTemplateName, TypeText> = {
  sos: { zh: { title: '紧急呼叫', action: '请立即上门查看' }, en: { title: 'SOS call', action: 'Go now' } },
  fall: {
    zh: { title: '跌倒报警', action: '请立即上门查看' },
    en: { title: 'Fall alarm', action: 'Check on them now' },
  },
  smoke: {
    zh: { title: '烟感报警', action: '请立即核实，必要时拨119' },
    en: { title: 'Smoke alarm', action: 'Check now, call 119 if needed' },
  },
  gas_leak: {
    zh: { title: '燃气泄漏', action: '勿开关电器，请立即核实' },
    en: { title: 'Gas leak', action: 'No switches or flames, check now' },
  },
  charging_area_fire: {
    zh: { title: '充电区火情', action: '请立即处置并拨119' },
    en: { title: 'Charging area fire', action: 'Act now, call 119' },
  },
  night_exit: {
    zh: { title: '夜间外出', action: '请联系家属或上门查看' },
    en: { title: 'Night exit', action: 'Call family or check' },
  },
  door_forced: {
    zh: { title: '门被强行打开', action: '请尽快核实' },
    en: { title: 'Door forced', action: 'Check soon' },
  },
  door_held_open: {
    zh: { title: '门长时间未关', action: '请安排关门' },
    en: { title: 'Door held open', action: 'Please close it' },
  },
  door_denied_repeated: {
    zh: { title: '多次刷卡被拒', action: '请核实来人' },
    en: { title: 'Access denied repeatedly', action: 'Check who it is' },
  },
  ebike_charging: {
    zh: { title: '电动车违规充电', action: '请劝导到充电区充电' },
    en: { title: 'E-bike charging indoors', action: 'Ask to use charging area' },
  },
  ebike_charging_repeated: {
    zh: { title: '电动车反复违规充电', action: '请上门劝导' },
    en: { title: 'E-bike indoor charging again', action: 'Visit and advise' },
  },
  ebike_overtemp: {
    zh: { title: '电动车充电过热', action: '请立即断电核查' },
    en: { title: 'E-bike overheating', action: 'Cut power, check now' },
  },
  device_tamper: {
    zh: { title: '设备被拆动', action: '请核查设备' },
    en: { title: 'Device tampered', action: 'Check the device' },
  },
  device_offline: {
    zh: { title: '设备离线', action: '请安排检修' },
    en: { title: 'Device offline', action: 'Please repair' },
  },
  low_battery: {
    zh: { title: '设备电量低', action: '请更换电池' },
    en: { title: 'Low battery', action: 'Replace the battery' },
  },
  monitoring_lost: {
    zh: { title: '监护中断', action: '请尽快恢复设备' },
    en: { title: 'Monitoring lost', action: 'Restore soon' },
  },
  devices_offline_mass: {
    zh: { title: '大量设备离线', action: '请检查网络和供电' },
    en: { title: 'Many devices offline', action: 'Check network and power' },
  },
  inactivity: {
    zh: { title: '长时间无活动', action: '请电话或上门确认' },
    en: { title: 'No activity', action: 'Call or visit' },
  },
  not_seen: {
    zh: { title: '多日未见出入', action: '请电话或上门确认' },
    en: { title: 'Not seen', action: 'Call or visit' },
  },
  water_low: {
    zh: { title: '用水异常偏少', action: '请电话问候' },
    en: { title: 'Low water use', action: 'Please call them' },
  },
  water_continuous: {
    zh: { title: '持续用水', action: '请核实是否漏水' },
    en: { title: 'Water running', action: 'Check for a leak' },
  },
  gas_left_on: {
    zh: { title: '燃气未关', action: '请提醒关闭燃气' },
    en: { title: 'Gas left on', action: 'Remind to turn it off' },
  },
  visit_overdue: {
    zh: { title: '走访逾期', action: '请尽快走访' },
    en: { title: 'Visit overdue', action: 'Please visit soon' },
  },
};

function isAlertTemplate(name: string): name is AlertTemplateName {
  return (ALERT_TEMPLATE_NAMES as readonly string[]).includes(name);
}

/** Short title of an alert type in a language; unknown types get a generic title with the (cleaned) type. */
export function alertTitle(alertType: string, lang: Lang = 'zh'): string {
  if (isAlertTemplate(alertType)) return TYPE_TEXT[alertType][lang].title;
  const t = clean(alertType, VAR_LIMITS.alertType).replace(/[^A-Za-z0-9_]/g, '');
  return lang === 'zh' ? `告警${t ? `(${t})` : ''}` : `Alert${t ? ` (${t})` : ''}`;
}

/** The template that renders an alert of this type (the generic fallback for a type without one). */
export function templateFor(alertType: string): TemplateName {
  return isAlertTemplate(alertType) ? alertType : 'generic';
}

// ---------------------------------------------------------------------------------------------------------------
// Variable formatting

/** 3 / 3号楼 / 3栋 → 3 */
function bare(value: string | undefined, suffixes: RegExp, limit: number): string {
  return clean(value, limit + 2)
    .replace(suffixes, '')
    .replace(/^(Bldg|Building|Unit|Rm|Room)\s*/i, '')
    .slice(0, limit);
}

/** Building / unit / room as 3号楼2单元501 (zh) or `Bldg 3 Unit 2 Rm 501` (en); empty when none given. */
export function formatAddress(
  a: { building?: string; unit?: string; room?: string; place?: string },
  lang: Lang = 'zh',
): string {
  const b = bare(a.building, /(号楼|栋|幢|座|号)$/, VAR_LIMITS.building);
  const u = bare(a.unit, /(单元|门)$/, VAR_LIMITS.unit);
  const r = bare(a.room, /(室|号)$/, VAR_LIMITS.room);
  if (!b && !u && !r) return clean(a.place, VAR_LIMITS.place);
  if (lang === 'zh') {
    const bz = b
      ? /[座栋幢]$/.test(clean(a.building, 20))
        ? `${b}${clean(a.building, 20).slice(-1)}`
        : `${b}号楼`
      : '';
    return `${bz}${u ? `${u}单元` : ''}${r}`;
  }
  return [b && `Bldg ${b}`, u && `Unit ${u}`, r && `Rm ${r}`].filter(Boolean).join(' ');
}

function hhmm(ts: number | undefined): string {
  if (ts === undefined || !Number.isFinite(ts)) return '';
  const d = new Date(ts + SHANGHAI_OFFSET_MS);
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
}

function duration(minutes: number | undefined, lang: Lang): string {
  if (minutes === undefined || !Number.isFinite(minutes) || minutes < 0) return '';
  const m = Math.round(minutes);
  if (m < 120) return lang === 'zh' ? `${m}分钟` : `${m} min`;
  if (m < 48 * 60) return lang === 'zh' ? `${Math.round(m / 60)}小时` : `${Math.round(m / 60)} h`;
  return lang === 'zh' ? `${Math.round(m / 1440)}天` : `${Math.round(m / 1440)} d`;
}

function count(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n) || n < 0) return '';
  return String(Math.min(Math.round(n), 99_999));
}

/** The normalised, safe string values a template is made of (also what a template-code provider would get). */
export interface TemplateParams {
  /** 【演练】 / `[DRILL] ` or empty */
  prefix: string;
  title: string;
  /** address or place */
  where: string;
  /** masked name, or empty */
  who: string;
  device: string;
  code: string;
  /** 回复1确认 A7K3 / `Reply 1 A7K3 to ack` (empty without an alert id) */
  reply: string;
  time: string;
  duration: string;
  count: string;
  action: string;
}

export function templateParams(name: string, vars: TemplateVars, lang: Lang = 'zh'): TemplateParams {
  const type = isAlertTemplate(name) ? name : (vars.alertType ?? '');
  const code = vars.alertId ? alertCode(vars.alertId) : '';
  const rawName = clean(vars.name, 40);
  return {
    prefix: vars.drill ? (lang === 'zh' ? '【演练】' : '[DRILL] ') : '',
    title: alertTitle(type, lang),
    where: formatAddress(vars, lang),
    who: rawName ? maskName([...rawName].slice(0, VAR_LIMITS.name).join('')) : '',
    device: clean(vars.device, VAR_LIMITS.device),
    code,
    reply: code ? (lang === 'zh' ? `回复1确认 ${code}` : `Reply 1 ${code} to ack`) : '',
    time: hhmm(vars.ts),
    duration: duration(vars.minutes, lang),
    count: count(vars.count),
    action: isAlertTemplate(type) ? TYPE_TEXT[type][lang].action : lang === 'zh' ? '请核实处理' : 'Please check',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Templates

type Render = (p: TemplateParams, vars: TemplateVars, lang: Lang) => string;

const join = (...parts: string[]) => parts.filter(Boolean).join(' ');

/** who + where (+ device): 3号楼2单元501 张*兰 烟感 */
const subject = (p: TemplateParams) => join(p.where, p.who, p.device);

function alertText(p: TemplateParams, lang: Lang): string {
  if (lang === 'zh') {
    const head = `${p.title}${p.duration ? `(${p.duration})` : ''}${p.time ? ` ${p.time}` : ''}`;
    const subj = subject(p);
    return `${p.prefix}${head}${subj ? `：${subj}` : ''}。${p.action}。${p.reply}`;
  }
  const head = `${p.title}${p.duration ? ` (${p.duration})` : ''}${p.time ? ` ${p.time}` : ''}`;
  const subj = subject(p);
  return `${p.prefix}${head}${subj ? `: ${subj}` : ''}. ${p.action}. ${p.reply}`.trim();
}

function itemCode(item: TemplateItem): string {
  return alertCode(item.alertId);
}

/**
 * Lists items greedily while the whole text stays within the limit; the rest become "等N条" / "+N more".
 * At least one item is always listed.
 */
function list(
  items: TemplateItem[],
  wrap: (listed: string, rest: number) => string,
  line: (item: TemplateItem) => string,
  sep: string,
): string {
  let listed = '';
  let best = wrap('', items.length);
  for (let i = 0; i < items.length; i++) {
    const next = listed ? `${listed}${sep}${line(items[i]!)}` : line(items[i]!);
    const text = wrap(next, items.length - i - 1);
    if (i > 0 && text.length > MAX_SMS_UNITS) break;
    listed = next;
    best = text;
  }
  return best;
}

function digestLine(item: TemplateItem, lang: Lang): string {
  const parts = [
    itemCode(item),
    hhmm(item.ts),
    alertTitle(item.alertType, lang),
    formatAddress(item, lang),
    item.count && item.count > 1 ? (lang === 'zh' ? `共${count(item.count)}次` : `x${count(item.count)}`) : '',
  ];
  return join(...parts);
}

const TEMPLATES: Record<SpecialTemplateName, Render> & Partial<Record<AlertTemplateName, Render>> = {
  generic: (p, _v, lang) => alertText(p, lang),

  escalation: (p, _v, lang) => {
    const subj = subject(p);
    const m = p.duration || (lang === 'zh' ? '多时' : 'long');
    return lang === 'zh'
      ? `${p.prefix}【升级】${p.title}已${m}无人确认${subj ? `：${subj}` : ''}。请立即处理。${p.reply}`
      : `${p.prefix}ESCALATED: ${p.title}, no ack for ${m}${subj ? `: ${subj}` : ''}. Act now. ${p.reply}`.trim();
  },

  ack_confirm: (p, _v, lang) => {
    const what = join(p.title, p.where);
    return lang === 'zh'
      ? `${p.prefix}已确认 ${p.code}（${what}），谢谢。处理完毕请回复2 ${p.code}`
      : `${p.prefix}Acknowledged ${p.code} (${what}). Thanks. Reply 2 ${p.code} when resolved`;
  },

  resolve_confirm: (p, _v, lang) => {
    const what = join(p.title, p.where);
    return lang === 'zh'
      ? `${p.prefix}已标记处理完毕 ${p.code}（${what}），谢谢。`
      : `${p.prefix}Marked resolved ${p.code} (${what}). Thanks.`;
  },

  reply_unknown: (p, _v, lang) =>
    lang === 'zh'
      ? `未能识别回复。确认请回复“1 告警码”${p.code ? `，如“1 ${p.code}”` : ''}；处理完毕回复“2 告警码”。也可在值班台处理。`
      : `Reply not understood. Send "1 CODE" to ack${p.code ? ` (like "1 ${p.code}")` : ''}, "2 CODE" when resolved, or use the console.`,

  bundle: (p, v, lang) => {
    const items = v.items ?? [];
    const line = (i: TemplateItem) => join(itemCode(i), alertTitle(i.alertType, lang), formatAddress(i, lang));
    return lang === 'zh'
      ? list(
          items,
          (l, rest) =>
            `${p.prefix}${items.length}条告警：${l}${rest ? `等${rest}条` : ''}。回复1+告警码确认，如1 ${itemCode(items[0] ?? { alertId: '', alertType: '' })}`,
          line,
          '；',
        )
      : list(
          items,
          (l, rest) => `${p.prefix}${items.length} alerts: ${l}${rest ? ` +${rest} more` : ''}. Reply 1 CODE to ack`,
          line,
          '; ',
        );
  },

  digest: (p, v, lang) => {
    const items = v.items ?? [];
    return lang === 'zh'
      ? list(
          items,
          (l, rest) => `${p.prefix}待处理${items.length}条(非紧急)：${l}${rest ? `等${rest}条` : ''}。详情见值班台`,
          (i) => digestLine(i, lang),
          '；',
        )
      : list(
          items,
          (l, rest) => `${p.prefix}${items.length} open (not urgent): ${l}${rest ? ` +${rest} more` : ''}. See console`,
          (i) => digestLine(i, lang),
          '; ',
        );
  },

  digest_line: (p, v, lang) =>
    digestLine(
      {
        alertId: v.alertId ?? '',
        alertType: v.alertType ?? '',
        building: v.building,
        unit: v.unit,
        room: v.room,
        place: v.place,
        ts: v.ts,
        count: v.count,
      },
      lang,
    ).replace(/^/, p.prefix),
};

function renderWith(name: string, vars: TemplateVars, lang: Lang): string {
  const p = templateParams(name, vars, lang);
  if (isAlertTemplate(name)) return TEMPLATES[name]?.(p, vars, lang) ?? alertText(p, lang);
  if ((SPECIAL_TEMPLATE_NAMES as readonly string[]).includes(name))
    return TEMPLATES[name as SpecialTemplateName](p, vars, lang);
  // an unknown template name is taken as an alert type without its own template
  return alertText(templateParams('generic', { ...vars, alertType: vars.alertType ?? name }, lang), lang);
}

/** Keeps the reply hint and code at the end when an over-long text must be cut (never happens within VAR_LIMITS). */
function clipToLimit(text: string, tail: string): string {
  if (text.length <= MAX_SMS_UNITS) return text;
  const keep = tail && text.endsWith(tail) ? tail : '';
  const head = [...text.slice(0, text.length - keep.length)];
  const room = MAX_SMS_UNITS - keep.length - 1;
  let cut = '';
  for (const c of head) {
    if (cut.length + c.length > room) break;
    cut += c;
  }
  return `${cut}…${keep}`;
}

/**
 * Renders a named template. `templateName` is one of TEMPLATE_NAMES; any other name is taken as an alert type
 * and rendered with the generic template. Throws if the result contains a URL (a template bug).
 */
export function render(templateName: string, vars: TemplateVars, lang: Lang = 'zh'): string {
  let text = renderWith(templateName, vars, lang);
  if (text.length > MAX_SMS_UNITS) {
    // drop optional detail first: time, then device, then duration
    const lighter = { ...vars, ts: undefined, device: undefined };
    text = renderWith(templateName, lighter, lang);
    if (text.length > MAX_SMS_UNITS) text = renderWith(templateName, { ...lighter, minutes: undefined }, lang);
  }
  text = clipToLimit(text, templateParams(templateName, vars, lang).reply);
  assertNoUrl(text, `template ${templateName}`);
  return text;
}
