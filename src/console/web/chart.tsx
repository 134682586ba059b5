/** Time-series charts with uPlot: sized to their box, in the community's time zone, with Chinese or English dates. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { settings, t } from './i18n.ts';
import { useStore } from './store.ts';

export interface SeriesSpec {
  label: string;
  colour: string;
  /** bars (counts per window) rather than a line */
  bars?: boolean;
}

export interface ChartProps {
  /** x in epoch seconds */
  xs: number[];
  /** one array per series, aligned with xs; null for a gap */
  ys: (number | null)[][];
  series: SeriesSpec[];
  height?: number;
  /** accessible name of the chart */
  label: string;
  /** counts: whole-number ticks and a scale from 0 */
  integer?: boolean;
  testid?: string;
}

// 24-hour axis labels (uPlot's default is 4pm): [tick step s, label, year, month, day, hour, minute, second, mode]
const NL = '\n';
const AXIS_STAMPS: (string | number | null)[][] = [
  [3600 * 24 * 365, '{YYYY}', null, null, null, null, null, null, 1],
  [3600 * 24 * 28, '{M}/{D}', `${NL}{YYYY}`, null, null, null, null, null, 1],
  [3600 * 24, '{M}/{D}', `${NL}{YYYY}`, null, null, null, null, null, 1],
  [3600, '{HH}:{mm}', `${NL}{YYYY}/{M}/{D}`, null, `${NL}{M}/{D}`, null, null, null, 1],
  [60, '{HH}:{mm}', `${NL}{YYYY}/{M}/{D}`, null, `${NL}{M}/{D}`, null, null, null, 1],
  [1, ':{ss}', `${NL}{YYYY}/{M}/{D} {HH}:{mm}`, null, `${NL}{M}/{D} {HH}:{mm}`, null, `${NL}{HH}:{mm}`, null, 1],
];

const ZH_NAMES = {
  MMMM: ['一月', '二月', '三月', '四月', '五月', '六月', '七月', '八月', '九月', '十月', '十一月', '十二月'],
  MMM: ['1月', '2月', '3月', '4月', '5月', '6月', '7月', '8月', '9月', '10月', '11月', '12月'],
  WWWW: ['星期日', '星期一', '星期二', '星期三', '星期四', '星期五', '星期六'],
  WWW: ['周日', '周一', '周二', '周三', '周四', '周五', '周六'],
};

export function TimeChart({ xs, ys, series, height = 180, label, testid, integer }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const { lang, tz } = useStore(settings);
  const empty = xs.length === 0 || ys.every((s) => s.every((v) => v === null));
  const shape = series.map((s) => `${s.label}|${s.colour}|${s.bars ? 1 : 0}`).join(',');

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const bars = uPlot.paths.bars?.({ size: [0.7, 40] });
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz),
      fmtDate: (tpl) => uPlot.fmtDate(tpl, lang === 'zh' ? ZH_NAMES : undefined),
      legend: { show: series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        ...(integer
          ? { y: { range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [0, Math.max(1, max)] } }
          : {}),
      },
      axes: [
        {
          stroke: '#4a5560',
          grid: { stroke: '#e6e9ed' },
          ticks: { stroke: '#e6e9ed' },
          // uPlot's own type for these rows is a tuple that a plain array literal does not narrow to
          values: AXIS_STAMPS as uPlot.Axis.Values,
        },
        {
          stroke: '#4a5560',
          grid: { stroke: '#e6e9ed' },
          ticks: { stroke: '#e6e9ed' },
          size: 48,
          ...(integer ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000] } : {}),
        },
      ],
      series: [
        { value: '{YYYY}/{M}/{D} {HH}:{mm}' },
        ...series.map(
          (s): uPlot.Series => ({
            label: s.label,
            stroke: s.colour,
            width: s.bars ? 0 : 2,
            fill: s.bars ? `${s.colour}cc` : `${s.colour}22`,
            paths: s.bars ? bars : undefined,
            points: { show: !s.bars && xs.length <= 60, size: 5 },
            spanGaps: !s.bars,
          }),
        ),
      ],
    };
    const u = new uPlot(opts, [xs, ...ys] as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // rebuilt when the series, the language or the time zone change; data alone goes through setData below
  }, [shape, height, lang, tz, integer]);

  useEffect(() => {
    plot.current?.setData([xs, ...ys] as uPlot.AlignedData);
  }, [xs, ys]);

  return (
    <figure class="chart" aria-label={label} data-testid={testid}>
      <div ref={box} class="chart-box" />
      {empty ? <p class="chart-empty muted">{t('chart_no_data')}</p> : null}
    </figure>
  );
}
