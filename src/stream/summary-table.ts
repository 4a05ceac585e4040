export interface SummaryRow {
  readonly name: string;
  readonly in: number;
  readonly out: number;
  readonly rejected: number;
  /** false for stages that regroup or drop on purpose (batch, filter, split): not checked. */
  readonly conserves?: boolean;
}

/**
 * A flow's counts as an aligned table plus a check line:
 *
 *   stage     in   out  rejected
 *   vqav2   1000  1000         0
 *   dedup   1000   990        10
 *   shards   990   990         0
 *   in = out + rejected: ok
 *
 * Rows with `conserves: false` are listed after the check instead of failing it.
 */
export function formatSummaryTable(stages: readonly SummaryRow[]): string {
  const head = ['stage', 'in', 'out', 'rejected'];
  const body = stages.map((s) => [s.conserves === false ? `${s.name} *` : s.name, String(s.in), String(s.out), String(s.rejected)]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  const fmt = (r: string[]): string =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  const lines = [fmt(head), ...body.map(fmt)];

  const bad = stages.filter((s) => s.conserves !== false && s.in !== s.out + s.rejected);
  const skipped = stages.filter((s) => s.conserves === false);
  if (bad.length === 0) lines.push('in = out + rejected: ok');
  else {
    lines.push(`in = out + rejected: MISMATCH at ${bad
      .map((s) => `${s.name} (${s.in} != ${s.out} + ${s.rejected}, ${s.in - s.out - s.rejected} unaccounted)`)
      .join('; ')}`);
  }
  if (skipped.length > 0) lines.push(`* regroups or filters on purpose, not checked: ${skipped.map((s) => s.name).join(', ')}`);
  return lines.join('\n');
}
