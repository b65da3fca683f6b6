/** A uniform, even-sized grid of privacy-loss values, aligned to the mesh (Opacus `Domain`). */
export interface Domain {
  readonly tMin: number;
  readonly tMax: number;
  readonly size: number;
  /** Total right shift applied since alignment (mean corrections accumulate through composition). */
  readonly shifts: number;
}

export function domainDt(d: Domain): number {
  return (d.tMax - d.tMin) / (d.size - 1);
}

/** Grid points, computed like numpy.linspace (i·step + start, last point exactly tMax). */
export function domainPoints(d: Domain): Float64Array {
  const ts = new Float64Array(d.size);
  const step = (d.tMax - d.tMin) / (d.size - 1);
  for (let i = 0; i < d.size; i++) ts[i] = i * step + d.tMin;
  ts[d.size - 1] = d.tMax;
  return ts;
}

export function shiftRight(d: Domain, dt: number): Domain {
  return { tMin: d.tMin + dt, tMax: d.tMax + dt, size: d.size, shifts: d.shifts + dt };
}

/**
 * [floor(tMin/dt)·dt, ceil(tMax/dt)·dt] with an even number of points (one more point on the right
 * if needed), so a symmetric request gives points -K·dt … (K+1)·dt, which composition relies on.
 */
export function createAlignedDomain(tMin: number, tMax: number, dt: number): Domain {
  const lo = Math.floor(tMin / dt) * dt;
  let hi = Math.ceil(tMax / dt) * dt;
  let size = Math.round((hi - lo) / dt) + 1;
  if (size % 2 === 1) {
    size += 1;
    hi += dt;
  }
  const domain = { tMin: lo, tMax: hi, size, shifts: 0 };
  if (!(Math.abs(domainDt(domain) - dt) / dt < 1e-8)) throw new RangeError("domain mesh misaligned");
  return domain;
}
