/**
 * A small line chart in SVG: no library, a few dozen points at most. The
 * numbers it shows are also in its label and in text beside it, for readers
 * that cannot see the line.
 */
export function Sparkline(props: { label: string; unit: string; values: (number | null)[]; digits?: number }) {
  const { label, unit, values, digits = 1 } = props;
  const width = 320;
  const height = 80;
  const known = values.filter((v): v is number => v !== null);
  const max = Math.max(1e-9, ...known);
  const last = known.at(-1);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const segments: string[] = [];
  let current: string[] = [];
  values.forEach((v, i) => {
    if (v === null) {
      if (current.length > 0) segments.push(current.join(" "));
      current = [];
      return;
    }
    current.push(`${(i * step).toFixed(1)},${(height - 4 - (v / max) * (height - 8)).toFixed(1)}`);
  });
  if (current.length > 0) segments.push(current.join(" "));
  const summary =
    last === undefined
      ? `${label}: no data yet`
      : `${label}: now ${last.toFixed(digits)} ${unit}, peak ${max.toFixed(digits)} ${unit}`;
  return (
    <figure class="chart">
      <figcaption>
        {label}{" "}
        <span class="now">
          {last === undefined ? "—" : last.toFixed(digits)} {unit}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={summary} preserveAspectRatio="none">
        <line x1="0" y1={height - 4} x2={width} y2={height - 4} class="axis" />
        {segments.map((points) =>
          points.includes(" ") ? (
            <polyline key={points} points={points} class="line" />
          ) : (
            // A point with no neighbour (samples around it had nothing to measure): a dot, not an invisible line.
            <circle key={points} cx={points.split(",")[0]} cy={points.split(",")[1]} r="2.5" class="dot" />
          ),
        )}
      </svg>
      <p class="muted small">
        peak {known.length === 0 ? "—" : max.toFixed(digits)} {unit} over the last {values.length} samples
      </p>
    </figure>
  );
}
