/**
 * Activity of a household or a device over the last 24 h or 7 days, from `GET /api/v1/readings` aggregates
 * (windows aligned to the epoch, as the stores align them): motion and door passes counted, water and electricity
 * as the rise of their meters per window, power as its mean.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';
import { type SeriesSpec, TimeChart } from './chart.tsx';
import { ErrorBox, Loading } from './components.tsx';
import { type Key, t } from './i18n.ts';
import type { ReadingPoint } from './types.ts';

export type Range = '24h' | '7d';
const RANGES: Record<Range, { ms: number; every: string; everyMs: number }> = {
  '24h': { ms: 86_400_000, every: '1h', everyMs: 3_600_000 },
  '7d': { ms: 7 * 86_400_000, every: '6h', everyMs: 6 * 3_600_000 },
};

/** How a field becomes one value per window. */
type Kind = 'count' | 'sum' | 'mean' | 'rise';

interface ChartDef {
  field: string;
  title: Key;
  agg: 'sum' | 'count' | 'mean' | 'max';
  kind: Kind;
  colour: string;
  bars: boolean;
}

export const HOUSEHOLD_CHARTS: ChartDef[] = [
  { field: 'motion', title: 'chart_motion', agg: 'sum', kind: 'sum', colour: '#1565c0', bars: true },
  { field: 'water_total_l', title: 'chart_water', agg: 'max', kind: 'rise', colour: '#00838f', bars: true },
  { field: 'power_w', title: 'chart_power', agg: 'mean', kind: 'mean', colour: '#ef6c00', bars: false },
  { field: 'energy_total_kwh', title: 'chart_energy', agg: 'max', kind: 'rise', colour: '#6a1b9a', bars: true },
  { field: 'event_door_access', title: 'chart_door', agg: 'count', kind: 'count', colour: '#2e7d32', bars: true },
];

interface Series {
  xs: number[];
  ys: (number | null)[];
  hasData: boolean;
}

/** One value per window across the household's devices. */
export function toSeries(
  points: ReadingPoint[],
  def: Pick<ChartDef, 'kind'>,
  from: number,
  to: number,
  everyMs: number,
): Series {
  const start = Math.floor(from / everyMs) * everyMs;
  const xsMs: number[] = [];
  for (let x = start; x < to; x += everyMs) xsMs.push(x);
  const index = new Map(xsMs.map((x, i) => [x, i]));
  const n = xsMs.length;
  const byDevice = new Map<string, (number | null)[]>();
  for (const p of points) {
    const i = index.get(Date.parse(p.ts));
    if (i === undefined) continue;
    const v = typeof p.value === 'boolean' ? (p.value ? 1 : 0) : p.value;
    let row = byDevice.get(p.deviceId);
    if (!row) {
      row = new Array<number | null>(n).fill(null);
      byDevice.set(p.deviceId, row);
    }
    row[i] = v;
  }
  const ys = new Array<number | null>(n).fill(def.kind === 'count' || def.kind === 'sum' ? 0 : null);
  const counts = new Array<number>(n).fill(0);
  for (const row of byDevice.values()) {
    for (let i = 0; i < n; i++) {
      let v: number | null = row[i] ?? null;
      if (def.kind === 'rise') {
        // the meter's rise since the previous window that has a reading
        let j = i - 1;
        while (j >= 0 && row[j] === null) j--;
        v = v !== null && j >= 0 && row[j] !== null ? Math.max(0, v - (row[j] as number)) : null;
      }
      if (v === null) continue;
      ys[i] = (ys[i] ?? 0) + v;
      counts[i]!++;
    }
  }
  if (def.kind === 'mean') for (let i = 0; i < n; i++) if (counts[i]) ys[i] = (ys[i] as number) / counts[i]!;
  return { xs: xsMs.map((x) => x / 1000), ys, hasData: byDevice.size > 0 };
}

export function RangeSwitch({ range, onChange }: { range: Range; onChange: (r: Range) => void }) {
  return (
    <fieldset class="segmented">
      <legend class="sr-only">{t('hh_activity')}</legend>
      {(['24h', '7d'] as const).map((r) => (
        <button
          key={r}
          type="button"
          class={`seg ${range === r ? 'on' : ''}`}
          aria-pressed={range === r}
          onClick={() => onChange(r)}
          data-testid={`range-${r}`}
        >
          {t(r === '24h' ? 'range_24h' : 'range_7d')}
        </button>
      ))}
    </fieldset>
  );
}

/** The household's charts; those without any data are left out. */
export function ActivityCharts({ query, range }: { query: { householdId?: string; deviceId?: string }; range: Range }) {
  const [state, setState] = useState<{ series?: (Series & { def: ChartDef })[]; error?: unknown }>({});
  const key = `${query.householdId ?? ''}|${query.deviceId ?? ''}|${range}`;
  useEffect(() => {
    let live = true;
    const r = RANGES[range];
    const to = Date.now();
    const from = to - r.ms;
    setState({});
    Promise.all(
      HOUSEHOLD_CHARTS.map(async (def) => {
        const page = await api<{ items: ReadingPoint[] }>('readings', {
          query: { ...query, field: def.field, from, to, every: r.every, agg: def.agg, limit: 10_000 },
        });
        return { ...toSeries(page.items, def, from, to, r.everyMs), def };
      }),
    ).then(
      (series) => live && setState({ series }),
      (error: unknown) => live && setState({ error }),
    );
    return () => {
      live = false;
    };
  }, [key]);
  if (state.error) return <ErrorBox error={state.error} />;
  if (!state.series) return <Loading />;
  const shown = state.series.filter((s) => s.hasData);
  if (shown.length === 0) return <p class="muted">{t('chart_no_data')}</p>;
  return (
    <div class="charts">
      {shown.map((s) => {
        const spec: SeriesSpec = { label: t(s.def.title), colour: s.def.colour, bars: s.def.bars };
        return (
          <div key={s.def.field} class="chart-card">
            <h3>{t(s.def.title)}</h3>
            <TimeChart
              xs={s.xs}
              ys={[s.ys]}
              series={[spec]}
              height={150}
              integer={s.def.kind === 'count' || s.def.kind === 'sum'}
              label={t(s.def.title)}
              testid={`chart-${s.def.field}`}
            />
          </div>
        );
      })}
    </div>
  );
}
