import { describe, expect, it } from 'vitest';
import {
  ALERT_CODE_ALPHABET,
  ALERT_TEMPLATE_NAMES,
  alertCode,
  assertNoUrl,
  formatAddress,
  isAlertCode,
  MAX_SMS_UNITS,
  render,
  SPECIAL_TEMPLATE_NAMES,
  smsSegments,
  TEMPLATE_NAMES,
  type TemplateItem,
  type TemplateVars,
  templateFor,
} from './templates.ts';

const T = Date.UTC(2026, 2, 2, 6, 5); // 14:05 Shanghai
const LANGS = ['zh', 'en'] as const;

/** Realistic long values: a long compound name, a tower with many units, a long area name. */
const REALISTIC: TemplateVars = {
  alertId: '01JQ7ZK3M9X2V8B4N6T0RCSYHD',
  building: '12',
  unit: '3',
  room: '2504',
  name: '欧阳秀兰',
  device: '烟感',
  minutes: 170,
  ts: T,
  count: 3,
  alertType: 'ebike_charging_repeated',
};

/** At the clip limits of every variable (VAR_LIMITS) and beyond. */
const WORST: TemplateVars = {
  alertId: 'alert-with-a-very-long-identifier-0001',
  drill: true,
  building: '123456789号楼',
  unit: '12345单元',
  room: '1234567室',
  place: '12号楼地下非机动车集中充电区东侧出入口',
  name: '阿卜杜热合曼·买买提',
  device: '智能独立式光电烟感探测器',
  minutes: 2000,
  ts: T,
  count: 12345,
  alertType: 'ebike_charging_repeated',
};

const items = (n: number, v: TemplateVars): TemplateItem[] =>
  Array.from({ length: n }, (_, i) => ({
    alertId: `alert-${i}`,
    alertType: ALERT_TEMPLATE_NAMES[i % ALERT_TEMPLATE_NAMES.length]!,
    building: v.building,
    unit: v.unit,
    room: v.room,
    place: v.place,
    ts: v.ts,
    count: v.count,
  }));

