/**
 * CSV for supplies: the import of an initial stock count (every line checked first, nothing imported if any line
 * fails, each problem with its line number) and the stock report export (RFC 4180, UTF-8 with a BOM so that
 * spreadsheets read the Chinese names; cells starting with = + - @ defused).
 *
 * Import columns (header row required, any order): depot_id, item_id, quantity (required); received_on, expires_on
 * (YYYY-MM-DD), condition (good | damaged | faulty), last_inspected_on, note (optional). A missing expires_on takes
 * the item's shelf life from received_on; a missing received_on is today.
 */
import { parse } from 'csv-parse/sync';
import type { Catalogue, Item } from './config.ts';
import { addDays, isDate } from './dates.ts';
import type { DepotView, LotView, StockLevel } from './schemas.ts';
import type { ReceiveInput } from './service.ts';
import { CONDITIONS, type Condition } from './store.ts';

export const IMPORT_REQUIRED = ['depot_id', 'item_id', 'quantity'] as const;
export const IMPORT_OPTIONAL = ['received_on', 'expires_on', 'condition', 'last_inspected_on', 'note'] as const;
export const MAX_IMPORT_LINES = 5000;

export interface LineError {
  /** the line of the file (the header is line 1) */
  line: number;
  column?: string;
  message: string;
}

export type ImportLine = ReceiveInput & { line: number };

/**
 * Parses and checks a stock count. `depotOk` says whether a depot exists and the importer may stock it (the
 * message when not). Returns the lines, or every problem found.
 */
