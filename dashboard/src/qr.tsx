import qrcode from 'qrcode-generator';

/** Quiet zone around the symbol, in modules, as the QR standard asks. */
const MARGIN = 4;

/**
 * A QR code of `text` as an SVG: one path of unit squares, scaled by the browser,
 * so it stays sharp at any size and prints well. Error correction L and the
 * smallest version that fits, as the hub's terminal QR code (qrcode-terminal), so a
 * phone reads the same symbol from the screen as from the console.
 */
export function QrCode({ text, label, size = 232 }: { text: string; label: string; size?: number }) {
  const qr = qrcode(0, 'L');
  qr.addData(text, 'Byte');
  qr.make();
  const n = qr.getModuleCount();
  let d = '';
  for (let row = 0; row < n; row++)
    for (let col = 0; col < n; col++)
      if (qr.isDark(row, col)) d += `M${col + MARGIN} ${row + MARGIN}h1v1h-1z`;
  const side = n + 2 * MARGIN;
  return (
    <svg
      class="qr"
      role="img"
      aria-label={label}
      width={size}
      height={size}
      viewBox={`0 0 ${side} ${side}`}
      shape-rendering="crispEdges"
    >
      <rect width={side} height={side} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}