describe('templates', () => {
  it('has a template for every alert type the rules raise, plus the special ones', () => {
    expect(TEMPLATE_NAMES).toHaveLength(23 + 8);
    expect(SPECIAL_TEMPLATE_NAMES).toEqual([
      'generic',
      'escalation',
      'bundle',
      'ack_confirm',
      'resolve_confirm',
      'reply_unknown',
      'digest',
      'digest_line',
    ]);
    for (const t of ALERT_TEMPLATE_NAMES) expect(templateFor(t)).toBe(t);
    expect(templateFor('something_new')).toBe('generic');
  });

  for (const lang of LANGS)
    for (const [label, vars] of [
      ['realistic', REALISTIC],
      ['worst-case', WORST],
    ] as const)
      for (const name of TEMPLATE_NAMES)
        it(`${name} (${lang}, ${label}) fits two UCS-2 segments, no URL, code present`, () => {
          const v = { ...vars, items: items(6, vars) };
          for (const drill of [false, true]) {
            const text = render(name, { ...v, drill }, lang);
            expect(text.length).toBeLessThanOrEqual(MAX_SMS_UNITS);
            const seg = smsSegments(text);
            expect(seg.segments).toBeLessThanOrEqual(2);
            expect(() => assertNoUrl(text)).not.toThrow();
            expect(text).not.toMatch(/http|www/i);
            if (name !== 'reply_unknown') {
              const prefix = lang === 'zh' ? '【演练】' : '[DRILL] ';
              expect(text.startsWith(prefix)).toBe(drill);
            }
            const code = alertCode(name === 'bundle' || name === 'digest' ? 'alert-0' : v.alertId!);
            expect(text).toContain(code);
            // never the full name
            expect(text).not.toContain(vars.name!);
            expect(text).not.toContain(vars.name!.slice(1));
          }
        });

  it('renders alert templates with the household address, masked name and reply hint (realistic = full detail)', () => {
    const code = alertCode(REALISTIC.alertId!);
    const zh = render('fall', REALISTIC);
    expect(zh).toBe(`跌倒报警(3小时) 14:05：12号楼3单元2504 欧**兰 烟感。请立即上门查看。回复1确认 ${code}`);
    const en = render('fall', REALISTIC, 'en');
    expect(en).toBe(
      `Fall alarm (3 h) 14:05: Bldg 12 Unit 3 Rm 2504 欧**兰 烟感. Check on them now. Reply 1 ${code} to ack`,
    );
    expect(render('sos', { alertId: 'a1', building: '3', unit: '2', room: '501', name: '张秀兰' })).toBe(
      `紧急呼叫：3号楼2单元501 张*兰。请立即上门查看。回复1确认 ${alertCode('a1')}`,
    );
    // full detail (time, device, duration) kept for realistic variables in every template and language
    for (const lang of LANGS)
      for (const name of ALERT_TEMPLATE_NAMES) {
        const text = render(name, REALISTIC, lang);
        expect(text).toContain('14:05');
        expect(text).toContain(lang === 'zh' ? '12号楼3单元2504' : 'Bldg 12 Unit 3 Rm 2504');
        expect(text).toContain('欧**兰');
      }
  });

  it('drill prefix in both languages', () => {
    expect(render('smoke', { alertId: 'a', drill: true, building: '1' })).toMatch(/^【演练】烟感报警/);
    expect(render('smoke', { alertId: 'a', drill: true, building: '1' }, 'en')).toMatch(/^\[DRILL\] Smoke alarm/);
    expect(render('smoke', { alertId: 'a', building: '1' })).not.toContain('演练');
  });

  it('uses the place when there is no household address', () => {
    expect(render('charging_area_fire', { alertId: 'a', place: '2号楼车棚充电区' })).toContain('：2号楼车棚充电区。');
    expect(formatAddress({ building: '3号楼', unit: '2单元', room: '501室' })).toBe('3号楼2单元501');
    expect(formatAddress({ building: 'A座', room: '1203' })).toBe('A座1203');
    expect(formatAddress({ building: '3', unit: '2' }, 'en')).toBe('Bldg 3 Unit 2');
  });

  it('escalation, acknowledgement, digest line and generic fallback', () => {
    const v = { alertId: 'a9', alertType: 'sos', building: '3', unit: '2', room: '501', name: '张秀兰', minutes: 5 };
    const c = alertCode('a9');
    expect(render('escalation', v)).toBe(
      `【升级】紧急呼叫已5分钟无人确认：3号楼2单元501 张*兰。请立即处理。回复1确认 ${c}`,
    );
    expect(render('escalation', v, 'en')).toContain('no ack for 5 min');
    expect(render('ack_confirm', v)).toBe(`已确认 ${c}（紧急呼叫 3号楼2单元501），谢谢。处理完毕请回复2 ${c}`);
    expect(render('resolve_confirm', v)).toContain(`已标记处理完毕 ${c}`);
    expect(render('digest_line', { ...v, alertType: 'low_battery', ts: T, count: 3 })).toBe(
      `${c} 14:05 设备电量低 3号楼2单元501 共3次`,
    );
    expect(render('generic', { ...v, minutes: undefined, alertType: 'flood' })).toMatch(
      /^告警\(flood\)：3号楼2单元501 张\*兰。请核实处理。/,
    );
    // an unknown template name is an alert type without a template
    expect(render('lift_trapped', { alertId: 'a9' })).toContain('告警(lift_trapped)');
  });

  it('bundles several alerts in one message and says how many were left out', () => {
    const few = render('bundle', { items: items(2, REALISTIC) });
    expect(few).toMatch(/^2条告警：/);
    expect(few).toContain(alertCode('alert-0'));
    expect(few).toContain(alertCode('alert-1'));
    const many = render('bundle', { items: items(9, REALISTIC) });
    expect(many.length).toBeLessThanOrEqual(MAX_SMS_UNITS);
    expect(many).toMatch(/^9条告警：.*等\d条。/);
    expect(render('bundle', { items: items(9, REALISTIC) }, 'en')).toMatch(/^9 alerts: .* \+\d more\./);
    expect(render('digest', { items: items(9, REALISTIC) })).toMatch(/^待处理9条\(非紧急\)：.*等\d条。/);
  });

  it('never more health detail than the alert type: no evidence or free text variables exist', () => {
    const text = render('inactivity', { ...REALISTIC, ...({ summary: 'heart rate 150' } as object) });
    expect(text).not.toContain('heart');
  });

  it('defuses URLs in variables and throws if a template would produce one', () => {
    const text = render('sos', { alertId: 'a', place: 'see http://evil.example.com', name: 'www.x.cn' });
    expect(text).not.toMatch(/http|www|\.com|\.cn/i);
    expect(() => assertNoUrl('go to example.com now')).toThrow(/URL/);
    expect(() => assertNoUrl('https://x')).toThrow();
    expect(() => assertNoUrl('www.gov')).toThrow();
    expect(() => assertNoUrl('紧急呼叫：3号楼2单元501。回复1确认 A7K3')).not.toThrow();
  });

  it('over-long input is cut but keeps the reply hint', () => {
    const text = render('ack_confirm', { alertId: 'x', alertType: 'x'.repeat(500), place: '很'.repeat(500) });
    expect(text.length).toBeLessThanOrEqual(MAX_SMS_UNITS);
  });
});

