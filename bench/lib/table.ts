/** The one results table: every row with its ratio to its group's baseline, as Markdown. */
import type { Row } from './scenario';

export interface ResultRow extends Row {
  scenario: string;
}

/** `value / baseline value` for rows sharing scenario and group; undefined without a baseline. */
export function ratios(rows: readonly ResultRow[]): (number | undefined)[] {
  return rows.map((row) => {
    if (row.skipped) return undefined;
    const base = rows.find(
      (r) =>
        r.baseline &&
        !r.skipped &&
        r.scenario === row.scenario &&
        (r.group ?? '') === (row.group ?? ''),
    );
    return base === undefined ? undefined : row.value / base.value;
  });
}

export function formatTable(rows: readonly ResultRow[]): string {
  const r = ratios(rows);
  const header = [
    'scenario',
    'variant',
    'result',
    'p50',
    'p99',
    'server CPU/req',
    'ratio',
    'notes',
  ];
  const body = rows.map((row, i) => [
    row.scenario,
    row.variant,
    row.skipped ? 'skipped' : `${number(row.value)} ${row.unit}`,
    latency(row.p50, row),
    latency(row.p99, row),
    row.cpuPerRequest === undefined || row.skipped ? '—' : `${number(row.cpuPerRequest)} µs`,
    row.baseline && !row.skipped
      ? '1.00 (baseline)'
      : r[i] === undefined
        ? '—'
        : `${r[i]?.toFixed(2)}×`,
    (row.notes ?? []).join('; '),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((line) => line[c].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, c) => (c >= 2 && c <= 6 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`,
    ...body.map(line),
  ].join('\n');
}

function latency(value: number | undefined, row: Row): string {
  if (value === undefined || row.skipped) return '—';
  return `${number(value)} ${row.latencyUnit ?? ''}`.trim();
}

/** Whole and large numbers with thousands separators; others with three significant digits. */
function number(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toPrecision(3);
}
