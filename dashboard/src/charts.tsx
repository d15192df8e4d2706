import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type MetricsSeries } from './api.js';
import { bytes } from './format.js';

type Sample = MetricsSeries['samples'][number];

/** Lines in colours with at least 4.5:1 contrast on white. */
const BLUE = '#1d4ed8';
const AMBER = '#9a3412';
const GREEN = '#166534';

interface ChartSpec {
  title: string;
  lines: { label: string; value: (s: Sample) => number; stroke: string }[];
  /** How a value reads, on the axis and in the summary. */
  format: (v: number) => string;
  /** The top of the y axis at least, so a quiet hub's chart is not all noise. */
  minTop: number;
  /** Whole steps only (devices). */
  whole?: boolean;
}

const rate = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

const CHARTS: ChartSpec[] = [
  {
    title: 'Changes per second',
    lines: [
      { label: 'in', value: (s) => s.changesIn, stroke: BLUE },
      { label: 'out', value: (s) => s.changesOut, stroke: AMBER },
    ],
    format: rate,
    minTop: 1,
  },
  {
    title: 'Bytes per second',
    lines: [
      { label: 'in', value: (s) => s.bytesIn, stroke: BLUE },
      { label: 'out', value: (s) => s.bytesOut, stroke: AMBER },
    ],
    format: (v) => bytes(Math.round(v)),
    minTop: 1024,
  },
  {
    title: 'Connected devices',
    lines: [{ label: 'connected', value: (s) => s.connected, stroke: GREEN }],
    format: (v) => String(Math.round(v)),
    minTop: 1,
    whole: true,
  },
];

/** What a chart shows, in words, for those who cannot see it. */
function summary(spec: ChartSpec, samples: Sample[], window: string): string {
  const last = samples.at(-1);
  if (!last) return `${spec.title}, ${window}: no samples yet`;
  const parts = spec.lines.map((l) => {
    const peak = Math.max(...samples.map(l.value));
    return `${l.label} ${spec.format(l.value(last))} now, peak ${spec.format(peak)}`;
  });
  return `${spec.title}, ${window}: ${parts.join('; ')}`;
}

/** One uPlot chart, made once and given new data (and the window's span, in ms) as it comes. */
function Chart({
  spec,
  samples,
  spanMs,
  label,
}: {
  spec: ChartSpec;
  samples: Sample[];
  spanMs: number;
  label: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const span = useRef(spanMs);
  span.current = spanMs;
  const data = (): uPlot.AlignedData => [
    samples.map((s) => s.at / 1000),
    ...spec.lines.map((l) => samples.map(l.value)),
  ];

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    plot.current = new uPlot(
      {
        width: Math.max(280, el.clientWidth || 360),
        height: 160,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: {
          // The whole window, up to now, however few samples there are yet.
          x: { time: true, range: () => [(Date.now() - span.current) / 1000, Date.now() / 1000] },
          y: { range: (_u, _min, max) => [0, Math.max(spec.minTop, max)] },
        },
        axes: [
          {},
          {
            values: (_u, ticks) => ticks.map(spec.format),
            size: 84,
            ...(spec.whole && { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }),
          },
        ],
        series: [{}, ...spec.lines.map((l) => ({ label: l.label, stroke: l.stroke, width: 2 }))],
      },
      data(),
      el,
    );
    return () => {
      plot.current?.destroy();
      plot.current = undefined;
    };
    // Made once per chart; data arrives through setData below.
  }, []);

  useEffect(() => {
    plot.current?.setData(data());
  });

  return (
    <figure class="chart">
      <figcaption>{spec.title}</figcaption>
      <div ref={box} role="img" aria-label={label} />
    </figure>
  );
}

/**
 * The hub's throughput with its children and the devices connected, over the last
 * hour or day, from `/api/metrics/history`; read again as each new sample is due.
 */
export function ThroughputCharts() {
  const [period, setPeriod] = useState<'1h' | '24h'>('1h');
  const [series, setSeries] = useState<MetricsSeries | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  useEffect(() => {
    let current = true;
    const load = () =>
      api<MetricsSeries>('GET', `/metrics/history?window=${period}`).then(
        (s) => {
          if (!current) return;
          setSeries(s);
          setError(undefined);
        },
        (err: unknown) => current && setError((err as Error).message),
      );
    void load();
    const timer = globalThis.setInterval(() => void load(), period === '1h' ? 10_000 : 60_000);
    return () => {
      current = false;
      globalThis.clearInterval(timer);
    };
  }, [period]);

  const samples = series?.window === period ? series.samples : [];
  const words = period === '1h' ? 'last hour' : 'last 24 hours';
  return (
    <section aria-labelledby="charts-heading">
      <div class="section-head">
        <h2 id="charts-heading">Traffic</h2>
        <div role="group" aria-label="Chart period" class="toggle">
          <button type="button" aria-pressed={period === '1h'} onClick={() => setPeriod('1h')}>
            Last hour
          </button>
          <button type="button" aria-pressed={period === '24h'} onClick={() => setPeriod('24h')}>
            Last 24 hours
          </button>
        </div>
      </div>
      {error && (
        <p role="alert" class="error">
          Could not load the charts: {error}
        </p>
      )}
      <div class="charts">
        {CHARTS.map((spec) => (
          <Chart
            key={spec.title}
            spec={spec}
            samples={samples}
            spanMs={period === '1h' ? 3600_000 : 86_400_000}
            label={summary(spec, samples, words)}
          />
        ))}
      </div>
    </section>
  );
}
