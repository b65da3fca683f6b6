/**
 * Adaptive Gauss–Legendre quadrature (the role scipy.integrate.quad plays in Opacus's PRV mean).
 * Nodes and weights are computed at load time by Newton's method on the Legendre polynomial.
 */

const ORDER = 20;

function gaussLegendre(n: number): { x: Float64Array; w: Float64Array } {
  const x = new Float64Array(n);
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let z = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; iter++) {
      let p0 = 1;
      let p1 = z;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      dp = (n * (z * p1 - p0)) / (z * z - 1);
      const dz = p1 / dp;
      z -= dz;
      if (Math.abs(dz) < 1e-16) break;
    }
    x[i] = z;
    w[i] = 2 / ((1 - z * z) * dp * dp);
  }
  return { x, w };
}

const GL = gaussLegendre(ORDER);

function ruleOn(f: (t: number) => number, a: number, b: number): number {
  const mid = (a + b) / 2;
  const half = (b - a) / 2;
  let s = 0;
  for (let i = 0; i < ORDER; i++) s += GL.w[i] * f(mid + half * GL.x[i]);
  return s * half;
}

/**
 * ∫_a^b f, bisecting until the whole-interval and two-halves estimates agree to
 * max(absTol, relTol·|estimate|) (tolerances split between halves), up to `maxDepth` levels.
 */
export function integrate(
  f: (t: number) => number,
  a: number,
  b: number,
  { absTol = 1e-14, relTol = 1e-12, maxDepth = 40 } = {},
): number {
  if (!(b > a)) return 0;
  const whole = ruleOn(f, a, b);
  return refine(f, a, b, whole, absTol, relTol, maxDepth);
}

function refine(
  f: (t: number) => number,
  a: number,
  b: number,
  whole: number,
  absTol: number,
  relTol: number,
  depth: number,
): number {
  const mid = (a + b) / 2;
  const left = ruleOn(f, a, mid);
  const right = ruleOn(f, mid, b);
  const both = left + right;
  // A NaN integrand would never converge and bisect 2^depth times: fail closed at once.
  if (!Number.isFinite(both)) throw new RangeError("integrand is not finite on the interval");
  if (depth <= 0 || Math.abs(both - whole) <= Math.max(absTol, relTol * Math.abs(both))) return both;
  return (
    refine(f, a, mid, left, absTol / 2, relTol, depth - 1) +
    refine(f, mid, b, right, absTol / 2, relTol, depth - 1)
  );
}
