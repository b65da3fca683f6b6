import { convOutput, type ConvGeometry } from "./kernels.js";

/**
 * The TypeScript im2col/col2im (see Kernels.im2col). For each unfolded column (c, ky, kx) the
 * valid output positions form a contiguous range per output row, so the inner loop has no bounds test.
 */
function validRange(out: number, stride: number, offset: number, size: number): [number, number] {
  // o is valid iff 0 <= o·stride + offset < size.
  const lo = offset >= 0 ? 0 : Math.ceil(-offset / stride);
  const hi = Math.min(out, Math.floor((size - 1 - offset) / stride) + 1);
  return [lo, Math.max(lo, hi)];
}

function unfold(
  image: Float32Array,
  rows: number,
  g: ConvGeometry,
  cols: Float32Array,
  adjoint: boolean,
): void {
  const { outH, outW } = convOutput(g);
  const P = outH * outW;
  const HW = g.height * g.width;
  const imageSize = g.channels * HW;
  const groupChannels = g.channels / g.groups;
  const Kg = groupChannels * g.kernelH * g.kernelW;
  if (adjoint) image.fill(0, 0, rows * imageSize);
  else cols.fill(0, 0, rows * g.channels * g.kernelH * g.kernelW * P);
  for (let n = 0; n < rows; n++) {
    for (let c = 0; c < g.channels; c++) {
      const grp = Math.floor(c / groupChannels);
      const block = (n * g.groups + grp) * P * Kg;
      const xc = n * imageSize + c * HW;
      for (let ky = 0; ky < g.kernelH; ky++) {
        const offY = ky * g.dilationH - g.padH;
        const [y0, y1] = validRange(outH, g.strideH, offY, g.height);
        for (let kx = 0; kx < g.kernelW; kx++) {
          const offX = kx * g.dilationW - g.padW;
          const [x0, x1] = validRange(outW, g.strideW, offX, g.width);
          const j = block + ((c - grp * groupChannels) * g.kernelH + ky) * g.kernelW + kx;
          for (let oy = y0; oy < y1; oy++) {
            const src = xc + (oy * g.strideH + offY) * g.width + offX;
            let dst = j + (oy * outW + x0) * Kg;
            if (adjoint) for (let ox = x0; ox < x1; ox++, dst += Kg) image[src + ox * g.strideW] += cols[dst];
            else for (let ox = x0; ox < x1; ox++, dst += Kg) cols[dst] = image[src + ox * g.strideW];
          }
        }
      }
    }
  }
}

export function im2colTs(x: Float32Array, rows: number, g: ConvGeometry, cols: Float32Array): void {
  unfold(x, rows, g, cols, false);
}

export function col2imTs(cols: Float32Array, rows: number, g: ConvGeometry, dx: Float32Array): void {
  unfold(dx, rows, g, cols, true);
}
