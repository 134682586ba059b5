/**
 * The stock report as a printable page (Chinese by default, English with ?lang=en): per depot, every item against
 * its minimum with what expires soon, then the lots with their expiry coloured like the console's.
 * Self-contained HTML: inline styles (allowed by the app's CSP), no scripts, no external resources.
 */
import type { ReportData } from './csv.ts';

type Lang = 'zh' | 'en';

const L = {
  zh: {
    title: '应急物资库存报告',
    generated: '生成时间',
    level: { community: '社区', street: '街道', district: '区' },
    address: '地址',
    keeper: '管理员',
    population: '服务人口',
    item: '物资',
    unit: '单位',
    minimum: '最低储备',
    usable: '可用',
    total: '合计',
    shortfall: '缺口',
    exp30: '30天内到期',
    exp90: '90天内到期',
    expired: '已过期',
    unusable: '损坏/故障',
    inspection: '待检查批次',
    next: '最近到期',
    lots: '批次',
    lot: '批次号',
    quantity: '数量',
    received: '入库日期',
    expires: '到期日期',
    condition: '状态',
    inspected: '上次检查',
    due: '检查到期',
    none: '无库存',
    conditions: { good: '完好', damaged: '损坏', faulty: '故障' },
    overdue: '逾期',
  },
  en: {
    title: 'Emergency supplies: stock report',
    generated: 'Generated',
    level: { community: 'Community', street: 'Street', district: 'District' },
    address: 'Address',
    keeper: 'Keeper',
    population: 'Population served',
    item: 'Item',
    unit: 'Unit',
    minimum: 'Minimum',
    usable: 'Usable',
    total: 'Total',
    shortfall: 'Shortfall',
    exp30: 'Expiring ≤30 d',
    exp90: 'Expiring ≤90 d',
    expired: 'Expired',
    unusable: 'Damaged/faulty',
    inspection: 'Lots to inspect',
    next: 'Next expiry',
    lots: 'Lots',
    lot: 'Lot',
    quantity: 'Quantity',
    received: 'Received',
    expires: 'Expires',
    condition: 'Condition',
    inspected: 'Last inspected',
    due: 'Inspection due',
    none: 'No stock',
    conditions: { good: 'good', damaged: 'damaged', faulty: 'faulty' },
    overdue: 'overdue',
  },
} as const;

export function esc(s: unknown): string {
  return String(s ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

export function reportHtml(r: ReportData, lang: Lang = 'zh'): string {
  const l = L[lang];
  const item = (id: string) => r.catalogue.byId.get(id);
  const sections = r.depots.map((d) => {
    const levels = r.levels.filter((x) => x.depotId === d.id && (x.total > 0 || x.minimum > 0 || x.incoming > 0));
    const lots = r.lots.filter((x) => x.depotId === d.id);
    const head = [
      l.item,
      l.unit,
      l.minimum,
      l.usable,
      l.total,
      l.shortfall,
      l.exp30,
      l.exp90,
      l.expired,
      l.unusable,
      l.inspection,
      l.next,
    ];
    const rows = levels.map((x) => {
      const it = item(x.itemId);
      const cls = x.belowMinimum ? ' class="short"' : '';
      return `<tr${cls}><td>${esc(it?.name[lang] ?? x.itemId)}</td><td>${esc(it?.unit[lang] ?? '')}</td><td class="n">${x.minimum}</td><td class="n">${x.usable}</td><td class="n">${x.total}</td><td class="n">${x.shortfall || ''}</td><td class="n">${x.expiringMinor || ''}</td><td class="n">${x.expiringInfo || ''}</td><td class="n">${x.expired || ''}</td><td class="n">${x.unusable || ''}</td><td class="n">${x.inspectionOverdue || ''}</td><td>${esc(x.nextExpiry ?? '')}</td></tr>`;
    });
    const lotRows = lots.map((x) => {
      const it = item(x.itemId);
      return `<tr><td class="mono">${esc(x.id)}</td><td>${esc(it?.name[lang] ?? x.itemId)}</td><td class="n">${x.quantity}</td><td>${esc(x.receivedOn)}</td><td class="exp-${x.expiry}">${esc(x.expiresOn ?? '–')}${x.daysToExpiry !== undefined ? ` (${x.daysToExpiry})` : ''}</td><td>${esc(l.conditions[x.condition])}</td><td>${esc(x.lastInspectedAt?.slice(0, 10) ?? '')}</td><td${x.inspectionOverdue ? ' class="exp-minor"' : ''}>${esc(x.inspectionDueOn ?? '')}${x.inspectionOverdue ? ` ${l.overdue}` : ''}</td></tr>`;
    });
    const table = (h: string[], body: string[]) =>
      body.length === 0
        ? `<p class="none">${esc(l.none)}</p>`
        : `<table><thead><tr>${h.map((x) => `<th>${esc(x)}</th>`).join('')}</tr></thead><tbody>${body.join('')}</tbody></table>`;
    return `<section><h2>${esc(d.name[lang])} <span class="muted">${esc(l.level[d.level])}</span></h2>
<p>${esc(l.address)}: ${esc(d.address)} · ${esc(l.keeper)}: ${esc(d.keeper?.name ?? '–')} · ${esc(l.population)}: ${d.population}</p>
${table(head, rows)}
<h3>${esc(l.lots)}</h3>
${table([l.lot, l.item, l.quantity, l.received, l.expires, l.condition, l.inspected, l.due], lotRows)}
</section>`;
  });
  return `<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}"><head><meta charset="utf-8"><title>${esc(l.title)}</title>
<style>
body{font-family:"WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #999}h3{font-size:1em}
table{border-collapse:collapse;width:100%;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #bbb;padding:.25em .4em;text-align:left}td.n{text-align:right}
.muted{color:#777;font-weight:normal}.mono{font-family:monospace}.none{color:#777}
tr.short td{background:#fde2e2}.exp-expired{background:#f8b4b4}.exp-minor{background:#fde68a}.exp-info{background:#fef9c3}
@media print{body{margin:0}section{break-inside:avoid-page}}
</style></head><body>
<h1>${esc(l.title)}</h1>
<p class="muted">${esc(l.generated)}: ${esc(r.generatedAt)} (${esc(r.today)})</p>
${sections.join('\n')}
</body></html>
`;
}
