/** The supply configuration (validated at start), quota arithmetic, calendar days and the stock-count CSV. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/load.ts';
import { checkCatalogue, checkDepots, loadSupplyConfig, quotaMinimum } from './config.ts';
import { parseStockCsv } from './csv.ts';
import { addDays, addMonths, dayOf, daysBetween, isDate } from './dates.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const REAL = loadSupplyConfig(
  path.join(ROOT, 'config/supplies/catalogue.yaml'),
  path.join(ROOT, 'config/supplies/depots.yaml'),
);

describe('supply configuration', () => {
  it('the shipped catalogue and depots are valid: the items the issue names, quotas at three levels', () => {
    const ids = REAL.catalogue.items.map((i) => i.id);
    for (const id of [
      'sandbag',
      'first_aid_kit',
      'fire_extinguisher',
      'fire_blanket',
      'flashlight',
      'battery_aa',
      'generator',
      'bottled_water',
      'instant_food',
      'blanket',
      'life_jacket',
      'raincoat',
      'loudhailer',
      'stretcher',
    ]) {
      expect(ids).toContain(id);
    }
    expect(REAL.catalogue.byId.get('fire_extinguisher')).toMatchObject({ inspectionEveryDays: 30 });
    expect(REAL.catalogue.byId.get('generator')).toMatchObject({ inspectionEveryDays: 30 });
    expect(Object.keys(REAL.catalogue.quotas.street).length).toBeGreaterThan(0);
    expect(REAL.depots.depots.map((d) => d.level)).toEqual(['community', 'community', 'street', 'district']);
  });

  it('lists every problem of the catalogue with its path', () => {
    const r = checkCatalogue({
      version: 1,
      items: [
        { id: 'sandbag', name: { zh: '沙袋', en: 'Sandbag' }, category: 'flood', unit: { zh: '袋', en: 'bag' } },
        { id: 'sandbag', name: { zh: '沙袋', en: 'Sandbag' }, category: 'flood', unit: { zh: '袋', en: 'bag' } },
      ],
      quotas: { community: { sandbag: { absolute: 1, per1000: 2 }, ghost: { absolute: 1 } } },
    });
    expect(r.problems).toEqual([
      'catalogue: items.1.id: item "sandbag" is defined twice',
      'catalogue: quotas.community.sandbag: give exactly one of absolute or per1000',
      'catalogue: quotas.community.ghost: unknown item "ghost"',
    ]);
    const shape = checkCatalogue({ version: 1, items: [{ id: 'Bad Id', name: { zh: 'x' }, colour: 'red' }] });
    expect(shape.problems.some((p) => p.includes('items.0.id'))).toBe(true);
    expect(shape.problems.some((p) => p.includes('unknown setting "colour"'))).toBe(true);
  });

  it('checks depots: level fields, label communities, agreements and sample stock against the catalogue', () => {
    const problems = checkDepots(
      {
        version: 1,
        depots: [
          { id: 'dp-a', name: { zh: 'a', en: 'a' }, level: 'community', address: 'x' },
          {
            id: 'dp-b',
            name: { zh: 'b', en: 'b' },
            level: 'community',
            communityId: 'c-b',
            communityName: { zh: 'b', en: 'b' },
            address: 'x',
            agreements: [{ id: 'ag', supplier: 's', items: [{ itemId: 'caviar', quantity: 1, withinHours: 2 }] }],
          },
          { id: 'dp-a', name: { zh: 'c', en: 'c' }, level: 'street', address: 'x' },
        ],
        sample: { stock: { 'dp-z': [{ itemId: 'sandbag', quantity: 1, receivedDaysAgo: 5, expiresInDays: -10 }] } },
      },
      REAL.catalogue,
    );
    expect(problems).toEqual([
      'depots: depots.0.communityId: a community depot names its community',
      'depots: depots.1: a community that is only a label (communityName) needs streetId and population: the registry cannot tell them',
      'depots: depots.1.agreements.0.items.0.itemId: unknown item "caviar"',
      'depots: depots.2.id: depot "dp-a" is defined twice',
      'depots: depots.2.streetId: a street depot names its street',
      'depots: sample.stock.dp-z: unknown depot "dp-z"',
      'depots: sample.stock.dp-z.0.expiresInDays: the lot would expire before it was received',
    ]);
  });

  it('a broken file stops the start with the file, the line and the problem', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-supply-cfg-'));
    try {
      const cat = path.join(dir, 'catalogue.yaml');
      writeFileSync(cat, 'version: 1\nitems:\n  - id: x\n    name: [unclosed\n');
      const e = (() => {
        try {
          loadSupplyConfig(cat, path.join(dir, 'missing.yaml'));
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems[0]).toMatch(/^supplies .*catalogue\.yaml: not valid YAML at line \d+/);
      // a missing depots file is no depots, not an error
      writeFileSync(
        cat,
        'version: 1\nitems:\n  - { id: x, name: { zh: x, en: x }, category: other, unit: { zh: 个, en: pc } }\n',
      );
      expect(loadSupplyConfig(cat, path.join(dir, 'missing.yaml')).depots.depots).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('quotas: absolute, or per 1,000 residents rounded up, exact in thousandths', () => {
    expect(quotaMinimum({ absolute: 7 }, 0)).toBe(7);
    expect(quotaMinimum({ per1000: 100 }, 330)).toBe(33);
    expect(quotaMinimum({ per1000: 10 }, 330)).toBe(4);
    expect(quotaMinimum({ per1000: 0.1 }, 3000)).toBe(1);
    expect(quotaMinimum({ per1000: 0.2 }, 480_000)).toBe(96);
    expect(quotaMinimum({ per1000: 5 }, 0)).toBe(0);
    expect(quotaMinimum(undefined, 1000)).toBe(0);
  });
});

describe('calendar days', () => {
  it('real dates only; days in the community time zone; arithmetic across months and years', () => {
    expect(isDate('2026-02-28')).toBe(true);
    expect(isDate('2026-02-30')).toBe(false);
    expect(isDate('2026-2-3')).toBe(false);
    // 17:00 UTC on 31 Dec is already 1 Jan in Shanghai
    expect(dayOf(Date.UTC(2025, 11, 31, 17), 'Asia/Shanghai')).toBe('2026-01-01');
    expect(addDays('2026-01-30', 30)).toBe('2026-03-01');
    expect(daysBetween('2026-03-01', '2026-02-01')).toBe(-28);
    expect(addMonths('2026-11', 3)).toBe('2027-02');
  });
});

describe('stock-count CSV', () => {
  const ctx = {
    catalogue: REAL.catalogue,
    today: '2026-03-01',
    depotOk: (id: string) => (id === 'dp-limin' ? undefined : `unknown depot "${id}"`),
  };

  it('reads the lines, with defaults: today, the shelf life, good', () => {
    const r = parseStockCsv(
      '\uFEFFitem_id,depot_id,quantity\r\nsandbag,dp-limin,12\r\n\r\nraincoat,dp-limin,3\r\n',
      ctx,
    );
    expect(r).toEqual({
      lines: [
        {
          line: 2,
          depotId: 'dp-limin',
          itemId: 'sandbag',
          quantity: 12,
          receivedOn: '2026-03-01',
          expiresOn: '2029-02-28',
          condition: 'good',
        },
        { line: 4, depotId: 'dp-limin', itemId: 'raincoat', quantity: 3, receivedOn: '2026-03-01', condition: 'good' },
      ],
    });
  });

  it('names the line (of the file, blank and quoted lines counted) and the column of every problem', () => {
    const r = parseStockCsv(
      'depot_id,item_id,quantity,note\ndp-limin,sandbag,2,"two\nlines"\ndp-x,sandbag,0,\ndp-limin,sandbag\n',
      ctx,
    );
    expect(r).toEqual({
      errors: [
        { line: 4, column: 'depot_id', message: 'unknown depot "dp-x"' },
        { line: 4, column: 'quantity', message: 'must be a whole number from 1 to 1000000' },
        { line: 5, column: '*', message: 'has 2 cells, the header 4' },
      ],
    });
    expect(parseStockCsv('', ctx)).toEqual({
      errors: [{ line: 1, message: 'the file is empty: a header row is required' }],
    });
    const header = parseStockCsv('depot_id,item_id,qty\n', ctx);
    expect('errors' in header && header.errors.map((e) => e.message)).toEqual([
      'unknown column',
      'required column is missing',
      'no stock lines after the header',
    ]);
  });
});