describe('alertCode', () => {
  it('is deterministic, 4 unambiguous characters, starting with a letter', () => {
    expect(alertCode('abc')).toBe(alertCode('abc'));
    const codes = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const c = alertCode(`01JQ7ZK3M9X2V8B4N6T0RC${i}`);
      expect(c).toMatch(/^[A-Z][2-9A-Z]{3}$/);
      expect(c).not.toMatch(/[01OIL]/);
      for (const ch of c) expect(ALERT_CODE_ALPHABET).toContain(ch);
      expect(isAlertCode(c)).toBe(true);
      expect(isAlertCode(c.toLowerCase())).toBe(true);
      codes.add(c);
    }
    // ids differing only in the last characters still spread (few collisions among 2000)
    expect(codes.size).toBeGreaterThan(1990);
    expect(isAlertCode('A0K3')).toBe(false);
    expect(isAlertCode('7AK3')).toBe(false);
  });
});

describe('smsSegments', () => {
  it('GSM-7: 160 single, 153 per part', () => {
    expect(smsSegments('')).toMatchObject({ segments: 0 });
    expect(smsSegments('a'.repeat(160))).toEqual({ encoding: 'GSM-7', units: 160, segments: 1, perSegment: 160 });
    expect(smsSegments('a'.repeat(161))).toEqual({ encoding: 'GSM-7', units: 161, segments: 2, perSegment: 153 });
    expect(smsSegments('a'.repeat(306)).segments).toBe(2);
    expect(smsSegments('a'.repeat(307)).segments).toBe(3);
    expect(smsSegments('Reply 1 A7K3 to ack @£$¥èé').encoding).toBe('GSM-7');
  });

  it('GSM-7 extension characters count 2 and are not split across parts', () => {
    expect(smsSegments('€'.repeat(80))).toMatchObject({ encoding: 'GSM-7', units: 160, segments: 1 });
    expect(smsSegments('[DRILL]' + 'a'.repeat(152))).toMatchObject({ units: 161, segments: 2 });
    expect(smsSegments('{}|~^\\'.repeat(1)).units).toBe(12);
    // 152 plain + one escape pair: 154 septets; the pair goes whole into part 2
    expect(smsSegments('a'.repeat(152) + '€' + 'a'.repeat(10))).toMatchObject({ units: 164, segments: 2 });
    expect(smsSegments('a'.repeat(152) + '€'.repeat(77)).segments).toBe(3);
  });

  it('UCS-2: 70 single, 67 per part; any non-GSM character switches the whole text', () => {
    expect(smsSegments('张'.repeat(70))).toEqual({ encoding: 'UCS-2', units: 70, segments: 1, perSegment: 70 });
    expect(smsSegments('张'.repeat(71))).toEqual({ encoding: 'UCS-2', units: 71, segments: 2, perSegment: 67 });
    expect(smsSegments('张'.repeat(134)).segments).toBe(2);
    expect(smsSegments('张'.repeat(135)).segments).toBe(3);
    expect(smsSegments('a'.repeat(100) + '张')).toMatchObject({ encoding: 'UCS-2', units: 101, segments: 2 });
    expect(smsSegments('【演练】abc').encoding).toBe('UCS-2');
  });

  it('UCS-2 surrogate pairs count 2 and are not split', () => {
    expect(smsSegments('😀'.repeat(35))).toMatchObject({ units: 70, segments: 1 });
    // 66 units + a pair would straddle part 1: it moves to part 2
    expect(smsSegments('张'.repeat(66) + '😀' + '张'.repeat(66))).toMatchObject({ units: 134, segments: 3 });
    expect(smsSegments('张'.repeat(67) + '😀' + '张'.repeat(65))).toMatchObject({ units: 134, segments: 2 });
  });
});