export function parseStockCsv(
  csvText: string,
  ctx: { catalogue: Catalogue; today: string; depotOk: (depotId: string) => string | undefined },
): { lines: ImportLine[] } | { errors: LineError[] } {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(csvText, {
      bom: true,
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true,
      info: true,
    }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (e) {
    const err = e as Error & { lines?: number };
    return { errors: [{ line: err.lines ?? 1, message: `not valid CSV: ${err.message}` }] };
  }
  if (records.length === 0) return { errors: [{ line: 1, message: 'the file is empty: a header row is required' }] };
  const header = records[0]!.record.map((c) => c.trim().toLowerCase());
  const headerLine = records[0]!.info.lines;
  const errors: LineError[] = [];
  const known = new Set<string>([...IMPORT_REQUIRED, ...IMPORT_OPTIONAL]);
  header.forEach((c, i) => {
    if (!known.has(c)) errors.push({ line: headerLine, column: c || `#${i + 1}`, message: 'unknown column' });
    else if (header.indexOf(c) !== i) errors.push({ line: headerLine, column: c, message: 'duplicate column' });
  });
  for (const c of IMPORT_REQUIRED) {
    if (!header.includes(c)) errors.push({ line: headerLine, column: c, message: 'required column is missing' });
  }
  if (records.length - 1 > MAX_IMPORT_LINES) {
    errors.push({ line: headerLine, message: `at most ${MAX_IMPORT_LINES} lines per file` });
  }
  if (records.length === 1) errors.push({ line: headerLine, message: 'no stock lines after the header' });
  if (errors.length > 0) return { errors };
  const index = new Map(header.map((c, i) => [c, i]));
  const lines: ImportLine[] = [];
  for (const { record, info } of records.slice(1)) {
    const line = info.lines;
    const get = (col: string) => (record[index.get(col) ?? -1] ?? '').trim();
    const err = (column: string, message: string) => errors.push({ line, column, message });
    if (record.length !== header.length) {
      err('*', `has ${record.length} cells, the header ${header.length}`);
      continue;
    }
    const depotId = get('depot_id');
    const depotProblem = depotId ? ctx.depotOk(depotId) : 'is required';
    if (depotProblem) err('depot_id', depotProblem);
    const itemId = get('item_id');
    const item: Item | undefined = ctx.catalogue.byId.get(itemId);
    if (!itemId) err('item_id', 'is required');
    else if (!item) err('item_id', `unknown item "${itemId}"`);
    const q = get('quantity');
    const quantity = /^\d{1,7}$/.test(q) ? Number(q) : Number.NaN;
    if (!(quantity >= 1 && quantity <= 1_000_000)) err('quantity', 'must be a whole number from 1 to 1000000');
    const receivedOn = get('received_on') || ctx.today;
    if (!isDate(receivedOn)) err('received_on', 'must be a date YYYY-MM-DD');
    else if (receivedOn > ctx.today) err('received_on', 'must not be in the future');
    let expiresOn: string | undefined = get('expires_on') || undefined;
    if (expiresOn !== undefined) {
      if (!isDate(expiresOn)) err('expires_on', 'must be a date YYYY-MM-DD');
      else if (isDate(receivedOn) && expiresOn < receivedOn) {
        err('expires_on', `must not be before received_on (${receivedOn})`);
      }
    } else if (item?.shelfLifeDays && isDate(receivedOn)) expiresOn = addDays(receivedOn, item.shelfLifeDays);
    const condition = (get('condition') || 'good') as Condition;
    if (!CONDITIONS.includes(condition)) err('condition', `must be one of ${CONDITIONS.join(', ')}`);
    const lastInspectedOn = get('last_inspected_on') || undefined;
    if (lastInspectedOn !== undefined) {
      if (!isDate(lastInspectedOn)) err('last_inspected_on', 'must be a date YYYY-MM-DD');
      else if (lastInspectedOn > ctx.today) err('last_inspected_on', 'must not be in the future');
    }
    const note = get('note') || undefined;
    if (note !== undefined && note.length > 500) err('note', 'at most 500 characters');
    const l: ImportLine = { line, depotId, itemId, quantity, receivedOn, condition };
    if (expiresOn) l.expiresOn = expiresOn;
    if (lastInspectedOn) l.lastInspectedOn = lastInspectedOn;
    if (note) l.reason = `initial stock count: ${note}`;
    lines.push(l);
  }
  return errors.length > 0 ? { errors } : { lines };
}

export function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  // a leading = + - @ would be a formula in a spreadsheet: defuse it
  const safe = /^[=+\-@]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvText(rows: unknown[][]): string {
  return `\uFEFF${rows.map((row) => row.map(csvCell).join(',')).join('\r\n')}\r\n`;
}

export interface ReportData {
  depots: DepotView[];
  levels: StockLevel[];
  lots: LotView[];
  catalogue: Catalogue;
  today: string;
  generatedAt: string;
}

/** The stock report: one row per depot and item (`items`), or one per lot (`lots`). */
export function reportCsv(r: ReportData, detail: 'items' | 'lots', lang: 'zh' | 'en'): string {
  const name = (id: string) => r.catalogue.byId.get(id)?.name[lang] ?? id;
  const unit = (id: string) => r.catalogue.byId.get(id)?.unit[lang] ?? '';
  const depotName = new Map(r.depots.map((d) => [d.id, d.name[lang]]));
  if (detail === 'lots') {
    const rows: unknown[][] = [
      [
        'depot_id',
        'depot',
        'item_id',
        'item',
        'unit',
        'lot_id',
        'quantity',
        'received_on',
        'expires_on',
        'days_to_expiry',
        'expiry',
        'condition',
        'last_inspected_at',
        'inspection_due_on',
        'inspection_overdue',
      ],
    ];
    for (const l of r.lots) {
      rows.push([
        l.depotId,
        depotName.get(l.depotId),
        l.itemId,
        name(l.itemId),
        unit(l.itemId),
        l.id,
        l.quantity,
        l.receivedOn,
        l.expiresOn,
        l.daysToExpiry,
        l.expiry,
        l.condition,
        l.lastInspectedAt,
        l.inspectionDueOn,
        l.inspectionOverdue ? 'yes' : '',
      ]);
    }
    return csvText(rows);
  }
  const rows: unknown[][] = [
    [
      'depot_id',
      'depot',
      'level',
      'population',
      'item_id',
      'item',
      'unit',
      'minimum',
      'minimum_source',
      'usable',
      'total',
      'shortfall',
      'expiring_30d',
      'expiring_90d',
      'expired',
      'damaged_or_faulty',
      'inspection_overdue_lots',
      'next_expiry',
      'incoming',
    ],
  ];
  const depotOf = new Map(r.depots.map((d) => [d.id, d]));
  for (const l of r.levels) {
    if (l.total === 0 && l.minimum === 0 && l.incoming === 0) continue;
    const d = depotOf.get(l.depotId);
    rows.push([
      l.depotId,
      depotName.get(l.depotId),
      d?.level,
      d?.population,
      l.itemId,
      name(l.itemId),
      unit(l.itemId),
      l.minimum,
      l.minimumSource,
      l.usable,
      l.total,
      l.shortfall,
      l.expiringMinor,
      l.expiringInfo,
      l.expired,
      l.unusable,
      l.inspectionOverdue,
      l.nextExpiry,
      l.incoming,
    ]);
  }
  return csvText(rows);
}
